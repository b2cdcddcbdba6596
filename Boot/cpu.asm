; Small CPU helpers called from Swift (System V ABI: rdi, rsi, rdx, rcx, r8, r9 -> rax).
; Each is declared once, in Kernel/Arch/x86_64/CPU.swift. A call to one of these is
; also a compiler barrier: Swift cannot move memory accesses across an opaque call.
[BITS 64]
section .text

%macro FN 1
global %1
%1:
%endmacro

FN cpu_outb
    mov edx, edi
    mov eax, esi
    out dx, al
    ret
FN cpu_inb
    mov edx, edi
    xor eax, eax
    in al, dx
    ret
FN cpu_outw
    mov edx, edi
    mov eax, esi
    out dx, ax
    ret
FN cpu_inw
    mov edx, edi
    xor eax, eax
    in ax, dx
    ret
FN cpu_outl
    mov edx, edi
    mov eax, esi
    out dx, eax
    ret
FN cpu_inl
    mov edx, edi
    in eax, dx
    ret

FN cpu_rdmsr                ; rdi = msr -> rax = value
    mov ecx, edi
    rdmsr
    shl rdx, 32
    or rax, rdx
    ret
FN cpu_wrmsr                ; rdi = msr, rsi = value
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
    wrmsr
    ret

FN cpu_read_cr0
    mov rax, cr0
    ret
FN cpu_write_cr0
    mov cr0, rdi
    ret
FN cpu_read_cr2
    mov rax, cr2
    ret
FN cpu_read_cr3
    mov rax, cr3
    ret
FN cpu_write_cr3
    mov cr3, rdi
    ret
FN cpu_read_cr4
    mov rax, cr4
    ret
FN cpu_write_cr4
    mov cr4, rdi
    ret
FN cpu_invlpg
    invlpg [rdi]
    ret

; Fences: the mechanisms in docs/ name MFENCE explicitly; Swift's seq_cst
; fence compiles to a locked instruction instead, so the named ones live here.
FN cpu_mfence
    mfence
    ret
FN cpu_lfence
    lfence
    ret
FN cpu_sfence
    sfence
    ret
FN cpu_pause
    pause
    ret
FN cpu_hlt
    hlt
    ret
FN cpu_cli
    cli
    ret
FN cpu_sti
    sti
    ret
FN cpu_sti_hlt              ; enable interrupts and halt atomically (no lost wakeup)
    sti
    hlt
    ret
FN cpu_read_flags
    pushfq
    pop rax
    ret
FN cpu_write_flags
    push rdi
    popfq
    ret
FN cpu_save_flags_cli       ; returns RFLAGS, then disables interrupts
    pushfq
    pop rax
    cli
    ret
FN cpu_rdtsc
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret
FN cpu_cpuid                ; rdi = leaf, rsi = subleaf, rdx = UInt32[4] out
    push rbx
    mov r8, rdx
    mov eax, edi
    mov ecx, esi
    cpuid
    mov [r8], eax
    mov [r8 + 4], ebx
    mov [r8 + 8], ecx
    mov [r8 + 12], edx
    pop rbx
    ret

FN cpu_lgdt                 ; rdi = pointer to 10-byte descriptor
    lgdt [rdi]
    ret
FN cpu_lidt
    lidt [rdi]
    ret
FN cpu_ltr
    ltr di
    ret
FN cpu_reload_segments      ; rdi = code selector, rsi = data selector
    mov ds, si
    mov es, si
    mov ss, si
    push rdi
    lea rax, [rel .reloaded]
    push rax
    retfq
.reloaded:
    ret

FN cpu_read_rbp
    mov rax, rbp
    ret
FN cpu_read_rsp
    lea rax, [rsp + 8]
    ret

FN cpu_halt_forever
    cli
.again:
    hlt
    jmp .again

; call_on_stack(fn, arg, stack_top): run fn(arg) on another stack, return on ours.
FN cpu_call_on_stack
    push rbp
    mov rbp, rsp
    mov rsp, rdx
    push rbp                 ; keep the old frame reachable (and 16-byte alignment)
    push rbp
    mov rax, rdi
    mov rdi, rsi
    call rax
    mov rsp, rbp
    pop rbp
    ret

; Deliberate faults, for the fault suites: the exact faulting instruction is known.
FN cpu_divide_by_zero       ; rdi = dividend
    mov rax, rdi
    xor edx, edx
    xor ecx, ecx
    div rcx
    ret
FN cpu_touch                ; rdi = address, a load that can fault
    mov rax, [rdi]
    ret

