; Application-processor start-up trampoline. BOOT-ONLY CODE.
;
; The BSP copies [trampoline_start, trampoline_end) to physical TRAMP (0x8000) and
; sends INIT, STARTUP(vector 0x08) to every AP at once (parallel bring-up). Each AP
; starts here in real mode at 0800:0000, goes through 32-bit protected mode to long
; mode on the kernel's page tables, finds its own entry in the start table by its
; APIC ID (CPUID), and calls the Swift entry with its argument on its own stack.
; Many APs run this code at the same time: it writes nothing shared but the
; started count (a locked add) and its own entry's `reached` word, and uses no
; stack before its own. The code runs at TRAMP, not where it is linked, so every
; address is written T(label).
;
; Data block (filled by Arch/x86_64/APStart.swift before the STARTUPs), offsets:
;   +0 cr3   +8 efer   +16 start table (virtual)   +24 entry   +32 table entries
;   +40 started count
; Start table entry (24 bytes): +0 APIC ID (u32), +4 reached long mode (u32, set
; by the AP), +8 stack top, +16 argument.
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
    lock inc dword [T(tr_started)]  ; counts the APs the STARTUP IPIs reached
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
    ; This CPU's APIC ID: CPUID leaf 0Bh's x2APIC ID when the leaf exists,
    ; else the 8-bit initial APIC ID of leaf 1.
    xor eax, eax
    cpuid
    cmp eax, 0x0B
    jb .leaf1
    mov eax, 0x0B
    xor ecx, ecx
    cpuid
    test ebx, ebx                   ; EBX = 0: leaf 0Bh not implemented
    jnz .have_id
.leaf1:
    mov eax, 1
    cpuid
    shr ebx, 24
    mov edx, ebx
.have_id:
    mov rsi, [T(tr_table)]
    mov ecx, [T(tr_count)]
.find:
    test ecx, ecx
    jz .dead                        ; not in the table: never started on purpose
    cmp [rsi], edx
    je .found
    add rsi, 24
    dec ecx
    jmp .find
.found:
    mov dword [rsi + 4], 1          ; tells the BSP this AP reached long mode
    mov rsp, [rsi + 8]
    mov rdi, [rsi + 16]
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
tr_table:   dq 0
tr_entry:   dq 0
tr_count:   dq 0
tr_started: dd 0
            dd 0
trampoline_end:
