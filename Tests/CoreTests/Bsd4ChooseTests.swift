import XCTest
@testable import QuartetCore

// chooseproc's hysteresis and affinity nudge, setrunqueue's CPU choice and
// delivery, acquire_curproc's and the helper's decisions
// (docs/bsd4-scheduler.md, "Entry points"). Uses `Bsd4TestLwp` from Bsd4QueueTests.

private func mask(_ cpus: Int...) -> CPUMask {
    var m = CPUMask()
    for c in cpus { m.insert(c) }
    return m
}

final class Bsd4ChooseTests: XCTestCase {
    // MARK: chooseproc

    func testHysteresisOnBothSidesOfOneQueue() {
        // Candidate priority 160. current.priority < 160 + PPQ keeps current.
        for (currentPriority, keep) in [(150, true), (160, true), (163, true), (164, false), (170, false)] {
            var q = Bsd4RunQueues<Bsd4TestLwp>()
            let cand = Bsd4TestLwp(1, priority: 160)
            q.insert(cand)
            let cur = Bsd4TestLwp(2, priority: currentPriority)
            switch q.chooseproc(cpu: 0, current: cur) {
            case .keepCurrent:
                XCTAssertTrue(keep, "current \(currentPriority)")
                XCTAssertTrue(cand.onRunQ, "keeping current leaves the queue alone")
                XCTAssertEqual(q.runqcount, 1)
            case .take(let lp):
                XCTAssertFalse(keep, "current \(currentPriority)")
                XCTAssertTrue(lp === cand)
                XCTAssertEqual(q.runqcount, 0)
            case .nothing:
                XCTFail("nothing chosen")
            }
        }
        // The hysteresis is numeric, not by queue: 161 (queue 8) against a current
        // 164 (queue 9) is a better queue, but 164 < 161 + 4, so current stays.
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        q.insert(Bsd4TestLwp(1, priority: 161))
        if case .keepCurrent = q.chooseproc(cpu: 0, current: Bsd4TestLwp(2, priority: 164)) {} else { XCTFail("164 < 161 + 4") }
        // Without current there is no hysteresis.
        XCTAssertEqual(q.chooseproc(cpu: 0, current: nil).lwp?.id, 1)
        // Nothing allowed on this CPU: nothing, even with a current lwp.
        q.insert(Bsd4TestLwp(3, priority: 140, mask: 0b10))
        if case .nothing = q.chooseproc(cpu: 0, current: Bsd4TestLwp(4, priority: 250)) {} else { XCTFail("nothing allowed on CPU 0") }
    }

