import XCTest
@testable import QuartetCore

// The bsd4 run queues and A2 (docs/bsd4-scheduler.md, "Data", "Invariants").

final class Bsd4TestLwp: Bsd4Node {
    let id: Int
    var rqNext: Bsd4TestLwp?
    var rqPrev: Bsd4TestLwp?
    var rqLevel = -1
    var onRunQ = false
    var rqType = Bsd4Class.normal
    var rqIndex = 0
    var priority = 0
    var cpuMask = CPUMask(bits: UInt64.max)
    var lastCPU = 0

    init(_ id: Int, priority: Int = 152, lastCPU: Int = 0, mask: UInt64 = UInt64.max) {
        self.id = id
        self.lastCPU = lastCPU
        self.cpuMask = CPUMask(bits: mask)
        set(priority)
    }

    /// As resetpriority would leave it: priority, class, index.
    func set(_ p: Int) {
        priority = p
        rqType = Bsd4Class(rawValue: p / 128)!
        rqIndex = (p & 127) / 4
    }
}

final class Bsd4QueueTests: XCTestCase {
    func testInsertSetsBitsCountAndOnRunQ() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let a = Bsd4TestLwp(1, priority: 152), b = Bsd4TestLwp(2, priority: 155), c = Bsd4TestLwp(3, priority: 20), d = Bsd4TestLwp(4, priority: 300)
        for lp in [a, b, c, d] { q.insert(lp) }
        XCTAssertEqual(q.runqcount, 4)
        XCTAssertEqual(q.bits(.normal), 1 << 6)
        XCTAssertEqual(q.bits(.realtime), 1 << 5)
        XCTAssertEqual(q.bits(.idle), 1 << 11)
        XCTAssertTrue(a.onRunQ && b.onRunQ && c.onRunQ && d.onRunQ)
        XCTAssertNil(q.checkA2())
        q.remove(b)
        XCTAssertFalse(b.onRunQ)
        XCTAssertEqual(q.runqcount, 3)
        XCTAssertEqual(q.bits(.normal), 1 << 6, "a is still there")
        q.remove(a)
        XCTAssertEqual(q.bits(.normal), 0, "the bit clears when the list empties")
        XCTAssertNil(q.checkA2())
    }

    func testPickOrderClassThenLowestBitThenFIFO() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let idle = Bsd4TestLwp(1, priority: 256), n1 = Bsd4TestLwp(2, priority: 200), n2 = Bsd4TestLwp(3, priority: 160),
            n3 = Bsd4TestLwp(4, priority: 161), rt = Bsd4TestLwp(5, priority: 31)
        for lp in [idle, n1, n2, n3, rt] { q.insert(lp) }
        var order: [Int] = []
        while case .take(let lp) = q.chooseproc(cpu: 0, current: nil) { order.append(lp.id) }
        // realtime; normal queue 8 (160 and 161, FIFO); normal queue 18; idle.
        XCTAssertEqual(order, [5, 3, 4, 2, 1])
        XCTAssertEqual(q.runqcount, 0)
        XCTAssertNil(q.checkA2())
    }

    func testBestSkipsLwpsNotAllowedOnTheCPU() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let onlyCPU1 = Bsd4TestLwp(1, priority: 140, mask: 0b10)
        let alsoOnly1 = Bsd4TestLwp(2, priority: 141, mask: 0b10)
        let anywhere = Bsd4TestLwp(3, priority: 141)
        let worse = Bsd4TestLwp(4, priority: 200)
        for lp in [onlyCPU1, alsoOnly1, anywhere, worse] { q.insert(lp) }
        XCTAssertTrue(q.best(allowedOn: 1) === onlyCPU1)
        XCTAssertTrue(q.best(allowedOn: 0) === anywhere, "scans within the list past lwps not allowed here")
        q.remove(anywhere)
        XCTAssertTrue(q.best(allowedOn: 0) === worse, "moves to the next list when none in it is allowed")
        q.remove(worse)
        XCTAssertNil(q.best(allowedOn: 0))
        XCTAssertEqual(q.chooseproc(cpu: 0, current: nil).lwp?.id, nil)
        // Idle class after normal, even when only the idle lwp is allowed.
        let idle = Bsd4TestLwp(5, priority: 260, mask: 0b1)
        q.insert(idle)
        XCTAssertTrue(q.best(allowedOn: 0) === idle)
        XCTAssertTrue(q.best(allowedOn: 1) === onlyCPU1)
    }

    func testRepositionStoresMovesOrOnlyUpdates() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let a = Bsd4TestLwp(1, priority: 152), b = Bsd4TestLwp(2, priority: 152), running = Bsd4TestLwp(3, priority: 152)
        q.insert(a); q.insert(b)
        // Same queue (152 -> 155): stored, not moved, no poke wanted.
        XCTAssertEqual(q.reposition(a, to: Bsd4Priority.compute(.normal, niceOrRtprio: 0, estcpu: 0, batch: 0)),
                       Bsd4Reset(queueChanged: false, checkpri: 1))
        XCTAssertEqual(q.reposition(a, to: Bsd4Priority(priority: 155, rqIndex: 6, rqType: .normal)),
                       Bsd4Reset(queueChanged: false, checkpri: 1))
        XCTAssertEqual(a.priority, 155)
        XCTAssertTrue(q.head(.normal, 6) === a, "still at the head")
        // A queued lwp changes queue: moved to the tail of the new list (checkpri 1).
        XCTAssertEqual(q.reposition(a, to: Bsd4Priority(priority: 170, rqIndex: 10, rqType: .normal)),
                       Bsd4Reset(queueChanged: true, checkpri: 1))
        XCTAssertEqual([a.rqIndex, q.runqcount], [10, 2])
        XCTAssertTrue(q.head(.normal, 10) === a)
        XCTAssertTrue(q.head(.normal, 6) === b)
        // Into another class.
        XCTAssertEqual(q.reposition(b, to: Bsd4Priority(priority: 5, rqIndex: 1, rqType: .realtime)).queueChanged, true)
        XCTAssertEqual(q.bits(.normal), 1 << 10)
        XCTAssertEqual(q.bits(.realtime), 1 << 1)
        // Not queued (running): only the fields change (checkpri 0).
        XCTAssertEqual(q.reposition(running, to: Bsd4Priority(priority: 230, rqIndex: 25, rqType: .normal)),
                       Bsd4Reset(queueChanged: true, checkpri: 0))
        XCTAssertFalse(running.onRunQ)
        XCTAssertEqual([running.priority, running.rqIndex, q.runqcount], [230, 25, 2])
        XCTAssertNil(q.checkA2())
    }

    func testA2CheckerNamesTheFirstViolation() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        let a = Bsd4TestLwp(1, priority: 152), b = Bsd4TestLwp(2, priority: 152), c = Bsd4TestLwp(3, priority: 140)
        q.insert(a); q.insert(b); q.insert(c)
        XCTAssertNil(q.checkA2())

        b.onRunQ = false
        XCTAssertEqual(q.checkA2(), Bsd4QueueViolation(kind: .notOnRunQ, rqType: 1, index: 6, position: 1))
        XCTAssertEqual(q.checkA2()?.description, "A2: queued lwp without ONRUNQ (class 1, list 6, position 1)")
        b.onRunQ = true

        b.rqIndex = 7
        XCTAssertEqual(q.checkA2(), Bsd4QueueViolation(kind: .wrongIndex, rqType: 1, index: 6, position: 1))
        b.rqIndex = 6

        c.rqType = .idle
        XCTAssertEqual(q.checkA2(), Bsd4QueueViolation(kind: .wrongType, rqType: 1, index: 3, position: 0),
                       "list 3 comes before list 6")
        c.rqType = .normal

        // A lwp unlinked behind the queue's back: the links no longer match.
        let saved = a.rqNext
        a.rqNext = nil
        XCTAssertNotNil(q.checkA2())
        a.rqNext = saved
        XCTAssertNil(q.checkA2())
    }

    /// Long random sequences of insert / remove / chooseproc / reposition across
    /// classes and CPU masks, against a model made of plain arrays; A2 after
    /// every operation.
    func testRandomOperationsAgainstAnArrayModel() {
        var q = Bsd4RunQueues<Bsd4TestLwp>()
        var model: [[[Bsd4TestLwp]]] = Array(repeating: Array(repeating: [], count: 32), count: 3)
        var state: UInt64 = 0x5EED_B5D4
        func next(_ n: Int) -> Int {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(state % UInt64(n))
        }
        func randomPriority() -> Int {
            // Mostly normal, some realtime and idle; a narrow band so lists get long.
            switch next(10) {
            case 0: return next(16)
            case 1: return 256 + next(16)
            default: return 140 + next(40)
            }
        }
        let lwps = (0..<120).map { Bsd4TestLwp($0) }
        for lp in lwps {
            lp.set(randomPriority())
            lp.lastCPU = next(4)
            // A quarter are pinned to one or two of the four CPUs.
            lp.cpuMask = next(4) == 0 ? CPUMask(bits: UInt64(1 + next(15))) : CPUMask(bits: UInt64.max)
        }
        func modelBest(_ cpu: Int) -> (cls: Int, index: Int, pos: Int)? {
            for cls in 0..<3 {
                for index in 0..<32 {
                    if let pos = model[cls][index].firstIndex(where: { $0.cpuMask.contains(cpu) }) {
                        return (cls, index, pos)
                    }
                }
            }
            return nil
        }
        var takes = 0, keeps = 0, nudges = 0
        for step in 0..<20_000 {
            let lp = lwps[next(lwps.count)]
            switch next(4) {
            case 0 where !lp.onRunQ:
                q.insert(lp)
                model[lp.rqType.rawValue][lp.rqIndex].append(lp)
            case 1 where lp.onRunQ:
                model[lp.rqType.rawValue][lp.rqIndex].removeAll { $0 === lp }
                q.remove(lp)
            case 2:
                let p = randomPriority()
                let moved = lp.onRunQ && lp.priority / 4 != p / 4
                if moved { model[lp.rqType.rawValue][lp.rqIndex].removeAll { $0 === lp } }
                _ = q.reposition(lp, to: Bsd4Priority(priority: p, rqIndex: (p & 127) / 4,
                                                      rqType: Bsd4Class(rawValue: p / 128)!))
                if moved { model[lp.rqType.rawValue][lp.rqIndex].append(lp) }
            default:
                let cpu = next(4)
                let current: Bsd4TestLwp? = next(3) == 0 ? lwps[next(lwps.count)] : nil
                let current2 = current.flatMap { $0.onRunQ ? nil : $0 }   // a current lwp is never queued
                // The model's answer, step by step as documented.
                var expected: Bsd4TestLwp? = nil
                var expectKeep = false
                if let (cls, index, pos) = modelBest(cpu) {
                    var lpIndex = pos
                    let cand = model[cls][index][pos]
                    if let cur = current2, cur.priority < cand.priority + 4 {
                        expectKeep = true
                    } else {
                        if cand.lastCPU != cpu, pos + 1 < model[cls][index].count {
                            let behind = model[cls][index][pos + 1]
                            if behind.lastCPU == cpu && behind.cpuMask.contains(cpu) { lpIndex = pos + 1; nudges += 1 }
                        }
                        expected = model[cls][index].remove(at: lpIndex)
                    }
                }
                switch q.chooseproc(cpu: cpu, current: current2) {
                case .take(let got):
                    takes += 1
                    XCTAssertTrue(got === expected, "step \(step): chose \(got.id), model \(expected?.id ?? -1)")
                    XCTAssertFalse(got.onRunQ)
                    // The chosen lwp runs here now.
                    got.lastCPU = cpu
                case .keepCurrent:
                    keeps += 1
                    XCTAssertTrue(expectKeep, "step \(step): kept current")
                case .nothing:
                    XCTAssertNil(expected, "step \(step)")
                    XCTAssertFalse(expectKeep)
                }
            }
            if let v = q.checkA2() { XCTFail("step \(step): \(v.description)"); return }
            var total = 0
            for cls in 0..<3 {
                var bits: UInt32 = 0
                for i in 0..<32 where !model[cls][i].isEmpty {
                    bits |= 1 << UInt32(i)
                    total += model[cls][i].count
                }
                if q.bits(Bsd4Class(rawValue: cls)!) != bits { XCTFail("step \(step): class \(cls) bits"); return }
            }
            if q.runqcount != total { XCTFail("step \(step): runqcount \(q.runqcount), model \(total)"); return }
        }
        // The sequence really exercised every path.
        XCTAssertGreaterThan(takes, 1000)
        XCTAssertGreaterThan(keeps, 100)
        XCTAssertGreaterThan(nudges, 10)
    }
}
