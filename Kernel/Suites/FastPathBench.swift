import Synchronization

// What the spinlock and critical-section fast paths are made of (part of
// `run=bench`): the per-call cost of each building block, against an empty
// loop of the same shape, so that a change to a fast path can be aimed at
// what costs. Under TCG and nested KVM the flag instructions (pushf/cli,
// popf) and locked read-modify-writes dominate, not the GS-relative helper
// calls (removing most of those from SpinLock left its cost unchanged within
// run-to-run noise; README section 13).

enum FastPathBench {
    static let counter = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext, _ ms: UInt64) {
        let slice = max(10, ms / 6)
        let empty = perCall(slice) { _ in }
        let gs = perCall(slice) { _ in _ = GSBase.read(PerCPUHeader.cpuNumber) }
        let barrier = perCall(slice) { _ in CPU.compilerBarrier() }
        let flags = perCall(slice) { _ in CPU.restoreFlags(CPU.saveFlagsAndDisableInterrupts()) }
        let rmw = perCall(slice) { _ in counter.wrappingAdd(1, ordering: .relaxed) }
        let critical = perCall(slice) { _ in CriticalSection.enter(); CriticalSection.exit() }
        t.check(empty.calls > 0 && critical.calls > 0) { l in
            l.write("fast-path parts per call (cycles): empty loop "); l.dec(empty.cycles); l.write(", GS read ")
            l.dec(gs.cycles); l.write(", compiler barrier call "); l.dec(barrier.cycles); l.write(", save+cli+restore flags ")
            l.dec(flags.cycles); l.write(", locked add "); l.dec(rmw.cycles); l.write(", critical_enter+exit ")
            l.dec(critical.cycles)
        }
    }

    /// Cycles per call of `body`, in batches of 100 for `ms` milliseconds.
    private static func perCall(_ ms: UInt64, _ body: (UInt64) -> Void) -> (cycles: UInt64, calls: UInt64) {
        var n: UInt64 = 0
        let budget = TimeBudget(milliseconds: ms)
        let t0 = TSC.now
        while !budget.expired {
            for i in 0..<UInt64(100) { body(n &+ i) }
            n &+= 100
        }
        return ((TSC.now &- t0) / max(n, 1), n)
    }
}
