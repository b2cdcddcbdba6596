import XCTest
@testable import QuartetCore

// resetpriority's formula, the queue-change test and the poke decision
// (docs/bsd4-scheduler.md, "Priority"). Expected values are worked out by hand
// in the comments, or by `reference` below: the formula written again with the
// constants as plain numbers, not by calling the code under test.

/// The normal-class formula with the constants spelled out: PPQ/NICEPPQ = 2,
/// PPQ/ESTCPUPPQ = 1/128, the divisor 41 * 2 + 16384 / 128 = 210, BATCHMAX 1500.
private func reference(nice: Int, estcpu: Int, batch: Int) -> Int {
    let e = estcpu * (batch + 1500) / 3000
    var p = (nice + 20) * 2 + e / 128
    p = p * 128 / 210
    return 128 + p % 128
}

final class Bsd4PriorityTests: XCTestCase {
    func testConstants() {
        XCTAssertEqual(Bsd4.maxPri, 128)
        XCTAssertEqual(Bsd4.priMask, 127)
        XCTAssertEqual([Bsd4.priBaseRealtime, Bsd4.priBaseNormal, Bsd4.priBaseIdle, Bsd4.priBaseThread, Bsd4.priBaseNull],
                       [0, 128, 256, 384, 512])
        XCTAssertEqual([Bsd4Class.realtime.base, Bsd4Class.normal.base, Bsd4Class.idle.base, Bsd4Class.thread.base],
                       [0, 128, 256, 384])
        XCTAssertEqual([Bsd4.nqs, Bsd4.ppq, Bsd4.ppqMask], [32, 4, 3])
        XCTAssertEqual([Bsd4.nicePPQ, Bsd4.estcpuPPQ, Bsd4.estcpuMax], [2, 512, 16384])
        XCTAssertEqual([Bsd4.prioMin, Bsd4.prioMax, Bsd4.prioRange], [-20, 20, 41])
        XCTAssertEqual([Bsd4.estcpuFreq, Bsd4.estcpuIncrement, Bsd4.rrInterval], [50, 328, 5])
        XCTAssertEqual([Bsd4.defaultDecay, Bsd4.batchMax], [8, 1500])
        XCTAssertEqual(Bsd4.estcpuLim(16383), 16383)
        XCTAssertEqual(Bsd4.estcpuLim(16384), 16384)
        XCTAssertEqual(Bsd4.estcpuLim(16712), 16384)
    }

    /// (nice, estcpu, batch) -> (priority, queue), each worked out by hand.
    func testHandComputedNormalCases() {
        let cases: [(nice: Int, estcpu: Int, batch: Int, priority: Int, queue: Int)] = [
            // e = 0; p = 20*4/2 = 40; 40*128/210 = 24 -> 152, queue 24/4 = 6
            (0, 0, 0, 152, 6),
            // e = 16384*3000/3000 = 16384; p = 40 + 16384*4/512 = 168; 168*128/210 = 102 -> 230, queue 25
            (0, 16384, 1500, 230, 25),
            // p = 80 + 128 = 208; 208*128/210 = 126 -> 254, queue 31 (the last)
            (20, 16384, 1500, 254, 31),
            // p = 0 -> 128, queue 0 (the best normal priority)
            (-20, 0, 0, 128, 0),
            // e = 16384*1500/3000 = 8192; p = 0 + 64 = 64; 64*128/210 = 39 -> 167, queue 9
            (-20, 16384, 0, 167, 9),
            // p = 80; 80*128/210 = 48 -> 176, queue 12
            (20, 0, 0, 176, 12),
            // e = 1000*2250/3000 = 750; p = 50 + 3000/512 = 55; 7040/210 = 33 -> 161, queue 8
            (5, 1000, 750, 161, 8),
            // e = 333*1501/3000 = 166; p = 38 + 664/512 = 39; 4992/210 = 23 -> 151, queue 5
            (-1, 333, 1, 151, 5),
            // e = 16383*2999/3000 = 16377; p = 78 + 65508/512 = 205; 26240/210 = 124 -> 252, queue 31
            (19, 16383, 1499, 252, 31),
            // e = 8192*3000/3000 = 8192; p = 40 + 64 = 104; 13312/210 = 63 -> 191, queue 15
            (0, 8192, 1500, 191, 15),
            // e = 8192*2950/3000 = 8055; p = 40 + 32220/512 = 102; 13056/210 = 62 -> 190, queue 15
            (0, 8192, 1450, 190, 15),
        ]
        for c in cases {
            let p = Bsd4Priority.compute(.normal, niceOrRtprio: c.nice, estcpu: c.estcpu, batch: c.batch)
            XCTAssertEqual(p, Bsd4Priority(priority: c.priority, rqIndex: c.queue, rqType: .normal),
                           "nice \(c.nice) estcpu \(c.estcpu) batch \(c.batch)")
        }
    }

    /// Every nice value, estcpu 0...ESTCPUMAX, batch at and around its edges,
    /// against the re-statement; and the properties the design relies on.
    func testEveryNiceEstcpuAndBatchEdgeAgainstReference() {
        for batch in [0, 1, 2, 749, 750, 751, 1498, 1499, 1500] {
            for nice in -20...20 {
                var previous = 0
                for estcpu in 0...16384 {
                    let p = Bsd4Priority.compute(.normal, niceOrRtprio: nice, estcpu: estcpu, batch: batch)
                    let want = reference(nice: nice, estcpu: estcpu, batch: batch)
                    if p.priority != want || p.rqIndex != (want - 128) / 4 || p.rqType != .normal {
                        XCTFail("nice \(nice) estcpu \(estcpu) batch \(batch): \(p), want \(want)")
                        return
                    }
                    // Within ESTCPUMAX nothing wraps: more estcpu never gives a better priority,
                    // and the value stays inside the normal class.
                    XCTAssertGreaterThanOrEqual(p.priority, previous)
                    XCTAssertTrue((128...255).contains(p.priority))
                    previous = p.priority
                }
            }
        }
        // More nice never gives a better priority either.
        for estcpu in stride(from: 0, through: 16384, by: 97) {
            for batch in stride(from: 0, through: 1500, by: 125) {
                var previous = 0
                for nice in -20...20 {
                    let p = Bsd4Priority.compute(.normal, niceOrRtprio: nice, estcpu: estcpu, batch: batch).priority
                    XCTAssertGreaterThanOrEqual(p, previous)
                    previous = p
                }
            }
        }
    }

    func testBatchDetunesEstcpuBetweenHalfAndAll() {
        // batch 0 counts half of estcpu, BATCHMAX all of it.
        XCTAssertEqual(Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: 16384, batch: 0),
                       Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: 8192, batch: 1500))
        // 16384*1500/3000 = 8192 -> p = 40 + 64 = 104 -> 63 -> 191
        XCTAssertEqual(Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: 16384, batch: 0).priority, 191)
    }

    func testOtherClassesUseRtprioMasked() {
        let cases: [(Bsd4Class, Int, Int, Int)] = [
            (.realtime, 0, 0, 0), (.realtime, 31, 31, 7), (.realtime, 127, 127, 31), (.realtime, 128, 0, 0),
            (.idle, 0, 256, 0), (.idle, 5, 261, 1), (.idle, 31, 287, 7), (.idle, 255, 383, 31),
            (.thread, 3, 387, 0),
        ]
        for (cls, rtprio, priority, queue) in cases {
            // estcpu and batch do not matter outside the normal class.
            for (estcpu, batch) in [(0, 0), (16384, 1500), (99999, 3)] {
                XCTAssertEqual(Bsd4Priority.compute(cls, niceOrRtprio: rtprio, estcpu: estcpu, batch: batch),
                               Bsd4Priority(priority: priority, rqIndex: queue, rqType: cls))
            }
        }
    }

    /// ESTCPULIM matters: a nice-20 hog at ESTCPUMAX has the worst normal
    /// priority, 254. One more unclamped tick (+328) makes p = 210, and
    /// 210 * 128 / 210 = 128 wraps to 0: priority 128, the best of the class.
    func testWithoutTheClampAHogJumpsToTopPriority() {
        XCTAssertEqual(reference(nice: 20, estcpu: 16384, batch: 1500), 254)
        XCTAssertEqual(reference(nice: 20, estcpu: 16384 + 328, batch: 1500), 128, "the hand re-statement wraps")
        XCTAssertEqual(Bsd4Priority.compute(.normal, niceOrRtprio: 20, estcpu: 16384 + 328, batch: 1500).priority, 128,
                       "compute itself does not clamp: its callers must")

        // A nice-0 hog ticked 200 times: through the code (clamped) it settles in
        // queue 25; the same arithmetic without ESTCPULIM wraps to the top.
        var clamped = 0, unclamped = 0, rrcount = 0
        var wrappedAt: Int?
        var previous = reference(nice: 0, estcpu: 0, batch: 1500)
        for tick in 1...200 {
            let t = Bsd4Estcpu.clockTick(estcpu: clamped, rrcount: rrcount)
            clamped = t.estcpu
            rrcount = t.rrcount
            unclamped += 328
            XCTAssertLessThanOrEqual(clamped, 16384)
            let p = reference(nice: 0, estcpu: unclamped, batch: 1500)
            if wrappedAt == nil && p < previous { wrappedAt = tick }
            previous = p
        }
        XCTAssertEqual(clamped, 16384)
        XCTAssertEqual(Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: clamped, batch: 1500).priority, 230)
        // p = 40 + e/128 reaches 210 at e = 21760, the 67th tick (67 * 328 = 21976).
        XCTAssertEqual(wrappedAt, 67)
        XCTAssertEqual(reference(nice: 0, estcpu: 66 * 328, batch: 1500), 255)
        XCTAssertEqual(reference(nice: 0, estcpu: 67 * 328, batch: 1500), 128)
    }

    func testQueueChanged() {
        XCTAssertFalse(Bsd4Priority.queueChanged(old: 152, new: 155))   // 152 ^ 155 = 3
        XCTAssertTrue(Bsd4Priority.queueChanged(old: 155, new: 156))
        XCTAssertTrue(Bsd4Priority.queueChanged(old: 128, new: 256))    // same index, other class
        XCTAssertTrue(Bsd4Priority.queueChanged(old: 0, new: 512))
        for old in 0..<512 {
            for new in 0..<512 {
                XCTAssertEqual(Bsd4Priority.queueChanged(old: old, new: new), old / 4 != new / 4)
            }
        }
    }

    func testPokeDecision() {
        let running = Bsd4Reset(queueChanged: true, checkpri: 0)
        let queued = Bsd4Reset(queueChanged: true, checkpri: 1)
        let same = Bsd4Reset(queueChanged: false, checkpri: 1)
        // No queue change: never a poke, whatever the target.
        XCTAssertEqual(Bsd4Poke.decide(same, newPriority: 200, target: 1, thisCPU: 0, targetReady: true, targetUpri: 512), .none)
        // A running lwp changed queue: poke its CPU without comparing anything...
        XCTAssertEqual(Bsd4Poke.decide(running, newPriority: 230, target: 0, thisCPU: 0, targetReady: true, targetUpri: 152), .local)
        XCTAssertEqual(Bsd4Poke.decide(running, newPriority: 230, target: 2, thisCPU: 0, targetReady: true, targetUpri: 152),
                       .remote(cpu: 2))
        // ...unless that CPU is not in rdyprocmask.
        XCTAssertEqual(Bsd4Poke.decide(running, newPriority: 230, target: 2, thisCPU: 0, targetReady: false, targetUpri: 152), .none)
        // A queued lwp moved: only when the target's upri is in a worse *class*.
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 140, target: 1, thisCPU: 0, targetReady: true, targetUpri: 250), .none,
                       "same class: (250 & ~127) == (140 & ~127)")
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 140, target: 1, thisCPU: 0, targetReady: true, targetUpri: 256),
                       .remote(cpu: 1), "idle class upri")
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 140, target: 1, thisCPU: 0, targetReady: true, targetUpri: 512),
                       .remote(cpu: 1), "no designated lwp")
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 140, target: 1, thisCPU: 1, targetReady: true, targetUpri: 512), .local)
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 140, target: 1, thisCPU: 0, targetReady: false, targetUpri: 512), .none)
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 20, target: 1, thisCPU: 0, targetReady: true, targetUpri: 140),
                       .remote(cpu: 1), "realtime lwp against a normal upri")
        XCTAssertEqual(Bsd4Poke.decide(queued, newPriority: 260, target: 1, thisCPU: 0, targetReady: true, targetUpri: 140), .none)
    }
}
