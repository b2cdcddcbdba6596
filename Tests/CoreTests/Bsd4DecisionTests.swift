import XCTest
@testable import QuartetCore

// The decisions the kernel glue (Kern/Sched/Bsd4) and the simulator share
// (docs/bsd4-scheduler.md, "Entry points", "estcpu"): setrunqueue's target,
// delivery and A7 claim; the rrcount of a designation (A6); the helper's
// fill/challenge/chain; resetpriority's own-upri store and poke; the
// scheduler clock; the once-a-second scan. The cases follow DragonFly's
// bsd4_setrunqueue, bsd4_select_curproc/acquire_curproc, sched_thread,
// bsd4_schedulerclock and bsd4_resetpriority. A bug in one of these fails here
// and in the kernel's suites alike. Uses `Bsd4TestLwp` from Bsd4QueueTests.

private func mask(_ cpus: Int...) -> CPUMask {
    var m = CPUMask()
    for c in cpus { m.insert(c) }
    return m
}

final class Bsd4DecisionTests: XCTestCase {
    private func setrunqueue(priority: Int = 160, lwpMask: CPUMask = CPUMask(bits: UInt64.max), scancpu: Int,
                             ncpus: Int = 4, online: CPUMask? = nil, thisCPU: Int = 0, thisHasUschedcp: Bool = true,
                             cur: CPUMask, rdy: CPUMask, upri: [Int]) -> Bsd4SetrunqueueDecision {
        Bsd4SetrunqueueDecision.decide(lwpPriority: priority, lwpMask: lwpMask, scancpu: scancpu, ncpus: ncpus,
                                       online: online ?? CPUMask.first(ncpus), thisCPU: thisCPU,
                                       thisHasUschedcp: thisHasUschedcp, curprocmask: cur, rdyprocmask: rdy,
                                       upri: { upri[$0] })
    }

    // MARK: setrunqueue

    func testAFreeReadyCPUIsToldAndClaimedUnderTheLock() {
        let null = Bsd4.priBaseNull
        // CPU 0 runs the caller's lwp; CPUs 2 and 3 are free and ready; the
        // rotor (scancpu 1) starts the sweep at 1, which is busy: CPU 2.
        let d = setrunqueue(scancpu: 1, cur: mask(0, 1), rdy: mask(2, 3), upri: [150, 150, null, null])
        XCTAssertEqual(d.pick, Bsd4CPUPick(cpu: 2, pass: .free))
        XCTAssertEqual(d.delivery, .remoteResched(cpu: 2), "PRIBASE_NULL is a worse queue: need_user_resched_remote")
        XCTAssertEqual(d.claim, 2, "A7: its rdyprocmask bit is cleared before bsd4_spin is dropped")
        XCTAssertTrue(d.swept)
    }

    func testANotReadyCPUIsNeverSweptEvenWhenFree() {
        let null = Bsd4.priBaseNull
        // CPU 2 is free but its helper has not said it is ready (bit clear):
        // only the ready CPU 3 may be offered the lwp.
        let d = setrunqueue(scancpu: 2, cur: mask(0, 1), rdy: mask(3), upri: [150, 150, null, null])
        XCTAssertEqual(d.target, 3)
        XCTAssertEqual(d.claim, 3)
        // Nothing ready anywhere: the rotor CPU, unchecked and not a sweep.
        let r = setrunqueue(scancpu: 2, cur: mask(0, 1), rdy: CPUMask(), upri: [150, 150, null, null])
        XCTAssertEqual(r.pick, Bsd4CPUPick(cpu: 2, pass: .rotor))
        XCTAssertEqual(r.delivery, .remoteResched(cpu: 2))
        XCTAssertEqual(r.claim, 2)
        XCTAssertFalse(r.swept, "the rotor fallback is no offer of a readiness (A7 counts only swept offers)")
    }

