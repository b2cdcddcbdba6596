; Kernel thread context switch (Kern/Sched/LWKTScheduler.swift calls it with interrupts
; disabled). Only callee-saved registers are saved: the switch is an ordinary
; function call for the C ABI, so the caller already saved the rest.
;
;   cpu_switch(rdi = &old->context.rsp, rsi = new->context.rsp, rdx = &old->context.running)
;
; ThreadContext (Kern/Sched/Thread.swift): rsp at +0, running (u32) at +8, switchOuts
; (u32) at +12. [rdx + 4] is switchOuts: the switch-out stamp that a CPU pulling
; the thread checks after its fence (D6, docs/ipi-queues.md).
;
; Stack of a thread that is switched out (its saved rsp points at r15):
;   [rsp+0]  r15   [rsp+8] r14   [rsp+16] r13   [rsp+24] r12
;   [rsp+32] rbx   [rsp+40] rbp  [rsp+48] return address into the switch caller
; A new thread's stack is built the same way with the return address pointing at
; thread_bootstrap and rbx/r12 carrying its entry arguments.
[BITS 64]
section .text
extern thread_start

global cpu_switch
cpu_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    inc dword [rdx + 4]          ; the switch-out stamp, after the saved rsp
    ; D6 (lwkt_giveaway/acquire, docs/ipi-queues.md): the old CPU clears RUNNING
    ; only after its last writes to the thread - the saved rsp and the stamp just
    ; above. x86 keeps stores in order (TSO), so a plain store publishes them; the
    ; CPU that pulls the thread spins on RUNNING and issues one MFENCE after the
    ; loop. From here on this CPU must not touch the old stack: the next
    ; instruction leaves it.
    mov dword [rdx], 0
switch_to_new:
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

; Negative control bug.handoff_early_clear: the same switch with RUNNING cleared
; BEFORE the saved rsp and the stamp are written, and the window widened. A puller
; that trusted RUNNING alone would run the thread on a stale rsp; ours sees the
; stamp behind and counts a D6 violation.
global cpu_switch_early_clear
cpu_switch_early_clear:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov dword [rdx], 0           ; BUG: RUNNING cleared first
    mov ecx, 40000
.widen:
    pause
    dec ecx
    jnz .widen
    mov [rdi], rsp
    inc dword [rdx + 4]
    jmp switch_to_new

; First instructions of every new thread: rbx = the Thread object (unretained).
global thread_bootstrap
thread_bootstrap:
    mov rdi, rbx
    xor ebp, ebp                 ; the backtrace of a thread ends here
    call thread_start            ; never returns
    ud2

global addr_thread_bootstrap
addr_thread_bootstrap:
    lea rax, [rel thread_bootstrap]
    ret
