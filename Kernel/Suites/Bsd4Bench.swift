// bsd4 select and setrunqueue cost against the number of queued lwps (part of
// `run=bench`). Measured on a private set of queues so the live scheduler is not
// disturbed, under a private (uncontended) spinlock as the kernel's bsd4_spin:
// select = lock + chooseproc (search and dequeue) + unlock; setrunqueue = a new
// priority (the lwp ran: estcpu moved) + lock + insert + the CPU choice against
// busy CPUs (every CPU designated, random upri) + unlock. Lwps get random nice
// and estcpu, so they spread over the queues. O(1) means the 10,000 row costs
// what the 10 row does: the ratios say it. Not measured: cache misses of a
// cold queue head (the private queues stay hot) and lock contention.

enum Bsd4Bench {
    static let sizes = [10, 100, 1_000, 10_000]

    static func run(_ t: inout TestContext, _ ms: UInt64) {
        var firstSelect: UInt64 = 0, firstInsert: UInt64 = 0
        for n in sizes {
            let (select, insert) = measure(n, milliseconds: max(20, ms / UInt64(sizes.count)))
            if n == sizes[0] { firstSelect = max(select.median, 1); firstInsert = max(insert.median, 1) }
            emit(n, select, insert)
            // A figure, not a timing bound: the check is that both were measured.
            t.expect("bsd4-cost", part: label(n), UInt64(min(select.values.count, insert.values.count)), .above(0)) { l in
                l.write("bsd4 with "); l.dec(n, width: 5); l.write(" queued lwps: select "); l.dec(select.median)
                l.write(" cycles, setrunqueue "); l.dec(insert.median); l.write(" cycles (medians of "); l.dec(select.values.count); l.write(", TSC read cost removed); x")
                BenchSamples.number(&l, select.median * 100 / firstSelect, .ratio); l.write(" and x")
                BenchSamples.number(&l, insert.median * 100 / firstInsert, .ratio)
                l.write(" the 10-lwp cost")
            }
        }
    }

    /// The record id's part for one size (`bsd4-cost.10000`).
    static func label(_ n: Int) -> StaticString {
        switch n {
        case 10: return "10"
        case 100: return "100"
        case 1_000: return "1000"
        default: return "10000"
        }
    }

    static func measure(_ n: Int, milliseconds ms: UInt64) -> (BenchSamples, BenchSamples) {
        var rng = XorShift(seed: UInt64(n) &* 7919 &+ 1)
        let all = SMP.online
        var lwps: [Lwp] = []
        lwps.reserveCapacity(n)
        for _ in 0..<n {
            lwps.append(Lwp(name: "bench", nice: rng.below(41) - 20, cpuMask: all, estcpu: rng.below(Bsd4.estcpuMax + 1)))
        }
        var queues = Bsd4RunQueues<Lwp>()
        for lp in lwps { lp.onRunQ = false; queues.insert(lp) }
        let upri = Bsd4Scheduler.cpus.map { _ in Bsd4.priBaseNormal + rng.below(Bsd4.maxPri) }
        let busy = CPUMask(bits: all.bits)
        let cpu = PerCPU.currentNumber
        let lock = SpinLock("bsd4 bench")
        var select = BenchSamples(), insert = BenchSamples()
        var scancpu = 0
        let overhead = readOverhead()
        let budget = TimeBudget(milliseconds: ms)
        // One select, then one setrunqueue of the lwp it took: n stay queued.
        while !budget.expired && select.values.count < 20_000 {
            let t0 = TSC.now
            lock.lock()
            let taken = queues.chooseproc(cpu: cpu, current: nil).lwp
            lock.unlock()
            let t1 = TSC.now
            guard let lp = taken else { break }
            let estcpu = rng.below(Bsd4.estcpuMax + 1)
            let t2 = TSC.now
            _ = queues.reposition(lp, to: Bsd4Priority.compute(lp.cls, niceOrRtprio: lp.nice, estcpu: estcpu, batch: 0))
            lock.lock()
            queues.insert(lp)
            scancpu &+= 1
            _ = Bsd4CPUPick.choose(lwpPriority: lp.priority, lwpMask: lp.cpuMask, scancpu: scancpu, ncpus: upri.count,
                                   curprocmask: busy, rdyprocmask: all, upri: { upri[$0] })
            lock.unlock()
            let t3 = TSC.now
            select.add((t1 &- t0) &- min(overhead, t1 &- t0))
            insert.add((t3 &- t2) &- min(overhead, t3 &- t2))
        }
        while let lp = queues.best(allowedOn: cpu) { queues.remove(lp) }
        return (select, insert)
    }

    static func emit(_ n: Int, _ select: BenchSamples, _ insert: BenchSamples) {
        switch n {
        case 10:
            select.emit("bsd4.select.10", .cycles, floor: "bsd4.select.10", "bsd4 select, 10 queued lwps")
            insert.emit("bsd4.setrunq.10", .cycles, floor: "bsd4.setrunq.10", "bsd4 setrunqueue, 10 queued lwps")
        case 100:
            select.emit("bsd4.select.100", .cycles, floor: "bsd4.select.10", "bsd4 select, 100 queued lwps")
            insert.emit("bsd4.setrunq.100", .cycles, floor: "bsd4.setrunq.10", "bsd4 setrunqueue, 100 queued lwps")
        case 1_000:
            select.emit("bsd4.select.1000", .cycles, floor: "bsd4.select.10", "bsd4 select, 1,000 queued lwps")
            insert.emit("bsd4.setrunq.1000", .cycles, floor: "bsd4.setrunq.10", "bsd4 setrunqueue, 1,000 queued lwps")
        default:
            select.emit("bsd4.select.10000", .cycles, floor: "bsd4.select.10", "bsd4 select, 10,000 queued lwps")
            insert.emit("bsd4.setrunq.10000", .cycles, floor: "bsd4.setrunq.10", "bsd4 setrunqueue, 10,000 queued lwps")
        }
    }

    /// The median cost of two back-to-back TSC reads, taken off every sample.
    static func readOverhead() -> UInt64 {
        var s = BenchSamples()
        for _ in 0..<1000 { let a = TSC.now; s.add(TSC.now &- a) }
        return s.median
    }
}
