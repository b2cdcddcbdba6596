import Synchronization

// cpusync: interlock / run / deinterlock, and sends to a CPU mask.

enum CPUSyncSuite {
    static let suite = TestSuite(name: "cpusync", kind: .normal,
                                 summary: "cpusync holds the remotes while the caller runs; mask sends", body: run)

    /// Per CPU: times the cpusync function ran there.
    nonisolated(unsafe) static var ran: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    /// Violations: a remote ran the function before the caller's own call ended.
    static let early = Atomic<UInt64>(0)
    static let callerInside = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let n = PerCPU.count
        ran = .allocate(capacity: n)
        for i in 0..<n { (ran! + i).initialize(to: Atomic(0)) }
        early.store(0, ordering: .relaxed)

        // 1. cpusync from this CPU: remotes must wait until our call returns.
        initiator = PerCPU.currentNumber
        let budget = TimeBudget(milliseconds: 400)
        var rounds: UInt64 = 0
        while !budget.expired && rounds < 2000 {
            CPUSync.run(mask: cpus, { _, _ in
                let me = PerCPU.currentNumber
                if me != CPUSyncSuite.initiator && CPUSyncSuite.callerInside.load(ordering: .acquiring) {
                    CPUSyncSuite.early.wrappingAdd(1, ordering: .relaxed)
                }
                if me == CPUSyncSuite.initiator {
                    CPUSyncSuite.callerInside.store(true, ordering: .releasing)
                    for _ in 0..<200 { CPU.pause() }      // give an unheld remote time to run early
                    CPUSyncSuite.callerInside.store(false, ordering: .releasing)
                }
                CPUSyncSuite.ran![me].wrappingAdd(1, ordering: .relaxed)
            })
            rounds += 1
        }
        var everywhere = true
        cpus.forEach { if ran![$0].load(ordering: .relaxed) != rounds { everywhere = false } }
        t.check(rounds > 0 && everywhere) { l in
            l.dec(rounds); l.write(" cpusyncs over "); l.dec(cpus.count); l.write(" CPUs: the function ran once per CPU each time")
        }
        let e = early.load(ordering: .relaxed)
        t.check(e == 0) { $0.write("no remote ran before the caller's own call finished ("); $0.dec(e); $0.write(")") }

        // 2. Concurrent cpusyncs started from every CPU at once must all finish.
        let c = SharedCounters()
        let end = TSC.now &+ TSC.ticksPerMs &* 300
        var threads: [Thread] = []
        cpus.forEach { cpu in
            if let td = Thread.spawn("cpusyncer", cpu: cpu, {
                repeat {                              // at least one each, however slow
                    CPUSync.run(mask: cpus, { _, _ in CPU.pause() })
                    c.values[cpu] &+= 1
                } while TSC.now < end
            }) { threads.append(td) }
        }
        for td in threads { td.join() }
        var concurrent: UInt64 = 0, everyone = true
        cpus.forEach { concurrent += c.values[$0]; if c.values[$0] == 0 { everyone = false } }
        t.check(everyone) { l in l.dec(concurrent); l.write(" cpusyncs started concurrently from all CPUs completed (no deadlock)") }

        // 3. A send to a CPU mask reaches every CPU in it exactly once.
        for i in 0..<n { ran![i].store(0, ordering: .relaxed) }
        IPIQueue.send(toMask: cpus, { _, _ in CPUSyncSuite.ran![PerCPU.currentNumber].wrappingAdd(1, ordering: .relaxed) })
        let settle = TimeBudget(milliseconds: 2000)
        var all = false
        while !settle.expired && !all {
            all = true
            cpus.forEach { if ran![$0].load(ordering: .relaxed) != 1 { all = false } }
            IPIQueue.process()
        }
        t.check(all, "a send to a CPU mask ran exactly once on every CPU in it")
    }

    nonisolated(unsafe) static var initiator = 0
}
