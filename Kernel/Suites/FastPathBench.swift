import Synchronization

// What the spinlock and critical-section fast paths are made of (`run=bench`,
// or alone as `run=bench-fastpath` for a quick before/after): the per-call
// cost of each building block, then of each fast path built from them. Under
// TCG every out-of-line call costs a call and a return through the translator
// (about 35 cycles: a GS-relative read is one, Swift having no inline
// assembly), the flag instructions (pushf/cli, popf) about 110, a locked
// read-modify-write about 36; so the fast paths read the per-CPU header once
// (PerCPU.local) and use an inline compiler barrier (bench/README.md).

enum FastPathBench {
    static let counter = Atomic<UInt64>(0)
    static let ticket = TicketLock()
    static let lock = SpinLock("fast-path")
    /// `run=bench-fastpath`: only these parts, for a quick before/after.
    static let suite = TestSuite(name: "bench-fastpath", kind: .benchmark,
                                 summary: "what SpinLock and critical_enter/exit are made of (part of bench)", body: {
        FastPathBench.run(&$0, UInt64(max(50, KernelOptions.int("bench.ms", default: 400))))
    })

    static func run(_ t: inout TestContext, _ ms: UInt64) {
        let slice = max(10, ms / 6)
        let empty = Benchmarks.cyclesPerCall(slice) { _ in }
        let gs = Benchmarks.cyclesPerCall(slice) { _ in _ = GSBase.read(PerCPUHeader.cpuNumber) }
        let barrier = Benchmarks.cyclesPerCall(slice) { _ in CPU.compilerBarrier() }
        let flags = Benchmarks.cyclesPerCall(slice) { _ in CPU.restoreFlags(CPU.saveFlagsAndDisableInterrupts()) }
        let rmw = Benchmarks.cyclesPerCall(slice) { _ in counter.wrappingAdd(1, ordering: .relaxed) }
        let critical = Benchmarks.cyclesPerCall(slice) { _ in CriticalSection.enter(); CriticalSection.exit() }
        let section = Benchmarks.cyclesPerCall(slice) { _ in SpinlockSection.enter(); SpinlockSection.exit() }
        let raw = Benchmarks.cyclesPerCall(slice) { _ in FastPathBench.ticket.lock(cpu: 0); FastPathBench.ticket.unlock() }
        let pair = Benchmarks.cyclesPerCall(slice) { _ in FastPathBench.lock.lock(); FastPathBench.lock.unlock() }
        let heap = Benchmarks.cyclesPerCall(slice) { _ in
            var p: UnsafeMutableRawPointer? = nil
            _ = posix_memalign(&p, 16, 64)
            kfree(p)
        }
        let yields = SchedBench.yieldSamples(slice)
        t.expect("parts", empty.calls > 0 && critical.calls > 0) { l in
            l.write("fast-path parts per call (cycles): empty loop "); l.dec(empty.cycles); l.write(", GS read ")
            l.dec(gs.cycles); l.write(", compiler barrier "); l.dec(barrier.cycles); l.write(", save+cli+restore flags ")
            l.dec(flags.cycles); l.write(", locked add "); l.dec(rmw.cycles)
        }
        t.expect("paths", section.calls > 0 && pair.calls > 0 && heap.calls > 0 && !yields.isEmpty) { l in
            l.write("fast paths per call (cycles): critical_enter+exit "); l.dec(critical.cycles)
            l.write(", spinlock_enter+exit "); l.dec(section.cycles); l.write(", TicketLock pair "); l.dec(raw.cycles)
            l.write(", SpinLock pair "); l.dec(pair.cycles); l.write(", heap 64-byte pair "); l.dec(heap.cycles)
            l.write(", yield switch "); l.dec(yields.median)
        }
    }
}
