; Interrupt and exception entry: 256 stubs that build a TrapFrame and call Swift.
;
; Stack on entry to trap_common (growing down), matching Arch/x86_64/TrapFrame.swift:
;   ss, rsp, rflags, cs, rip        pushed by the CPU (always, in 64-bit mode)
;   error code                      pushed by the CPU for some vectors, else 0 by us
;   vector                          pushed by the stub
;   rax rbx rcx rdx rsi rdi rbp r8..r15   pushed by trap_common (r15 lowest)
; The CPU aligns RSP to 16 before pushing its frame; 22 quadwords keep that
; alignment for the call into Swift.
[BITS 64]
section .text
extern trap_dispatch

%macro STUB 1
stub_%1:
%if (%1 = 8) || (%1 = 10) || (%1 = 11) || (%1 = 12) || (%1 = 13) || (%1 = 14) || (%1 = 17) || (%1 = 21) || (%1 = 29) || (%1 = 30)
    ; the CPU pushed an error code
%else
    push 0
%endif
    push %1
    jmp trap_common
%endmacro

%assign v 0
%rep 256
    align 16
    STUB v
%assign v v+1
%endrep

trap_common:
    ; From user mode (CPL 3 in the saved CS): switch GS to the kernel's per-CPU base.
    test qword [rsp + 24], 3
    jz .kernel_entry
    swapgs
.kernel_entry:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    ; A zero return address would end the rbp-chain backtrace here; instead let
    ; the Swift handler's frame chain into the interrupted code's rbp.
    call trap_dispatch
global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                         ; vector and error code
    test qword [rsp + 8], 3             ; returning to user mode?
    jz .kernel_exit
    swapgs
.kernel_exit:
    iretq

section .rodata
global isr_stub_table
align 8
isr_stub_table:
%assign v 0
%rep 256
    dq stub_ %+ v
%assign v v+1
%endrep
