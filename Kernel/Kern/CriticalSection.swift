// Critical sections (FreeBSD critical_enter/critical_exit, SPEC.md section 3).
// Per-thread `critnest` and `owepreempt`: a preemption requested while critnest > 0
// only sets owepreempt; the outermost critical_exit takes it.
//
// Until kernel threads exist on a CPU (early boot, and each AP before its first
// thread), there is nobody to preempt: enter/exit do nothing then.

enum CriticalSection {
    static func enter() {
        guard let td = Thread.currentIfAny else { return }
        td.critnest += 1          // plain increment: only this thread writes it
    }

    /// The rendezvous fix (seed 002, FreeBSD r222254): raise critnest DIRECTLY,
    /// for code running inside an interrupt handler. Its exit lowers it directly
    /// without looking at owepreempt, so it can never switch from interrupt
    /// context; a preemption requested meanwhile stays owed and is taken by the
    /// interrupted thread (its critical_exit or the interrupt return).
    static func enterRaw() { Thread.currentIfAny?.critnest += 1 }
    static func exitRaw() { Thread.currentIfAny?.critnest -= 1 }

    static func exit() {
        guard let td = Thread.currentIfAny else { return }
        precondition(td.critnest > 0, "critical_exit without critical_enter")
        if td.critnest == 1 {
            // The window opens here: critnest is 0 while owepreempt may be 1. An
            // interrupt arriving now that enters and exits a critical section of
            // its own would see (0, 1) - the seed-002 race; the rendezvous action
            // guards against it (Rendezvous.swift).
            td.critnest = 0
            if td.owepreempt {
                td.critnest = 1
                Scheduler.preemptOwed(td)   // clears owepreempt, switches, returns critnest to 0
            }
            // An outermost exit in thread context is also an IPI-queue processing
            // point (SPEC section 2). Not inside spinlock_exit (interrupts still
            // off, the lock's section not closed yet) and not in a handler.
            if SpinlockSection.depth == 0 && !PerCPU.inInterrupt && IPIQueue.hasPending {
                IPIQueue.process()
            }
        } else {
            td.critnest -= 1
        }
    }
}