    func testABusyReadyCPUIsToldOnlyWhenItsQueueIsWorse() {
        // Every CPU busy and ready. CPU 1 runs a better queue (140 vs 160),
        // CPU 2 the same queue (161), CPU 3 a worse one (200): CPU 3.
        let d = setrunqueue(scancpu: 1, cur: mask(0, 1, 2, 3), rdy: mask(1, 2, 3), upri: [150, 140, 161, 200])
        XCTAssertEqual(d.pick, Bsd4CPUPick(cpu: 3, pass: .busy))
        XCTAssertEqual(d.delivery, .remoteResched(cpu: 3))
        XCTAssertEqual(d.claim, 3)
        // Not worse anywhere: the rotor (CPU 1), told by a helper wake-up.
        let n = setrunqueue(scancpu: 1, cur: mask(0, 1, 2, 3), rdy: mask(1, 2, 3), upri: [150, 140, 161, 160])
        XCTAssertEqual(n.pick.pass, .rotor)
        XCTAssertEqual(n.delivery, .remoteWakeHelper(cpu: 1))
    }

    func testTheLwpMaskAndOfflineRotorKeepTheChoiceHere() {
        let null = Bsd4.priBaseNull
        // The only free ready CPU is outside the lwp's mask.
        let d = setrunqueue(lwpMask: mask(0, 1), scancpu: 1, cur: mask(0, 1), rdy: mask(2), upri: [150, 150, null, null])
        XCTAssertEqual(d.pick.pass, .rotor)
        // The rotor names CPU 3, which never came online: this CPU instead,
        // whose upri queue is worse and which has a uschedcp: local resched.
        let o = setrunqueue(scancpu: 3, online: mask(0, 1, 2), thisHasUschedcp: true, cur: mask(0, 1, 2),
                            rdy: CPUMask(), upri: [200, 150, 150, null])
        XCTAssertEqual(o.target, 0)
        XCTAssertEqual(o.delivery, .localResched)
        XCTAssertNil(o.claim, "no other CPU told, no bit to clear")
        let w = setrunqueue(scancpu: 3, online: mask(0, 1, 2), thisHasUschedcp: false, cur: mask(1, 2),
                            rdy: CPUMask(), upri: [null, 150, 150, null])
        XCTAssertEqual(w.delivery, .localWakeHelper)
        let n = setrunqueue(scancpu: 3, online: mask(0, 1, 2), cur: mask(0, 1, 2), rdy: CPUMask(), upri: [150, 150, 150, null])
        XCTAssertEqual(n.delivery, .nothing)
    }

    /// Two setrunqueues in a row, the second seeing the first's claim (the
    /// kernel holds bsd4_spin across decide and claim): never the same CPU
    /// twice on one readiness (A7).
    func testTwoParksNeverPickTheSameReadyCPU() {
        let null = Bsd4.priBaseNull
        var rdy = mask(3)
        let first = setrunqueue(lwpMask: mask(3), scancpu: 1, cur: mask(0, 1, 2), rdy: rdy, upri: [150, 150, 150, null])
        XCTAssertEqual(first.claim, 3)
        XCTAssertTrue(first.swept)
        if let t = first.claim { rdy.remove(t) }
        let second = setrunqueue(lwpMask: mask(3), scancpu: 2, cur: mask(0, 1, 2), rdy: rdy, upri: [150, 150, 150, null])
        XCTAssertFalse(second.swept && second.claim == 3, "a second offer of CPU 3's one readiness")
    }

    // MARK: designation (A6)

    func testAnInstallStartsAFreshIntervalAndTakeOrStealCarryIt() {
        let s = Bsd4PerCPU(uschedcp: 7, upri: 180, rrcount: 3)
        XCTAssertEqual(Bsd4Designation.install.apply(to: s, lwp: 9, priority: 160), Bsd4PerCPU(uschedcp: 9, upri: 160, rrcount: 0))
        XCTAssertEqual(Bsd4Designation.steal.apply(to: s, lwp: 9, priority: 160), Bsd4PerCPU(uschedcp: 9, upri: 160, rrcount: 3))
        XCTAssertEqual(Bsd4Designation.take.apply(to: s.released(), lwp: 9, priority: 160).rrcount, 3)
        XCTAssertEqual(s.released(), Bsd4PerCPU(uschedcp: nil, upri: Bsd4.priBaseNull, rrcount: 3))
        for carried in 0..<Bsd4.rrInterval { XCTAssertEqual(Bsd4Designation.install.rrcount(carried: carried), 0) }
    }

