import XCTest
@testable import QuartetCore

// estcpu: the scheduler-clock step, recalculate, fork and exit
// (docs/bsd4-scheduler.md, "estcpu"). Expected values worked out by hand.

final class Bsd4EstcpuTests: XCTestCase {
    func testClockTickAddsClampsAndRoundRobins() {
        XCTAssertEqual(Bsd4Estcpu.clockTick(estcpu: 0, rrcount: 0), Bsd4ClockTick(estcpu: 328, rrcount: 1, resched: false))
        XCTAssertEqual(Bsd4Estcpu.clockTick(estcpu: 16000, rrcount: 3), Bsd4ClockTick(estcpu: 16328, rrcount: 4, resched: false))
        // 16100 + 328 = 16428 is clamped by ESTCPULIM; the 5th tick asks for a reschedule.
        XCTAssertEqual(Bsd4Estcpu.clockTick(estcpu: 16100, rrcount: 4), Bsd4ClockTick(estcpu: 16384, rrcount: 0, resched: true))
        XCTAssertEqual(Bsd4Estcpu.clockTick(estcpu: 16384, rrcount: 0).estcpu, 16384)
        // Round robin every rrinterval ticks: ticks 5, 10, 15, ...
        var rr = 0
        var resched: [Int] = []
        for tick in 1...20 {
            let t = Bsd4Estcpu.clockTick(estcpu: 0, rrcount: rr)
            rr = t.rrcount
            if t.resched { resched.append(tick) }
        }
        XCTAssertEqual(resched, [5, 10, 15, 20])
        XCTAssertEqual(Bsd4Estcpu.clockTick(estcpu: 0, rrcount: 0, rrinterval: 1).resched, true)
    }

    func testRecalculateReturnsEarlyWhenNoTickPassed() {
        let s = Bsd4EstcpuState(estcpu: 5000, batch: 700, cpticks: 3, cpbase: 40, slptime: 0)
        let r = Bsd4Estcpu.recalculate(s, now: 40, runqcount: 3, ncpus: 2, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(r, Bsd4Recalculation(state: s, kind: .unchanged, priority: nil))
        // The early return also covers the slept-long branch (it needs a tick too).
        var slept = s
        slept.slptime = 5
        XCTAssertEqual(Bsd4Estcpu.recalculate(slept, now: 40, runqcount: 0, ncpus: 1, cls: .normal, niceOrRtprio: 0).kind, .unchanged)
        // A negative interval re-bases cpbase and changes nothing else.
        let back = Bsd4Estcpu.recalculate(s, now: 35, runqcount: 3, ncpus: 2, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(back.kind, .unchanged)
        XCTAssertNil(back.priority)
        XCTAssertEqual(back.state, Bsd4EstcpuState(estcpu: 5000, batch: 700, cpticks: 3, cpbase: 35, slptime: 0))
    }

    func testSleptMoreThanASecondHalvesThenResetsPriorityThenLowersBatch() {
        let s = Bsd4EstcpuState(estcpu: 16384, batch: 1500, cpticks: 0, cpbase: 100, slptime: 2)
        let r = Bsd4Estcpu.recalculate(s, now: 250, runqcount: 7, ncpus: 4, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(r.kind, .sleptLong)
        XCTAssertEqual(r.state, Bsd4EstcpuState(estcpu: 8192, batch: 1450, cpticks: 0, cpbase: 250, slptime: 2))
        // The priority uses batch 1500, from before the decrement:
        // e = 8192 -> p = 40 + 64 = 104 -> 63 -> 191 (with 1450 it would be 190).
        XCTAssertEqual(r.priority, Bsd4Priority(priority: 191, rqIndex: 15, rqType: .normal))
        // batch never goes below 0.
        let low = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 3, batch: 20, cpbase: 0, slptime: 9), now: 1,
                                         runqcount: 0, ncpus: 1, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(low.state.batch, 0)
        XCTAssertEqual(low.state.estcpu, 1)
        // slptime 1 is not "more than a second": the sample formula runs.
        let one = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 1000, cpbase: 0, slptime: 1), now: 50,
                                         runqcount: 0, ncpus: 1, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(one.kind, .sampled)
    }

    func testSampleBatchAndDecay() {
        // sample = 10 * 16384 * (2 + 2) / (2 * 50) = 6553 <= 8192: batch 100 - 50 = 50;
        // estcpu = (1000 * 8 + 6553) / 9 = 1617;
        // priority: e = 1617 * 1550 / 3000 = 835; p = 40 + 835/128 = 46; 5888/210 = 28 -> 156.
        let s = Bsd4EstcpuState(estcpu: 1000, batch: 100, cpticks: 10, cpbase: 0, slptime: 0)
        let r = Bsd4Estcpu.recalculate(s, now: 50, runqcount: 2, ncpus: 2, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(r.kind, .sampled)
        XCTAssertEqual(r.state, Bsd4EstcpuState(estcpu: 1617, batch: 50, cpticks: 0, cpbase: 50, slptime: 0))
        XCTAssertEqual(r.priority, Bsd4Priority(priority: 156, rqIndex: 7, rqType: .normal))

        // A whole interval of CPU under load: sample = 5 * 16384 * (3 + 1) / (1 * 5) = 65536
        // > 8192: batch 1498 + 5 -> clamped to 1500; estcpu = (16000 * 8 + 65536) / 9 = 21504 -> 16384.
        let hog = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 16000, batch: 1498, cpticks: 5, cpbase: 10), now: 15,
                                         runqcount: 3, ncpus: 1, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(hog.state.batch, 1500)
        XCTAssertEqual(hog.state.estcpu, 16384)
        XCTAssertEqual(hog.priority?.priority, 230)

        // Exactly ESTCPUMAX / 2 is not "more than half": batch shrinks.
        // sample = 1 * 16384 * (0 + 1) / (1 * 2) = 8192.
        let half = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 0, batch: 10, cpticks: 1, cpbase: 0), now: 2,
                                          runqcount: 0, ncpus: 1, cls: .normal, niceOrRtprio: 0)
        XCTAssertEqual(half.state.batch, 8)
        XCTAssertEqual(half.state.estcpu, 8192 / 9)

