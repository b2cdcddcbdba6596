; Static storage the boot CPU needs before the page allocator exists.
[BITS 64]
section .bss nobits alloc noexec write align=4096
global bsp_arch_area
bsp_arch_area:
    resb 4096            ; GDT + TSS
    resb 8192            ; IDT (4 KiB) + IDTR
    resb 3 * 16384       ; IST stacks: #DF, NMI, #MC
global page_zero_copy
page_zero_copy:
    resb 4096            ; copy of physical page 0 (BIOS data area), which is unmapped
global quartet_debug_threads
quartet_debug_threads:
    resq 1 + 1024        ; count, then up to 1024 thread records (scripts/gdbinit: qthreads, qbt)
