; Quartet boot stub: multiboot v1 header, 32-bit entry, page tables, long mode.
;
; BOOT-ONLY CODE. QEMU's multiboot loader refuses ELF64 images unless the header
; carries the address fields (flag bit 16); it then copies the file from the
; header's offset to load_addr and jumps to entry_addr in 32-bit protected mode
; with EAX = 0x2BADB002 and EBX = physical address of the multiboot info.
;
; Address space built here (4-level paging, 2 MiB pages):
;   PML4[0] -> identity map of 0..4 GiB: the kernel image (linked at 1 MiB), all
;              physical memory the kernel uses (the "direct map" is the identity),
;              the AP trampoline, and the APIC registers (mapped uncached).
; Why not a higher-half kernel: Swift's x86-64 ABI treats the top bits of heap
; object and String pointers as spare/discriminator bits. A kernel image or heap
; at 0xFFFF... makes String literals and enum-packed class references corrupt
; (seen here: a String literal at 0xffffffff8010xxxx took the "foreign string"
; path and trapped). So every Swift object and stack lives below 2^47.

%define MB_MAGIC       0x1BADB002
%define MB_FLAGS       0x00010003      ; page-align modules, memory info, address fields
%define PTE_P          1
%define PTE_W          2
%define PTE_PWT        8
%define PTE_PCD        16
%define PTE_PS         128

extern _load_start_phys, _load_end_phys, _bss_end_phys, _bss_start_phys
extern kmain_entry64

section .multiboot progbits alloc noexec nowrite align=4
global multiboot_header
multiboot_header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd multiboot_header         ; header_addr
    dd _load_start_phys         ; load_addr
    dd _load_end_phys           ; load_end_addr
    dd _bss_end_phys            ; bss_end_addr
    dd _start32                 ; entry_addr

section .boot.text progbits alloc exec nowrite align=16
[BITS 32]
global _start32
_start32:
    cli
    cld
    mov esp, boot_stack_top32
    mov [mb_magic_save], eax
    mov [mb_info_save], ebx

    ; Clear .bss: the loader is not required to (multiboot says it is zeroed,
    ; but we do not rely on it).
    mov edi, _bss_start_phys
    mov ecx, _bss_end_phys
    sub ecx, edi
    xor eax, eax
    rep stosb

    ; Long mode available? CPUID 0x80000001 EDX bit 29.
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz .no_long_mode
    mov [ext_features_edx], edx

    ; --- page tables (all in .boot.data, zero-filled in the file) ---
    ; PD_LOW: 4 pages of 512 entries, 2 MiB each, covering 0..4 GiB.
    mov edi, pd_low
    xor ecx, ecx                        ; entry index 0..2047
.fill_pd:
    mov eax, ecx
    shl eax, 21                         ; physical address (low 32 bits)
    or eax, PTE_P | PTE_W | PTE_PS
    cmp ecx, 0x7F6                      ; 0xFEC00000 (I/O APIC) ...
    jb .cached
    cmp ecx, 0x7F7                      ; ... and 0xFEE00000 (local APIC): uncached
    ja .cached
    or eax, PTE_PCD | PTE_PWT
.cached:
    mov [edi + ecx*8], eax
    mov dword [edi + ecx*8 + 4], 0
    inc ecx
    cmp ecx, 2048
    jb .fill_pd

    ; PDPT_LOW[0..3] -> the four PDs
    mov eax, pd_low
    or eax, PTE_P | PTE_W
    mov [pdpt_low + 0], eax
    add eax, 4096
    mov [pdpt_low + 8], eax
    add eax, 4096
    mov [pdpt_low + 16], eax
    add eax, 4096
    mov [pdpt_low + 24], eax
    ; PML4[0] -> PDPT_LOW
    mov eax, pdpt_low
    or eax, PTE_P | PTE_W
    mov [pml4], eax

    ; --- enter long mode ---
    mov eax, cr4
    or eax, (1 << 5)                    ; PAE
    mov cr4, eax
    mov eax, pml4
    mov cr3, eax
    mov ecx, 0xC0000080                 ; EFER
    rdmsr
    or eax, (1 << 8)                    ; LME
    test dword [ext_features_edx], 1 << 20
    jz .no_nx
    or eax, (1 << 11)                   ; NXE, when the CPU has NX
.no_nx:
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 5) | 1   ; PG, WP, NE, PE
    and eax, ~((1 << 2) | (1 << 30) | (1 << 29))   ; EM off (x87 used), CD/NW off
    mov cr0, eax
    lgdt [boot_gdt_ptr]
    jmp 0x08:long_mode_low

.no_long_mode:
    ; Tell the serial console why we stop (COM1, polled, no init needed by QEMU).
    mov esi, msg_no_lm
.putc:
    lodsb
    test al, al
    jz .dead
    mov dx, 0x3F8
    out dx, al
    jmp .putc
.dead:
    mov al, 0x03                        ; failure code to isa-debug-exit
    mov dx, 0xF4
    out dx, al
    hlt
    jmp .dead

[BITS 64]
long_mode_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    fninit
    lea rsp, [rel boot_stack_top]
    xor ebp, ebp                        ; terminates the rbp-chain backtrace
    mov edi, [rel mb_magic_save]
    mov esi, [rel mb_info_save]
    call kmain_entry64
.hang:
    cli
    hlt
    jmp .hang

section .boot.data progbits alloc noexec write align=4096
global boot_pml4
boot_pml4:
pml4:       times 4096 db 0
pdpt_low:   times 4096 db 0
pd_low:     times 4096*4 db 0
boot_stack32: times 1024 db 0
boot_stack_top32:
boot_gdt:
    dq 0
    dq 0x00AF9A000000FFFF               ; 0x08: 64-bit code
    dq 0x00CF92000000FFFF               ; 0x10: data
boot_gdt_ptr:
    dw boot_gdt_ptr - boot_gdt - 1
    dd boot_gdt
mb_magic_save: dd 0
mb_info_save:  dd 0
ext_features_edx: dd 0
msg_no_lm: db "Quartet: this CPU has no long mode; stopping.", 13, 10, 0

section .bss nobits alloc noexec write align=4096
; BSP kernel stack (the CPU 0 boot stack); guard page handled by Paging.swift.
; The boot CPU's first stack; kmain moves to a guarded stack early (KernelStacks).
global boot_stack_bottom, boot_stack_top
boot_stack_bottom: resb 65536
boot_stack_top:
