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
        let empty = Benchmarks.cyclesPerCall(slice) { _ in }
        let gs = Benchmarks.cyclesPerCall(slice) { _ in _ = GSBase.read(PerCPUHeader.cpuNumber) }
        let barrier = Benchmarks.cyclesPerCall(slice) { _ in CPU.compilerBarrier() }
        let flags = Benchmarks.cyclesPerCall(slice) { _ in CPU.restoreFlags(CPU.saveFlagsAndDisableInterrupts()) }
        let rmw = Benchmarks.cyclesPerCall(slice) { _ in counter.wrappingAdd(1, ordering: .relaxed) }
        let critical = Benchmarks.cyclesPerCall(slice) { _ in CriticalSection.enter(); CriticalSection.exit() }
        t.check(empty.calls > 0 && critical.calls > 0) { l in
            l.write("fast-path parts per call (cycles): empty loop "); l.dec(empty.cycles); l.write(", GS read ")
            l.dec(gs.cycles); l.write(", compiler barrier call "); l.dec(barrier.cycles); l.write(", save+cli+restore flags ")
            l.dec(flags.cycles); l.write(", locked add "); l.dec(rmw.cycles); l.write(", critical_enter+exit ")
            l.dec(critical.cycles)
        }
    }
}
