import Synchronization

// Lock and fast-path benchmarks (part of `run=bench`): the uncontended SpinLock
// pair against the hardware's own floor (one locked exchange and one store, what
// any spinlock pair must do), critical_enter+exit against one per-CPU read, the
// 64-byte heap pair, and a SpinLock contended by 2 and 4 CPUs: acquisitions per
// second and fairness (most / fewest acquisitions of one CPU) per round.

enum LockBench {
    static let word = Atomic<UInt32>(0)
    static let lock = SpinLock("bench")
    /// 0 until the round starts, then its end (TSC).
    static let go = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext, _ ms: UInt64) {
        let slice = max(20, ms / 4)
        let floor = Benchmarks.batched(slice) { _ in
            _ = LockBench.word.exchange(1, ordering: .acquiring)
            LockBench.word.store(0, ordering: .releasing)
        }
        Benchmarks.report(&t, "atomic.pair", "locked exchange + store (floor of a lock pair)", floor)
        floor.emit("atomic.pair", .cycles, "locked xchg + store (the floor of a lock pair)")

        let spin = Benchmarks.batched(slice) { _ in LockBench.lock.lock(); LockBench.lock.unlock() }
        Benchmarks.report(&t, "spin.uncontended", "uncontended SpinLock lock+unlock", spin, baseline: floor.median, of: "the locked exchange + store")
        spin.emit("spin.uncontended", .cycles, floor: "atomic.pair", "uncontended SpinLock lock+unlock")

        let gs = Benchmarks.batched(slice) { _ in _ = GSBase.read(PerCPUHeader.cpuNumber) }
        gs.emit("fast.gsread", .cycles, "one per-CPU (GS-relative) read through its helper")
        let crit = Benchmarks.batched(slice) { _ in CriticalSection.enter(); CriticalSection.exit() }
        Benchmarks.report(&t, "crit.pair", "critical_enter+critical_exit (no preemption owed)", crit, baseline: gs.median, of: "a per-CPU read")
        crit.emit("crit.pair", .cycles, floor: "fast.gsread", "critical_enter + critical_exit, no preemption owed")

        let heap = Benchmarks.batched(slice) { _ in
            var p: UnsafeMutableRawPointer? = nil
            _ = posix_memalign(&p, 16, 64)
            kfree(p)
        }
        Benchmarks.report(&t, "heap.alloc64", "heap posix_memalign+free (64 bytes)", heap)
        heap.emit("heap.alloc64", .cycles, "heap allocate + free, 64 bytes")

        contended(&t, cpus: 2, ms)
        contended(&t, cpus: 4, ms)
    }

    static func hammer(until end: UInt64) -> UInt64 {
        var n: UInt64 = 0
        while TSC.now < end { lock.lock(); n &+= 1; lock.unlock() }
        return n
    }

    /// `k` CPUs take and release one SpinLock as fast as they can, in rounds;
    /// per round the total rate and max/min acquisitions of one CPU.
    static func contended(_ t: inout TestContext, cpus k: Int, _ ms: UInt64) {
        let online = SMP.online
        guard online.count >= k else {
            if k == 2 {
                t.skip("contended", part: "2", reason: .needs2CPUs, "contended SpinLock on 2 CPUs needs 2 CPUs")
            } else {
                t.skip("contended", part: "4", reason: .needs(cpus: k), "contended SpinLock on 4 CPUs needs 4 CPUs")
            }
            return
        }
        let counts = CPUCounters(kinds: 1)               // [0, cpu] acquisitions, by that CPU's thread
        var rates = BenchSamples(), fairness = BenchSamples()
        let rounds = 8
        let roundMs = max(10, ms / UInt64(2 * rounds))
        // This thread is the contender on its own CPU (a second thread here would
        // wait at the go flag for this one, or this one for it); the others
        // are on the next k - 1 CPUs.
        let me = PerCPU.currentNumber
        var cpus = [me]
        online.forEach { if $0 != me && cpus.count < k { cpus.append($0) } }
        for _ in 0..<rounds {
            for c in cpus { counts[0, c] = 0 }
            LockBench.go.store(0, ordering: .releasing)
            var threads: [Thread] = []
            for cpu in cpus.dropFirst() {
                if let td = Thread.create("lockbench", priority: Thread.highPriority, cpu: cpu, {
                    var end: UInt64 = 0
                    while true { end = LockBench.go.load(ordering: .acquiring); if end != 0 { break }; CPU.pause() }
                    counts[0, cpu] = LockBench.hammer(until: end)
                }) { threads.append(td) }
            }
            for td in threads { Scheduler.schedule(td) }
            TSC.delay(microseconds: 2_000)                  // every thread is waiting at the go flag
            let start = TSC.now
            let end = start &+ TSC.ticksPerMs &* roundMs
            LockBench.go.store(end, ordering: .releasing)
            counts[0, me] = hammer(until: end)
            for td in threads { td.join() }
            var total: UInt64 = 0, most: UInt64 = 0, fewest = UInt64.max
            for c in cpus { total &+= counts[0, c]; most = max(most, counts[0, c]); fewest = min(fewest, counts[0, c]) }
            rates.add(total &* 1_000_000_000 / max(1, TSC.nanoseconds(end &- start)))
            fairness.add(most &* 100 / max(1, fewest))
        }
        t.expect("contended", part: k == 2 ? "2" : "4", rates.median, .above(0)) { l in
            l.write("SpinLock contended by "); l.dec(k); l.write(" CPUs: "); l.dec(rates.median)
            l.write(" acquisitions/s (median of "); l.dec(rates.count); l.write(" rounds), most/fewest per CPU x")
            BenchSamples.number(&l, fairness.median, .ratio)
        }
        if k == 2 {
            rates.emit("spin.contended2", .opsPerSecond, "SpinLock contended by 2 CPUs: acquisitions per second")
            fairness.emit("spin.fairness2", .ratio, "SpinLock on 2 CPUs: most / fewest acquisitions of one CPU")
        } else {
            rates.emit("spin.contended4", .opsPerSecond, "SpinLock contended by 4 CPUs: acquisitions per second")
            fairness.emit("spin.fairness4", .ratio, "SpinLock on 4 CPUs: most / fewest acquisitions of one CPU")
        }
    }
}
