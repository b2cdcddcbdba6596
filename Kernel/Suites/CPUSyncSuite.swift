import Synchronization

// cpusync: interlock / run / deinterlock (docs/ipi-queues.md), and sends to a CPU
// mask. Negative control: bug.cpusync_early_release=1 releases the remotes before
// the caller's own call ends; "no remote ran before the caller's own call
// finished" must then FAIL.
//
// Who writes what: `finishedRound` by the initiating caller only (inside its own
// call, at the very end); ran[c] and early[c] by CPU c only.

enum CPUSyncSuite {
    static let suite = TestSuite(name: "cpusync", kind: .normal,
                                 summary: "cpusync holds the remotes until the caller's call ends; concurrent cpusyncs; mask sends",
                                 torture: true, body: run)

    nonisolated(unsafe) static var ran: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var early: UnsafeMutablePointer<UInt64>? = nil
    /// The round whose caller-side call has completed.
    static let finishedRound = Atomic<UInt64>(0)
    static let round = Atomic<UInt64>(0)
    nonisolated(unsafe) static var initiator = 0
    /// Remotes the caller found held in their parked slot during its own call.
    nonisolated(unsafe) static var heldSeen: UInt64 = 0

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let n = PerCPU.count
        ran = .allocate(capacity: n); ran!.initialize(repeating: 0, count: n)
        early = .allocate(capacity: n); early!.initialize(repeating: 0, count: n)
        if BugKnobs.cpusyncEarlyRelease { t.note { $0.write("negative control: remotes released before the caller's call ends") } }
        holdRounds(&t, cpus)
        callerStaysOn(&t, cpus)
        concurrent(&t, cpus)
        maskSend(&t, cpus)
    }

    /// The caller holds a critical section for the whole cpusync: a thread it
    /// wakes on its own CPU (higher priority) may run only once the remotes are
    /// released, never while they spin held for a caller that was switched out.
    static func callerStaysOn(_ t: inout TestContext, _ cpus: CPUMask) {
        guard cpus.count >= 2 else { t.skip("caller-stays", reason: .needs2CPUs, "caller switched out: needs 2 CPUs"); return }
        let me = PerCPU.currentNumber
        let seen = SharedCounters()      // [0] ran, [1] remotes found held when it ran
        guard let high = Thread.create("high", priority: Thread.highPriority, cpu: me, {
            var held: UInt64 = 0
            SMP.online.forEach { if $0 != me && IPIQueue.targets[$0].parked[me] != 0 { held += 1 } }
            seen.values[1] = held
            seen.values[0] = 1
        }) else { t.expect("spawn", false, "create a high-priority thread"); return }
        highThread = high
        CPUSync.run(mask: cpus, { _, _ in
            if PerCPU.currentNumber == CPUSyncSuite.initiator, let h = CPUSyncSuite.highThread {
                CPUSyncSuite.highThread = nil
                Scheduler.schedule(h)           // higher priority, on the caller's CPU
                for _ in 0..<2000 { CPU.pause() }
            }
        })
        high.join()
        t.expect("caller-stays", seen.values[0] == 1 && seen.values[1] == 0) { l in
            l.write("a higher-priority thread woken inside the caller's call ran only after the remotes were released (")
            l.dec(seen.values[1]); l.write(" found held)")
        }
    }
    nonisolated(unsafe) static var highThread: Thread? = nil

    /// cpusync from this CPU, thousands of times: a remote may run the function
    /// only once the caller's own call of the same round has finished.
    static func holdRounds(_ t: inout TestContext, _ cpus: CPUMask) {
        initiator = PerCPU.currentNumber
        finishedRound.store(0, ordering: .relaxed)
        heldSeen = 0
        let budget = TimeBudget(milliseconds: 400)
        var rounds: UInt64 = 0
        while !budget.expired && rounds < 2000 {
            rounds += 1
            round.store(rounds, ordering: .releasing)
            CPUSync.run(mask: cpus, { _, _ in
                let me = PerCPU.currentNumber
                let r = CPUSyncSuite.round.load(ordering: .acquiring)
                if me == CPUSyncSuite.initiator {
                    for _ in 0..<200 { CPU.pause() }       // an unheld remote would run now
                    // The window: remotes parked (held) while the caller's own call runs.
                    SMP.online.forEach { if $0 != me && IPIQueue.targets[$0].parked[me] != 0 { CPUSyncSuite.heldSeen &+= 1 } }
                    // Keep the caller's own call open up to 2 ms, or until a remote
                    // ran: remotes released early (the control) run inside it even
                    // when the loaded host schedules their vCPUs late; held remotes
                    // cannot, so a correct cpusync always waits the whole bound.
                    let before = CPUSyncSuite.remoteRuns(besides: me)
                    let until = TSC.now &+ TSC.ticksPerMs &* 2
                    while TSC.now < until && CPUSyncSuite.remoteRuns(besides: me) == before { CPU.pause() }
                    CPUSyncSuite.finishedRound.store(r, ordering: .releasing)
                } else if CPUSyncSuite.finishedRound.load(ordering: .acquiring) != r {
                    CPUSyncSuite.early![me] &+= 1
                }
                CPUSyncSuite.ran![me] &+= 1
            })
        }
        // run() returned: every remote acknowledged having run the function.
        var exact = true, e: UInt64 = 0
        cpus.forEach { if ran![$0] != rounds { exact = false }; e &+= early![$0] }
        t.expect("exactly-once", rounds > 0 && exact) { l in
            l.dec(rounds); l.write(" cpusyncs over "); l.dec(cpus.count); l.write(" CPUs: the function ran exactly once per CPU each time")
        }
        // One CPU has no remote to hold: the window and the early-run check would
        // pass without testing anything.
        guard cpus.count >= 2 else {
            t.skip("window", reason: .needs2CPUs, "the window (remotes held during the caller's call): needs 2 CPUs")
            t.skip("early", reason: .needs2CPUs, "no remote ran before the caller's own call finished: needs 2 CPUs")
            return
        }
        t.expect("window", heldSeen, .above(0)) { l in
            l.write("the window was hit: the caller found remotes held during its own call "); l.dec(heldSeen); l.write(" times")
        }
        t.expect("early", e, .equals(0)) { $0.write("no remote ran before the caller's own call finished ("); $0.dec(e); $0.write(" early)") }
    }

    /// Runs of the function counted by the other CPUs so far (each writes its
    /// own slot; read here only to notice a change).
    static func remoteRuns(besides me: Int) -> UInt64 {
        var n: UInt64 = 0
        CPU.compilerBarrier()
        SMP.online.forEach { if $0 != me { n &+= ran![$0] } }
        return n
    }

    /// cpusyncs started from every CPU at once must all finish.
    /// Every cpusync runs its function once on each CPU of its mask, so once all
    /// have returned the runs counted inside the functions must equal the
    /// cpusyncs times the CPUs (a run lost or doubled under concurrency shows).
    /// A deadlock ends in the spin watchdog's panic.
    static let concurrentRuns = Atomic<UInt64>(0)
    static func concurrent(_ t: inout TestContext, _ cpus: CPUMask) {
        guard cpus.count >= 2 else {
            t.skip("concurrent", reason: .needs2CPUs, "concurrent cpusyncs: needs 2 CPUs"); return
        }
        let c = SharedCounters()
        let end = TSC.now &+ TSC.ticksPerMs &* 300
        concurrentRuns.store(0, ordering: .relaxed)
        SuiteThreads.runOnEveryCPU("cpusyncer") {
            let me = PerCPU.currentNumber
            repeat {                              // at least one each, however slow
                CPUSync.run(mask: cpus, { _, _ in CPUSyncSuite.concurrentRuns.wrappingAdd(1, ordering: .relaxed) })
                c.values[me] &+= 1
            } while TSC.now < end
        }
        var total: UInt64 = 0
        cpus.forEach { total += c.values[$0] }
        let runs = concurrentRuns.load(ordering: .relaxed), expected = total &* UInt64(cpus.count)
        t.expect("concurrent", runs, .equals(expected)) { l in
            l.dec(total); l.write(" cpusyncs started concurrently from all CPUs: "); l.dec(runs); l.write(" function runs for ")
            l.dec(expected); l.write(" expected (once per CPU each)")
        }
    }

    /// A send to a CPU mask reaches every CPU in it exactly once: waited for
    /// through its tickets, then counted (a late duplicate would show).
    static func maskSend(_ t: inout TestContext, _ cpus: CPUMask) {
        for i in 0..<PerCPU.count { ran![i] = 0 }
        var rounds: UInt64 = 0
        let budget = TimeBudget(milliseconds: 200)
        while !budget.expired && rounds < 200 {
            let tickets = IPIQueue.send(toMask: cpus, { _, _ in CPUSyncSuite.ran![PerCPU.currentNumber] &+= 1 })
            IPIQueue.wait(tickets)
            rounds += 1
        }
        var exact = true
        cpus.forEach { if ran![$0] != rounds { exact = false } }
        t.expect("mask-send", rounds > 0 && exact) { l in
            l.dec(rounds); l.write(" sends to a mask of "); l.dec(cpus.count); l.write(" CPUs: each ran exactly once on every CPU in it")
        }
    }
}