    // MARK: the helper

    func testHelperFillsAnEmptyDesignation() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        q.insert(Bsd4TestLwp(1, priority: 170))
        q.insert(Bsd4TestLwp(2, priority: 150, mask: 0b10))
        let p = q.helperPass(cpu: 0, current: nil, curprocmask: mask(1), rdyprocmask: mask(0), ncpus: 2)
        XCTAssertEqual(p.step, .fill)
        XCTAssertEqual(p.install?.id, 1, "the best lwp allowed here")
        XCTAssertNil(p.chain)
        XCTAssertEqual(q.runqcount, 1)
    }

    func testHelperChallengesWithHysteresisAndChainsWhatItKeeps() {
        // Current 162, candidate 160: within one queue, keep current, and
        // chain the work to the first free ready CPU (2), never to itself.
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        q.insert(Bsd4TestLwp(1, priority: 160))
        let cur = Bsd4TestLwp(9, priority: 162)
        let p = q.helperPass(cpu: 0, current: cur, curprocmask: mask(0, 1), rdyprocmask: mask(0, 2, 3), ncpus: 4)
        XCTAssertEqual(p.step, .challenge)
        XCTAssertNil(p.install)
        XCTAssertEqual(p.chain, 2)
        XCTAssertEqual(q.runqcount, 1, "kept on the queue for the chained CPU")
        // No free ready CPU: no chain.
        XCTAssertNil(q.helperPass(cpu: 0, current: cur, curprocmask: mask(0, 1, 2, 3), rdyprocmask: mask(0, 2, 3), ncpus: 4).chain)
        // A whole queue better: it displaces current.
        q.insert(Bsd4TestLwp(2, priority: 150))
        let s = q.helperPass(cpu: 0, current: cur, curprocmask: mask(0, 1), rdyprocmask: mask(0, 2), ncpus: 4)
        XCTAssertEqual(s.install?.id, 2)
        XCTAssertNil(s.chain)
        // Nothing queued: idle.
        var e = Bsd4RunQueues<Bsd4TestLwp>()
        XCTAssertEqual(e.helperPass(cpu: 0, current: cur, curprocmask: mask(0), rdyprocmask: mask(0, 1), ncpus: 2).step, .idle)
    }

    // MARK: resetpriority

    func testOwnDesignatedLwpUpdatesUpriAndPokesAgainstIt() {
        // A running hog (not queued) on this CPU drops a queue: our upri
        // follows it, and checkpri 0 pokes this CPU (a local resched), when
        // its bit is set.
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let lp = Bsd4TestLwp(1, priority: 160)
        let new = Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: Bsd4.estcpuMax, batch: 0)
        let r = q.resetpriority(lp, to: new, target: 0, thisCPU: 0, targetDesignatesLwp: true, targetReady: true, targetUpri: 160)
        XCTAssertEqual(r.ownUpri, new.priority)
        XCTAssertEqual(r.poke, .local)
        XCTAssertFalse(r.movedQueued)
        // Its bit clear (a busy CPU whose helper has not run): no poke at all.
        lp.set(160)
        XCTAssertEqual(q.resetpriority(lp, to: new, target: 0, thisCPU: 0, targetDesignatesLwp: true, targetReady: false,
                                       targetUpri: 160).poke, .none)
        // Another CPU's lwp: its upri is never written from here (A1).
        lp.set(160)
        let remote = q.resetpriority(lp, to: new, target: 2, thisCPU: 0, targetDesignatesLwp: true, targetReady: true, targetUpri: 160)
        XCTAssertNil(remote.ownUpri)
        XCTAssertEqual(remote.poke, .remote(cpu: 2))
    }

    func testAQueuedLwpMovedToABetterQueuePokesAWorseTarget() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let lp = Bsd4TestLwp(1, priority: 200)
        q.insert(lp)
        let better = Bsd4Priority.compute(.normal, niceOrRtprio: -20, estcpu: 0, batch: 0)
        let r = q.resetpriority(lp, to: better, target: 1, thisCPU: 0, targetDesignatesLwp: false, targetReady: true,
                                targetUpri: 300)
        XCTAssertTrue(r.movedQueued, "the seed-000 path")
        XCTAssertEqual(r.poke, .remote(cpu: 1))
        XCTAssertNil(q.checkA2())
        // The target's queue is not worse: no poke (checkpri 1).
        let worse = Bsd4Priority.compute(.normal, niceOrRtprio: 20, estcpu: 0, batch: 0)
        _ = q.resetpriority(lp, to: worse, target: 1, thisCPU: 0, targetDesignatesLwp: false, targetReady: true, targetUpri: 300)
        XCTAssertEqual(q.resetpriority(lp, to: better, target: 1, thisCPU: 0, targetDesignatesLwp: false, targetReady: true,
                                       targetUpri: 100).poke, .none)
    }

    // MARK: the clock and the scan

    func testSchedulerClockRoundRobinsEveryRRIntervalAndCharges() {
        var s = Bsd4EstcpuState(estcpu: 0, batch: 0)
        var rr = 0
        var resched = 0
        for tick in 1...(3 * Bsd4.rrInterval) {
            let t = Bsd4SchedulerClock.tick(s, rrcount: rr, cls: .normal, niceOrRtprio: 0)
            XCTAssertEqual(t.state.estcpu, Bsd4.estcpuLim(s.estcpu + Bsd4.estcpuIncrement))
            XCTAssertEqual(t.state.cpticks, s.cpticks + 1)
            XCTAssertEqual(t.priority, Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: t.state.estcpu, batch: 0))
            XCTAssertEqual(t.resched, tick % Bsd4.rrInterval == 0, "tick \(tick)")
            XCTAssertLessThan(t.rrcount, Bsd4.rrInterval)
            if t.resched { resched += 1; XCTAssertEqual(t.rrcount, 0) }
            s = t.state
            rr = t.rrcount
        }
        XCTAssertEqual(resched, 3)
    }

    func testScanCountsSleepSecondsAndLeavesLongSleepersToTheirWakeUp() {
        let s = Bsd4EstcpuState(estcpu: 4000, batch: 100, cpticks: 10, cpbase: 0, slptime: 1)
        let asleep = Bsd4ScanStep.decide(s, asleep: true, secondTick: true, now: 50, runqcount: 0, ncpus: 1, cls: .normal,
                                         niceOrRtprio: 0)
        XCTAssertEqual(asleep.state.slptime, 2)
        XCTAssertNil(asleep.recalculation, "slept more than a second: left to the wake-up")
        XCTAssertEqual(asleep.state.estcpu, 4000)
        // Not the second tick (bsd4-torture's tight loop): no sleep counted.
        let tight = Bsd4ScanStep.decide(s, asleep: true, secondTick: false, now: 50, runqcount: 0, ncpus: 1, cls: .normal,
                                        niceOrRtprio: 0)
        XCTAssertEqual(tight.state.slptime, 1)
        XCTAssertNotNil(tight.recalculation)
        // A running hog is recalculated: the sample formula runs.
        let hog = Bsd4ScanStep.decide(Bsd4EstcpuState(estcpu: 4000, cpticks: 50, cpbase: 0), asleep: false, secondTick: true,
                                      now: 50, runqcount: 1, ncpus: 2, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(hog.recalculation?.kind, .sampled)
        XCTAssertEqual(hog.state.cpbase, 50)
        XCTAssertEqual(hog.state.cpticks, 0)
    }
}