        // The decay tunable: 0 behaves as 1 ((e + sample) / 2), 5000 as 1024.
        let d0 = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 1000, cpbase: 0), now: 10, runqcount: 0, ncpus: 1,
                                        cls: .normal, niceOrRtprio: 0, decay: 0)
        XCTAssertEqual(d0.state.estcpu, 500)
        let dBig = Bsd4Estcpu.recalculate(Bsd4EstcpuState(estcpu: 10250, cpbase: 0), now: 10, runqcount: 0, ncpus: 1,
                                          cls: .normal, niceOrRtprio: 0, decay: 5000)
        XCTAssertEqual(dBig.state.estcpu, 10250 * 1024 / 1025)

        // Other classes recalculate estcpu too, but their priority ignores it.
        let rt = Bsd4Estcpu.recalculate(s, now: 50, runqcount: 2, ncpus: 2, cls: .realtime, niceOrRtprio: 3)
        XCTAssertEqual(rt.state.estcpu, 1617)
        XCTAssertEqual(rt.priority, Bsd4Priority(priority: 3, rqIndex: 0, rqType: .realtime))
    }

    func testForkAndExit() {
        // child = parent + 4 * 512, batch 1500 / 2; parent + 512 / 16 = +32.
        let f = Bsd4Estcpu.fork(parentEstcpu: 0)
        XCTAssertEqual([f.parentEstcpu, f.childEstcpu, f.childBatch], [32, 2048, 750])
        let g = Bsd4Estcpu.fork(parentEstcpu: 16000)
        XCTAssertEqual([g.parentEstcpu, g.childEstcpu, g.childBatch], [16032, 16384, 750])
        let h = Bsd4Estcpu.fork(parentEstcpu: 16380)
        XCTAssertEqual([h.parentEstcpu, h.childEstcpu], [16384, 16384])
        XCTAssertTrue(Bsd4Estcpu.mayExit(onRunQ: false, designated: false))
        XCTAssertFalse(Bsd4Estcpu.mayExit(onRunQ: true, designated: false))
        XCTAssertFalse(Bsd4Estcpu.mayExit(onRunQ: false, designated: true))
    }
}
