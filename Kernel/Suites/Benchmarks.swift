import Synchronization

// Benchmarks (`run=bench`, `make bench`): figures and ratios, never a failure on
// timing. Costs are given in TSC cycles and as ratios to a raw IPI ping-pong
// measured in the same boot: under (nested) virtualisation the hypervisor sets
// the floor of every cross-CPU operation (docs/testing.md), so the ratio is the
// figure that says something about the kernel.

enum Benchmarks {
    static let suite = TestSuite(name: "bench", kind: .benchmark,
                                 summary: "IPI, IPI queue, cpusync, rendezvous, switch, lock, heap, bsd4 select/setrunqueue costs", body: run)

    static let pongs = Atomic<UInt64>(0)
    nonisolated(unsafe) static var pingFrom = 0

    /// Cycles per call of `body` (given a running count), in batches of 100
    /// for `ms` milliseconds (at least 10): for operations too short to time
    /// one by one (KTraceBench, FastPathBench).
    static func cyclesPerCall(_ ms: UInt64, _ body: (UInt64) -> Void) -> (cycles: UInt64, calls: UInt64) {
        var n: UInt64 = 0
        let budget = TimeBudget(milliseconds: max(10, ms))
        let t0 = TSC.now
        while !budget.expired {
            for i in 0..<UInt64(100) { body(n &+ i) }
            n &+= 100
        }
        return ((TSC.now &- t0) / max(n, 1), n)
    }

    /// Collects samples (TSC cycles) and reports median and mean.
    struct Samples {
        var values: [UInt64] = []
        mutating func add(_ v: UInt64) { values.append(v) }
        var median: UInt64 {
            guard !values.isEmpty else { return 0 }
            let s = values.sorted()
            return s[s.count / 2]
        }
        var mean: UInt64 { values.isEmpty ? 0 : values.reduce(0, &+) / UInt64(values.count) }
    }

    static func report(_ t: inout TestContext, _ name: StaticString, _ s: Samples, per: UInt64 = 1,
                       baseline: UInt64 = 0, of floor: StaticString = "a raw IPI round trip") {
        let median = s.median / max(per, 1)
        t.check(!s.values.isEmpty) { l in
            l.write(name); l.write(": median "); l.dec(median); l.write(" cycles ("); l.dec(TSC.nanoseconds(median))
            l.write(" ns), mean "); l.dec(s.mean / max(per, 1)); l.write(", "); l.dec(s.values.count); l.write(" samples")
            if baseline > 0 {
                l.write(", "); l.dec(median * 100 / baseline); l.write("% of "); l.write(floor)
            }
        }
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let budget: UInt64 = UInt64(max(50, KernelOptions.int("bench.ms", default: 400)))
        var rawRoundTrip: UInt64 = 0
        if let other = cpus.next(atOrAfter: PerCPU.currentNumber + 1), other != PerCPU.currentNumber {
            rawRoundTrip = rawIPI(&t, other, budget)
            ipiQueueRoundTrip(&t, other, budget, baseline: rawRoundTrip)
            ipiQueueThroughput(&t, other, budget)
            cpusync(&t, budget, baseline: rawRoundTrip)
            let broadcast = rawBroadcast(&t, budget)
            rendezvous(&t, budget, baseline: broadcast)
        } else {
            t.skip("cross-CPU benchmarks need 2 CPUs")
        }
        contextSwitch(&t, budget)
        spinlockAndHeap(&t, budget)
        threadLifecycle(&t, budget)
        Bsd4Bench.run(&t, budget)
        KTraceBench.run(&t, budget)
        FastPathBench.run(&t, budget)
    }

    /// Ping on one vector, pong back on another: the hardware + hypervisor floor.
    static func rawIPI(_ t: inout TestContext, _ other: Int, _ ms: UInt64) -> UInt64 {
        pingFrom = PerCPU.currentNumber
        Traps.register(vector: Vectors.benchPing) { _ in
            LocalAPIC.eoi()
            LocalAPIC.sendIPI(to: PerCPU.cpus[Benchmarks.pingFrom].apicID, vector: UInt8(Vectors.benchPong))
        }
        Traps.register(vector: Vectors.benchPong) { _ in
            LocalAPIC.eoi()
            Benchmarks.pongs.wrappingAdd(1, ordering: .releasing)
        }
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 20_000 {
            let before = pongs.load(ordering: .acquiring)
            let t0 = TSC.now
            LocalAPIC.sendIPI(to: PerCPU.cpus[other].apicID, vector: UInt8(Vectors.benchPing))
            while pongs.load(ordering: .acquiring) == before { CPU.pause() }
            s.add(TSC.now &- t0)
        }
        report(&t, "raw IPI round trip", s)
        return s.median
    }

    /// send + wait_ipiq for a message that does nothing.
    static func ipiQueueRoundTrip(_ t: inout TestContext, _ other: Int, _ ms: UInt64, baseline: UInt64) {
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 20_000 {
            let t0 = TSC.now
            if let tk = IPIQueue.send(to: other, { _, _ in }) { IPIQueue.wait(tk) }
            s.add(TSC.now &- t0)
        }
        report(&t, "IPI queue message round trip (send + wait_ipiq)", s, baseline: baseline)
    }

    /// One-way bursts: messages per hardware IPI thanks to the poll latch.
    static func ipiQueueThroughput(_ t: inout TestContext, _ other: Int, _ ms: UInt64) {
        let before = IPIStats.now()
        let t0 = TSC.now
        let budget = TimeBudget(milliseconds: ms)
        var n: UInt64 = 0
        while !budget.expired { IPIQueue.send(to: other, { _, _ in }); n += 1 }
        let cycles = TSC.now &- t0
        let d = IPIStats.now().minus(before)
        t.check(n > 0) { l in
            l.write("IPI queue one-way burst: "); l.dec(n); l.write(" messages, "); l.dec(cycles / max(n, 1))
            l.write(" cycles each, "); l.dec(d.ipis); l.write(" hardware IPIs ("); l.dec(n / max(d.ipis, 1))
            l.write(" messages per IPI)")
        }
    }

    static let broadcastAcks = Atomic<UInt64>(0)

    /// One broadcast IPI (all but self); every other CPU acknowledges in its
    /// handler: the floor for an all-CPU operation.
    static func rawBroadcast(_ t: inout TestContext, _ ms: UInt64) -> UInt64 {
        Traps.register(vector: Vectors.benchBroadcast) { _ in
            LocalAPIC.eoi()
            Benchmarks.broadcastAcks.wrappingAdd(1, ordering: .releasing)
        }
        let others = UInt64(SMP.online.count - 1)
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 20_000 {
            let before = broadcastAcks.load(ordering: .acquiring)
            let t0 = TSC.now
            LocalAPIC.sendToAllButSelf(vector: UInt8(Vectors.benchBroadcast))
            while broadcastAcks.load(ordering: .acquiring) &- before < others { CPU.pause() }
            s.add(TSC.now &- t0)
        }
        report(&t, "raw broadcast IPI round trip (all CPUs acknowledge)", s)
        return s.median
    }

    /// A rendezvous on every CPU with an empty action, next to the broadcast.
    static func rendezvous(_ t: inout TestContext, _ ms: UInt64, baseline: UInt64) {
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 20_000 {
            let t0 = TSC.now
            Rendezvous.runOnAll(action: { _ in })
            s.add(TSC.now &- t0)
        }
        report(&t, "rendezvous on all CPUs (empty action)", s, baseline: baseline, of: "a raw broadcast round trip")
    }

    static func cpusync(_ t: inout TestContext, _ ms: UInt64, baseline: UInt64) {
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 5_000 {
            let t0 = TSC.now
            CPUSync.run(mask: SMP.online, { _, _ in })
            s.add(TSC.now &- t0)
        }
        report(&t, "cpusync on all CPUs", s, baseline: baseline)
    }

    /// Two threads on this CPU yielding to each other: one yield = one switch.
    static func contextSwitch(_ t: inout TestContext, _ ms: UInt64) {
        let c = SharedCounters()      // [0] switches, [1] cycles
        let end = TSC.now &+ TSC.ticksPerMs &* ms
        var threads: [Thread] = []
        for _ in 0..<2 {
            if let td = Thread.create("switcher", priority: Thread.highPriority, cpu: PerCPU.currentNumber, {
                let t0 = TSC.now
                var n: UInt64 = 0
                while TSC.now < end { Scheduler.yield(); n += 1 }
                c.values[0] &+= n
                c.values[1] &+= TSC.now &- t0
            }) { threads.append(td) }
        }
        for td in threads { Scheduler.schedule(td) }
        for td in threads { td.join() }
        let perSwitch = c.values[1] / max(c.values[0], 1) / 2
        t.check(c.values[0] > 0) { l in
            l.write("thread switch (yield between two threads): "); l.dec(perSwitch); l.write(" cycles ("); l.dec(TSC.nanoseconds(perSwitch))
            l.write(" ns), "); l.dec(c.values[0]); l.write(" yields")
        }
    }

    static func spinlockAndHeap(_ t: inout TestContext, _ ms: UInt64) {
        let lock = SpinLock("bench")
        var n: UInt64 = 0
        var t0 = TSC.now
        var budget = TimeBudget(milliseconds: ms / 2)
        while !budget.expired { for _ in 0..<100 { lock.lock(); lock.unlock() }; n += 100 }
        let lockCycles = (TSC.now &- t0) / max(n, 1)
        t.check(n > 0) { l in l.write("uncontended SpinLock lock+unlock: "); l.dec(lockCycles); l.write(" cycles") }
        n = 0
        t0 = TSC.now
        budget = TimeBudget(milliseconds: ms / 2)
        while !budget.expired {
            for _ in 0..<100 { var p: UnsafeMutableRawPointer? = nil; _ = posix_memalign(&p, 16, 64); kfree(p) }
            n += 100
        }
        let heapCycles = (TSC.now &- t0) / max(n, 1)
        t.check(n > 0) { l in l.write("heap posix_memalign+free (64 bytes): "); l.dec(heapCycles); l.write(" cycles") }
    }

    static func threadLifecycle(_ t: inout TestContext, _ ms: UInt64) {
        var s = Samples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.values.count < 2_000 {
            let t0 = TSC.now
            Thread.spawn("bench", { })?.join()
            s.add(TSC.now &- t0)
        }
        report(&t, "thread create + run + exit + join (same CPU)", s)
    }
}
