// Critical sections (FreeBSD critical_enter/critical_exit; docs/critical-sections.md).
// Per-thread `critnest` and `owepreempt`: a preemption requested while critnest > 0
// only sets owepreempt; the outermost critical_exit takes it.
//
// Until kernel threads exist on a CPU (early boot, and each AP before its first
// thread), there is nobody to preempt: enter/exit do nothing then.
//
// The running thread is borrowed, never retained: a retain/release pair is two
// locked instructions, which made up half of critical_enter+exit's cost
// (bench/README.md). It cannot go away while it runs this code.
//
// The compiler barriers are FreeBSD's __compiler_membar(). critnest and
// owepreempt are relaxed atomics (Thread: an interrupt handler on this CPU
// writes them between our accesses; each access is still one plain MOV), and
// relaxed accesses may be reordered: without the barriers an optimizer could
// move code of the section above the increment, or the owepreempt load above
// the store that opens the window (C3). The barrier is an acquire-release
// fence: no instruction on x86-64. By the language's rules such a fence does
// not order an earlier store before a later load (only a sequentially
// consistent one would, at the price of an MFENCE); that LLVM moves no memory
// access across it is its behaviour, not a promise. So the build checks the
// result: scripts/check-critical-exit.sh fails unless, in the image's
// critical_exit, the store of 0 to critnest comes before the owepreempt load.

enum CriticalSection {
    static func enter() {
        // The running thread without a retain/release pair (atomic operations
        // that cost more than the rest of the path): it cannot go away while
        // it runs this.
        enter(thread: GSBase.read(PerCPUHeader.currentThread))
    }

    /// The rendezvous fix (seed 002, FreeBSD r222254): raise critnest DIRECTLY,
    /// for code running inside an interrupt handler. Its exit lowers it directly
    /// without looking at owepreempt, so it can never switch from interrupt
    /// context; a preemption requested meanwhile stays owed and is taken by the
    /// interrupted thread (its critical_exit or the interrupt return).
    static func enterRaw() {
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { $0.critnest += 1 }
        CPU.compilerBarrier()
    }
    static func exitRaw() {
        CPU.compilerBarrier()
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { $0.critnest -= 1 }
    }

    static func exit() { exit(thread: GSBase.read(PerCPUHeader.currentThread)) }

    /// critical_enter/exit for a running thread the caller already read from
    /// its header (`raw`, 0 before threads exist: nothing to do).
    @inline(__always)
    static func enter(thread raw: UInt64) {
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { td in
            td.critnest += 1      // load and store, not a locked add: a handler on top of us leaves it as it found it
        }
        CPU.compilerBarrier()     // the section's code stays below the increment
    }
    static func exit(thread raw: UInt64) {
        guard raw != 0 else { return }
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { _ = exit($0) }
    }

    /// spinlock_exit's critical_exit: the section's own count is still 1, so
    /// the IPI-queue poll below never applies and its header read is skipped.
    /// Returns true when it switched (the caller may be on another CPU now).
    static func exitInSpinlockSection(thread raw: UInt64) -> Bool {
        guard raw != 0 else { return false }
        return Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef {
            exit($0, inSpinlockSection: true)
        }
    }

    /// critical_exit for the running thread `td` (borrowed: no retain).
    /// Returns true when it took an owed preemption (switched).
    private static func exit(_ td: Thread, inSpinlockSection: Bool = false) -> Bool {
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
            var switched = false
            if td.owepreempt {
                td.critnest = 1
                Scheduler.preemptOwed(td)   // clears owepreempt, switches, returns critnest to 0
                switched = true
            }
            if inSpinlockSection { return switched }
            // An outermost exit in thread context is also an IPI-queue processing
            // point (docs/ipi-queues.md). Not inside spinlock_exit (interrupts
            // still off, the lock's section not closed yet) and not in a handler.
            // One header read for the three (after any switch above: we may be
            // on another CPU now); a preemption between it and the test only
            // makes the hint stale, and process() looks at its own CPU.
            let h = PerCPU.local
            if h.spinlockCount == 0 && h.interruptDepth == 0 && IPIQueue.hasPending(h) {
                IPIQueue.process()
            }
            return switched
        } else {
            CPU.compilerBarrier()
            td.critnest -= 1
            return false
        }
    }
}
