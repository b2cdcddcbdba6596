// Critical sections (FreeBSD critical_enter/critical_exit; docs/critical-sections.md).
// Per-thread `critnest` and `owepreempt`: a preemption requested while critnest > 0
// only sets owepreempt; the outermost critical_exit takes it.
//
// Until kernel threads exist on a CPU (early boot, and each AP before its first
// thread), there is nobody to preempt: enter/exit do nothing then.
//
// The running thread is borrowed, never retained: a retain/release pair is two
// locked instructions, which made up half of critical_enter+exit's cost
// (README, "Measured"). It cannot go away while it runs this code.
//
// The compiler barriers are FreeBSD's __compiler_membar(): critnest and owepreempt
// are plain fields, and without them an optimizer may move the owepreempt load
// above the store that opens the window, or code of the section above the
// increment. (The barrier is an opaque call into Boot/cpu.asm.)

enum CriticalSection {
    static func enter() {
        // The running thread without a retain/release pair (atomic operations
        // that cost more than the rest of the path): it cannot go away while
        // it runs this.
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { td in
            td.critnest += 1      // plain increment: only this thread writes it
        }
        CPU.compilerBarrier()     // the section's code stays below the increment
    }

    /// The rendezvous fix (seed 002, FreeBSD r222254): raise critnest DIRECTLY,
    /// for code running inside an interrupt handler. Its exit lowers it directly
    /// without looking at owepreempt, so it can never switch from interrupt
    /// context; a preemption requested meanwhile stays owed and is taken by the
    /// interrupted thread (its critical_exit or the interrupt return).
    static func enterRaw() { Thread.currentIfAny?.critnest += 1; CPU.compilerBarrier() }
    static func exitRaw() { CPU.compilerBarrier(); Thread.currentIfAny?.critnest -= 1 }

    static func exit() {
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { exit($0) }
    }

    /// critical_exit for the running thread `td` (borrowed: no retain).
    private static func exit(_ td: Thread) {
        precondition(td.critnest > 0, "critical_exit without critical_enter")
        if td.critnest == 1 {
            CPU.compilerBarrier()
            // The window opens here: critnest is 0 while owepreempt may be 1. An
            // interrupt arriving now that enters and exits a critical section of
            // its own would see (0, 1) - the seed-002 race; every trap handler runs
            // in a raw section (PerCPU.installInterruptAccounting) against it.
            td.critnest = 0
            CPU.compilerBarrier()     // C3: owepreempt is loaded after the store
            // rendezvous-preempt holds the window open on its own thread only,
            // in thread context (not in a handler's section running on top of it).
            if td.criticalWindowCycles != 0 && !PerCPU.inInterrupt {
                KTrace.record(.critWindow, UInt64(td.id), td.criticalWindowCycles)
                TSC.spin(cycles: td.criticalWindowCycles)
            }
            if td.owepreempt {
                td.critnest = 1
                Scheduler.preemptOwed(td)   // clears owepreempt, switches, returns critnest to 0
            }
            // An outermost exit in thread context is also an IPI-queue processing
            // point (docs/ipi-queues.md). Not inside spinlock_exit (interrupts
            // still off, the lock's section not closed yet) and not in a handler.
            if SpinlockSection.depth == 0 && !PerCPU.inInterrupt && IPIQueue.hasPending {
                IPIQueue.process()
            }
        } else {
            CPU.compilerBarrier()
            td.critnest -= 1
        }
    }
}