    func testAffinityNudge() {
        func choose(_ lwps: [Bsd4TestLwp], cpu: Int) -> Int? {
            var q = Bsd4RunQueues<Bsd4TestLwp>()
            for lp in lwps { q.insert(lp) }
            let got = q.chooseproc(cpu: cpu, current: nil).lwp?.id
            XCTAssertNil(q.checkA2())
            return got
        }
        // Head last ran on CPU 1, the next one here (CPU 0): take the next.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 1), Bsd4TestLwp(2, priority: 153, lastCPU: 0)], cpu: 0), 2)
        // Head last ran here: the head.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 0), Bsd4TestLwp(2, priority: 153, lastCPU: 0)], cpu: 0), 1)
        // The next one last ran elsewhere too: the head.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 1), Bsd4TestLwp(2, priority: 153, lastCPU: 2)], cpu: 0), 1)
        // Only the lwp right behind counts, not the third.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 1), Bsd4TestLwp(2, priority: 152, lastCPU: 1),
                               Bsd4TestLwp(3, priority: 152, lastCPU: 0)], cpu: 0), 1)
        // Only within the same list: an lwp of the next queue that ran here is not taken.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 1), Bsd4TestLwp(2, priority: 156, lastCPU: 0)], cpu: 0), 1)
        // The next one ran here but may no longer run here (its mask changed): the head.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 1), Bsd4TestLwp(2, priority: 152, lastCPU: 0, mask: 0b10)],
                              cpu: 0), 1)
        // When the head is skipped for its mask, the nudge applies to the lwp found.
        XCTAssertEqual(choose([Bsd4TestLwp(1, priority: 152, lastCPU: 0, mask: 0b10), Bsd4TestLwp(2, priority: 152, lastCPU: 1),
                               Bsd4TestLwp(3, priority: 152, lastCPU: 0)], cpu: 0), 3)
    }

    // MARK: setrunqueue's CPU choice

    func testFirstSweepTakesAFreeReadyAllowedCPUFromTheRotor() {
        let upri = Array(repeating: 512, count: 4)
        // scancpu 5 -> rotor 5 % 4 = 1: CPU 1 is free and ready.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(4), scancpu: 5, ncpus: 4,
                                          curprocmask: CPUMask(), rdyprocmask: CPUMask.first(4), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 1, pass: .free))
        // Only the low 16 bits of scancpu count: 0x1_0002 -> 2.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(4), scancpu: 0x1_0002, ncpus: 4,
                                          curprocmask: CPUMask(), rdyprocmask: CPUMask.first(4), upri: { upri[$0] }).cpu, 2)
        // CPU 1 not ready, CPU 2 busy: the sweep goes on to 3, wrapping if needed.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(4), scancpu: 1, ncpus: 4,
                                          curprocmask: mask(2), rdyprocmask: mask(0, 2, 3), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 3, pass: .free))
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(4), scancpu: 3, ncpus: 4,
                                          curprocmask: mask(3), rdyprocmask: mask(0, 3), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 0, pass: .free), "wraps around")
        // The lwp's mask excludes CPUs 1 and 2.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: mask(0, 3), scancpu: 1, ncpus: 4,
                                          curprocmask: CPUMask(), rdyprocmask: CPUMask.first(4), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 3, pass: .free))
        // CPUs beyond ncpus are never chosen, whatever the masks say.
        // (CPU 5 is free and ready but beyond ncpus; CPU 1 is busy with a better lwp.)
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask(bits: UInt64.max), scancpu: 1, ncpus: 2,
                                          curprocmask: mask(1), rdyprocmask: mask(1, 5), upri: { $0 == 1 ? 100 : 512 }),
                       Bsd4CPUPick(cpu: 1, pass: .rotor))
    }

    func testComparisonsAreByQueueNotBySinglePriority() {
        // A free CPU whose upri hint (stale: it has no designated lwp) is 152 is
        // taken by a 155 lwp: 152 & ~3 == 155 & ~3, and the first sweep asks for >=.
        let upri = [152, 512]
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 155, lwpMask: CPUMask.first(2), scancpu: 0, ncpus: 2,
                                          curprocmask: CPUMask(), rdyprocmask: CPUMask.first(2), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 0, pass: .free), "same queue: >= holds")
        // A free CPU whose hint is a better queue than the lwp's is passed over.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 156, lwpMask: CPUMask.first(2), scancpu: 0, ncpus: 2,
                                          curprocmask: CPUMask(), rdyprocmask: CPUMask.first(2), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 1, pass: .free))
        // Second sweep, busy CPUs: strictly worse queue only. 154 vs 152: same queue, refused.
        let busy = [154, 200]
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(2), scancpu: 0, ncpus: 2,
                                          curprocmask: CPUMask.first(2), rdyprocmask: CPUMask.first(2), upri: { busy[$0] }),
                       Bsd4CPUPick(cpu: 1, pass: .busy))
        let busySame = [154, 155]
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(2), scancpu: 0, ncpus: 2,
                                          curprocmask: CPUMask.first(2), rdyprocmask: CPUMask.first(2), upri: { busySame[$0] }),
                       Bsd4CPUPick(cpu: 0, pass: .rotor), "no strictly worse queue: the rotor")
        // Class differences are just bigger queue differences: a realtime lwp beats normal upris.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 10, lwpMask: CPUMask.first(2), scancpu: 1, ncpus: 2,
                                          curprocmask: CPUMask.first(2), rdyprocmask: CPUMask.first(2), upri: { busySame[$0] }),
                       Bsd4CPUPick(cpu: 1, pass: .busy))
    }

    func testSecondSweepContinuesWhereTheFirstStopped() {
        // 8 CPUs, rotor 2. Free and ready: 3 and 6, both with a stale hint of a better
        // queue (140), so the first sweep looks at 3, then 6, and stops at 6.
        // Busy and ready, all strictly worse: 1, 4 and 7. Continuing from 6 gives 7;
        // starting again from the rotor would have given 4.
        var upri = Array(repeating: 200, count: 8)
        upri[3] = 140; upri[6] = 140
        let pick = Bsd4CPUPick.choose(lwpPriority: 160, lwpMask: CPUMask.first(8), scancpu: 2, ncpus: 8,
                                      curprocmask: mask(1, 4, 7), rdyprocmask: mask(1, 3, 4, 6, 7), upri: { upri[$0] })
        XCTAssertEqual(pick, Bsd4CPUPick(cpu: 7, pass: .busy))
        // With no free CPU at all the second sweep starts at the rotor.
        XCTAssertEqual(Bsd4CPUPick.choose(lwpPriority: 160, lwpMask: CPUMask.first(8), scancpu: 2, ncpus: 8,
                                          curprocmask: mask(1, 4, 7), rdyprocmask: mask(1, 4, 7), upri: { upri[$0] }),
                       Bsd4CPUPick(cpu: 4, pass: .busy))
    }

    func testTheRotorIsUsedUncheckedAndSpreadsChoices() {
        // Nothing ready: every pick is the rotor CPU, even one outside the lwp's mask.
        var picks: [Int] = []
        for scancpu in 1...6 {
            let p = Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: mask(0), scancpu: scancpu, ncpus: 3,
                                       curprocmask: CPUMask.first(3), rdyprocmask: CPUMask(), upri: { _ in 512 })
            XCTAssertEqual(p.pass, .rotor)
            picks.append(p.cpu)
        }
        XCTAssertEqual(picks, [1, 2, 0, 1, 2, 0])
        // With every CPU free and ready, successive setrunqueues start at successive CPUs.
        picks = (1...4).map {
            Bsd4CPUPick.choose(lwpPriority: 152, lwpMask: CPUMask.first(4), scancpu: $0, ncpus: 4,
                               curprocmask: CPUMask(), rdyprocmask: CPUMask.first(4), upri: { _ in 512 }).cpu
        }
        XCTAssertEqual(picks, [1, 2, 3, 0])
    }

    // MARK: delivery

    func testDelivery() {
        // Remote: the rdyprocmask bit is cleared in both cases (documented), then a
        // resched IPI when its upri queue is worse, else a helper wake-up.
        XCTAssertEqual(Bsd4Delivery.decide(target: 1, thisCPU: 0, targetUpri: 512, thisHasUschedcp: true, lwpPriority: 152),
                       .remoteResched(cpu: 1))
        XCTAssertEqual(Bsd4Delivery.decide(target: 1, thisCPU: 0, targetUpri: 156, thisHasUschedcp: true, lwpPriority: 152),
                       .remoteResched(cpu: 1))
        XCTAssertEqual(Bsd4Delivery.decide(target: 1, thisCPU: 0, targetUpri: 155, thisHasUschedcp: true, lwpPriority: 152),
                       .remoteWakeHelper(cpu: 1), "same queue is not worse")
        XCTAssertEqual(Bsd4Delivery.decide(target: 1, thisCPU: 0, targetUpri: 140, thisHasUschedcp: false, lwpPriority: 152),
                       .remoteWakeHelper(cpu: 1))
        // Local: only when this CPU's upri queue is worse.
        XCTAssertEqual(Bsd4Delivery.decide(target: 2, thisCPU: 2, targetUpri: 512, thisHasUschedcp: false, lwpPriority: 152),
                       .localWakeHelper)
        XCTAssertEqual(Bsd4Delivery.decide(target: 2, thisCPU: 2, targetUpri: 200, thisHasUschedcp: true, lwpPriority: 152),
                       .localResched)
        XCTAssertEqual(Bsd4Delivery.decide(target: 2, thisCPU: 2, targetUpri: 153, thisHasUschedcp: true, lwpPriority: 152),
                       .nothing)
        XCTAssertEqual(Bsd4Delivery.decide(target: 2, thisCPU: 2, targetUpri: 100, thisHasUschedcp: false, lwpPriority: 152),
                       .nothing)
    }

    // MARK: acquire_curproc and the helper

    func testAcquireStep() {
        XCTAssertEqual(Bsd4AcquireStep.decide(lpIsUschedcp: true, hasUschedcp: true, upri: 999, lwpPriority: 152), .alreadyCurrent)
        XCTAssertEqual(Bsd4AcquireStep.decide(lpIsUschedcp: false, hasUschedcp: false, upri: 512, lwpPriority: 250), .take)
        // Full priorities, strict: 153 > 152 steals, 152 does not; no queue rounding here.
        XCTAssertEqual(Bsd4AcquireStep.decide(lpIsUschedcp: false, hasUschedcp: true, upri: 153, lwpPriority: 152), .steal)
        XCTAssertEqual(Bsd4AcquireStep.decide(lpIsUschedcp: false, hasUschedcp: true, upri: 152, lwpPriority: 152), .queue)
        XCTAssertEqual(Bsd4AcquireStep.decide(lpIsUschedcp: false, hasUschedcp: true, upri: 140, lwpPriority: 152), .queue)
    }

    func testHelperStepAndChaining() {
        XCTAssertEqual(Bsd4HelperStep.decide(hasUschedcp: false, runqcount: 0), .fill)
        XCTAssertEqual(Bsd4HelperStep.decide(hasUschedcp: false, runqcount: 3), .fill)
        XCTAssertEqual(Bsd4HelperStep.decide(hasUschedcp: true, runqcount: 1), .challenge)
        XCTAssertEqual(Bsd4HelperStep.decide(hasUschedcp: true, runqcount: 0), .idle)
        // First CPU that is ready and has no designated lwp.
        XCTAssertEqual(Bsd4HelperStep.chainTarget(curprocmask: mask(0, 1), rdyprocmask: mask(0, 1, 3), ncpus: 4), 3)
        XCTAssertEqual(Bsd4HelperStep.chainTarget(curprocmask: mask(0), rdyprocmask: mask(0, 2, 3), ncpus: 4), 2)
        XCTAssertNil(Bsd4HelperStep.chainTarget(curprocmask: mask(0, 1), rdyprocmask: mask(0, 1), ncpus: 4))
        XCTAssertNil(Bsd4HelperStep.chainTarget(curprocmask: mask(0), rdyprocmask: mask(0, 5), ncpus: 4), "beyond ncpus")
    }

    func testPerCPUDefaults() {
        let d = Bsd4PerCPU()
        XCTAssertNil(d.uschedcp)
        XCTAssertEqual(d.upri, 512)
        XCTAssertEqual(d.rrcount, 0)
    }
}