; probe_read(rdi = address, rsi = &value) -> eax: a load that may fault without
; ending the kernel. 0: loaded into *value. 1: it faulted; the trap path
; (Arch/x86_64/ExceptionFixup.swift) resumed at probe_read_resume with rax = 1.
FN cpu_probe_read
    xor eax, eax
FN cpu_probe_read_insn
    mov rdx, [rdi]
    mov [rsi], rdx
FN cpu_probe_read_resume
    ret
FN addr_probe_read_insn
    lea rax, [rel cpu_probe_read_insn]
    ret
FN addr_probe_read_resume
    lea rax, [rel cpu_probe_read_resume]
    ret

; capture(rdi = TrapFrame *): the caller's registers laid out as a trap frame
; (Arch/x86_64/TrapFrame.swift): rip = our return address, rsp = the caller's rsp
; after the call returns, vector and error code 0. For panic(), which has no
; trap frame of its own.
FN cpu_capture
    mov [rdi + 0], r15
    mov [rdi + 8], r14
    mov [rdi + 16], r13
    mov [rdi + 24], r12
    mov [rdi + 32], r11
    mov [rdi + 40], r10
    mov [rdi + 48], r9
    mov [rdi + 56], r8
    mov [rdi + 64], rbp
    mov [rdi + 72], rdi
    mov [rdi + 80], rsi
    mov [rdi + 88], rdx
    mov [rdi + 96], rcx
    mov [rdi + 104], rbx
    mov [rdi + 112], rax
    mov qword [rdi + 120], 0
    mov qword [rdi + 128], 0
    mov rax, [rsp]
    mov [rdi + 136], rax
    mov ax, cs
    movzx eax, ax
    mov [rdi + 144], rax
    pushfq
    pop rax
    mov [rdi + 152], rax
    lea rax, [rsp + 8]
    mov [rdi + 160], rax
    mov ax, ss
    movzx eax, ax
    mov [rdi + 168], rax
    mov rax, [rdi + 112]
    ret

; reset: the keyboard controller's CPU reset line (panic=reboot). With QEMU's
; -no-reboot, QEMU exits instead.
FN cpu_reset
    mov al, 0xFE
    out 0x64, al
.spin:
    hlt
    jmp .spin

; Full TLB flush of non-global entries: reload CR3.
FN cpu_flush_tlb
    mov rax, cr3
    mov cr3, rax
    ret

; Addresses of linker and assembly symbols, for Swift. (Taking `&symbol` of an
; imported global in Swift may hand out the address of a temporary copy.)
extern bsp_arch_area, isr_stub_table, _kernel_start, _kernel_end
FN addr_bsp_arch_area
    lea rax, [rel bsp_arch_area]
    ret
FN addr_isr_stub_table
    lea rax, [rel isr_stub_table]
    ret
extern quartet_debug_threads
FN addr_debug_threads
    lea rax, [rel quartet_debug_threads]
    ret
FN addr_kernel_start
    lea rax, [rel _kernel_start]
    ret
FN addr_kernel_end
    lea rax, [rel _kernel_end]
    ret
extern _ksymtab_start, _ksymtab_end     ; the symbol table (Boot/symtab.asm)
FN addr_ksymtab_start
    lea rax, [rel _ksymtab_start]
    ret
FN addr_ksymtab_end
    lea rax, [rel _ksymtab_end]
    ret

; copy_from_physical_zero(dst, count): copies memory starting at address 0. Swift
; cannot express a pointer to address 0 (it is nil), and the optimizer treats
; loads near it as undefined behaviour.
FN copy_from_physical_zero
    mov rcx, rsi
    xor esi, esi
    rep movsb
    ret
extern page_zero_copy
FN addr_page_zero_copy
    lea rax, [rel page_zero_copy]
    ret

; Memory-mapped I/O: one access of exactly the stated width, never merged, split
; or reordered by the compiler (the local APIC requires 32-bit accesses).
FN mmio_read32
    mov eax, [rdi]
    ret
FN mmio_write32
    mov [rdi], esi
    ret

; Per-CPU header reached through GS (Kern/SMP/PerCPU.swift): read/write one quadword
; at offset rdi from the GS base.
FN gs_read64
    mov rax, [gs:rdi]
    ret
FN gs_write64
    mov [gs:rdi], rsi
    ret

extern trampoline_start, trampoline_data, trampoline_end
FN addr_trampoline_start
    lea rax, [rel trampoline_start]
    ret
FN addr_trampoline_data
    lea rax, [rel trampoline_data]
    ret
FN addr_trampoline_end
    lea rax, [rel trampoline_end]
    ret
