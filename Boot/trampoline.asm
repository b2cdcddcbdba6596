; Application-processor start-up trampoline. BOOT-ONLY CODE.
;
; The BSP copies [trampoline_start, trampoline_end) to physical TRAMP (0x8000) and
; sends INIT, STARTUP(vector 0x08). The AP starts here in real mode at 0800:0000,
; goes through 32-bit protected mode to long mode on the kernel's page tables, and
; calls the Swift entry given in the data block with its argument. The code runs
; at TRAMP, not where it is linked, so every address is written T(label).
;
; Data block (filled by Arch/x86_64/APStart.swift before each start), offsets:
;   +0 cr3   +8 efer   +16 stack top   +24 entry   +32 argument   +40 started flag
[BITS 16]
section .rodata
TRAMP equ 0x8000
%define T(x) ((x) - trampoline_start + TRAMP)

global trampoline_start, trampoline_data, trampoline_end
align 16
trampoline_start:
    cli
    cld
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov byte [T(tr_started)], 1     ; tells the BSP the STARTUP IPI arrived
    lgdt [T(tr_gdt_ptr)]
    mov eax, cr0
    or eax, 1                       ; PE
    mov cr0, eax
    jmp dword 0x08:T(tr_pm32)

[BITS 32]
tr_pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 1 << 5                  ; PAE
    mov cr4, eax
    mov eax, [T(tr_cr3)]
    mov cr3, eax
    mov ecx, 0xC0000080             ; EFER: the BSP's value (LME, and NXE if it has it)
    mov eax, [T(tr_efer)]
    mov edx, [T(tr_efer) + 4]
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 5) | 1    ; PG, WP, NE, PE
    and eax, ~((1 << 2) | (1 << 30) | (1 << 29))   ; EM, CD, NW off
    mov cr0, eax
    jmp 0x18:T(tr_lm64)

[BITS 64]
tr_lm64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    fninit
    mov rsp, [T(tr_stack)]
    mov rdi, [T(tr_arg)]
    mov rax, [T(tr_entry)]
    xor ebp, ebp                    ; ends the backtrace
    call rax
.dead:
    cli
    hlt
    jmp .dead

align 8
tr_gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08: 32-bit code
    dq 0x00CF92000000FFFF           ; 0x10: data
    dq 0x00AF9A000000FFFF           ; 0x18: 64-bit code
tr_gdt_ptr:
    dw tr_gdt_ptr - tr_gdt - 1
    dd T(tr_gdt)

align 8
trampoline_data:
tr_cr3:     dq 0
tr_efer:    dq 0
tr_stack:   dq 0
tr_entry:   dq 0
tr_arg:     dq 0
tr_started: dd 0
            dd 0
trampoline_end:
