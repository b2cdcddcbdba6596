import Synchronization

// Benchmarks (`run=bench`, `make bench`; docs/benchmarks.md): figures and
// ratios, never a failure on timing. Every measurement prints a readable PASS
// line and a BENCH line (median, p99, samples in TSC cycles, and its floor):
// under (nested) virtualisation the hypervisor sets the floor of every
// cross-CPU operation, so the ratio to the floor measured in the same boot is
// the figure that says something about the kernel. A check here fails only if
// a measurement produced no sample at all.

enum Benchmarks {
    static let suite = TestSuite(name: "bench", kind: .benchmark,
                                 summary: "locks, critical sections, switch, wake-up, IPI, IPI queue, cpusync, rendezvous, heap, bsd4; BENCH lines", body: run)

    /// Samples of `body` (given a running count) timed in batches of 100 for
    /// `ms` milliseconds (at least 10): a sample is a batch's cycles per call
    /// (one TSC read costs hundreds of cycles under TCG, more than many of the
    /// operations timed this way).
    static func batched(_ ms: UInt64, _ body: (UInt64) -> Void) -> BenchSamples {
        var s = BenchSamples()
        var n: UInt64 = 0
        let budget = TimeBudget(milliseconds: max(10, ms))
        while !budget.expired && s.count < 100_000 {
            let t0 = TSC.now
            for i in 0..<UInt64(100) { body(n &+ i) }
            s.add((TSC.now &- t0) / 100)
            n &+= 100
        }
        return s
    }

    /// Cycles per call (the median batch) and the number of calls.
    static func cyclesPerCall(_ ms: UInt64, _ body: (UInt64) -> Void) -> (cycles: UInt64, calls: UInt64) {
        let s = batched(ms, body)
        return (s.median, UInt64(s.count) * 100)
    }

    /// One timed sample per call of `body`, for `ms` or `limit` samples.
    static func timed(_ ms: UInt64, limit: Int = 20_000, _ body: () -> Void) -> BenchSamples {
        var s = BenchSamples()
        let budget = TimeBudget(milliseconds: ms)
        while !budget.expired && s.count < limit {
            let t0 = TSC.now
            body()
            s.add(TSC.now &- t0)
        }
        return s
    }

    /// The readable line: "name: median N cycles (N ns), p99 N, N samples[, x.xx of floor]";
    /// its check `samples.KEY` (KEY: the figure's BENCH name) wants one sample at least.
    static func report(_ t: inout TestContext, _ key: StaticString, _ name: StaticString, _ s: BenchSamples,
                       baseline: UInt64 = 0, of floor: StaticString = "a raw IPI round trip") {
        let sorted = s.values.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        let p99 = s.percentile(99, sorted)
        t.expect("samples", part: key, UInt64(s.count), .above(0)) { l in
            l.write(name); l.write(": median "); l.dec(median); l.write(" cycles ("); l.dec(TSC.nanoseconds(median))
            l.write(" ns), p99 "); l.dec(p99); l.write(", "); l.dec(s.count); l.write(" samples")
            if baseline > 0 { l.write(", x"); BenchSamples.number(&l, median * 100 / baseline, .ratio); l.write(" "); l.write(floor) }
        }
    }

    static func run(_ t: inout TestContext) {
        let ms: UInt64 = UInt64(max(50, KernelOptions.int("bench.ms", default: 400)))
        BenchEnvironment.emit()
        LockBench.run(&t, ms)
        SchedBench.run(&t, ms)
        IPIBench.run(&t, ms)
        Bsd4Bench.run(&t, ms)
        KTraceBench.run(&t, ms)
    }

    /// Two CPUs for a cross-CPU measurement: 1 and 2 when there are three (CPU 0
    /// keeps the console and the suite's own thread), else 0 and 1.
    static func pair() -> (Int, Int)? {
        let cpus = SMP.online
        guard cpus.count >= 2 else { return nil }
        if cpus.count >= 3, let a = cpus.nth(1), let b = cpus.nth(2) { return (a, b) }
        guard let a = cpus.nth(0), let b = cpus.nth(1) else { return nil }
        return (a, b)
    }
}
