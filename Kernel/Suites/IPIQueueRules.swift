import Synchronization

// ipiq-rules: deterministic checks of IPI-queue rules that a storm hits only by
// luck (docs/ipi-queues.md). Each check names the bug that would fail it.
//   send to self     the ticket says "ran here"; waiting on it returns at once
//   index wrap       waits across the 32-bit wrap of windex (rings start just
//                    below it) return only after their handler ran; the old
//                    "sequence 0 means ran here" returned at once at the wrap
//   nested xindex    a handler that processes further messages (as a waiting
//                    send does) must not let wait_ipiq return for it early
//   nesting bound    handlers that process recursively stop at maxNesting

enum IPIQueueRules {
    static let suite = TestSuite(name: "ipiq-rules", kind: .normal,
                                 summary: "IPI queues: send to self, index wrap, nested xindex, nesting bound", body: run)

    static let flag = Atomic<UInt64>(0)
    static let recorded = Atomic<UInt64>(0)
    static let started = Atomic<Bool>(false)
    static let secondSent = Atomic<Bool>(false)
    static let firstDone = Atomic<Bool>(false)
    static let secondRanInside = Atomic<Bool>(false)
    static let handled = Atomic<UInt64>(0)
    static let deepest = Atomic<Int>(0)

    static func run(_ t: inout TestContext) {
        sendToSelf(&t)
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("cross-cpu", reason: .needs2CPUs, "the cross-CPU rules need 2 CPUs"); return }
        let me = PerCPU.currentNumber
        let other = cpus.nth(cpus.nth(0) == me ? 1 : 0)!
        wrap(&t, other)
        nestedXindex(&t, other)
        nestingBound(&t, other)
    }

    static func sendToSelf(_ t: inout TestContext) {
        flag.store(0, ordering: .relaxed)
        let tk = IPIQueue.send(to: PerCPU.currentNumber, { _, _ in IPIQueueRules.flag.store(1, ordering: .relaxed) })
        let ranAtOnce = flag.load(ordering: .relaxed) == 1
        if let tk { IPIQueue.wait(tk) }
        t.expect("self", tk?.delivery == .ranHere && ranAtOnce, "a send to this CPU runs the function at once; its ticket says so")
    }

    static func wrap(_ t: inout TestContext, _ other: Int) {
        let q = IPIQueue.ringFor(source: PerCPU.currentNumber, target: other)
        let before = q.pointee.windex.load(ordering: .relaxed)
        var early = 0
        for i in 1...40 {
            guard let tk = IPIQueue.send(to: other, { v, _ in
                TSC.delay(microseconds: 200)               // slow: an early return shows
                IPIQueueRules.recorded.store(v, ordering: .releasing)
            }, UInt64(i)) else { early += 1; continue }
            IPIQueue.wait(tk)
            if recorded.load(ordering: .acquiring) != UInt64(i) { early += 1 }
        }
        let after = q.pointee.windex.load(ordering: .relaxed)
        guard after < before else {
            t.skip("wrap", reason: .runOrder, "index wrap: this pair was past the wrap already (ipiq-rules runs early in run=all)"); return
        }
        t.expect("wrap", UInt64(early), .equals(0)) { l in
            l.write("40 waits across the index wrap (windex "); l.hex(UInt64(before)); l.write(" -> "); l.hex(UInt64(after))
            l.write(") each returned after its handler ("); l.dec(early); l.write(" early)")
        }
    }

    static func nestedXindex(_ t: inout TestContext, _ other: Int) {
        started.store(false, ordering: .relaxed); secondSent.store(false, ordering: .relaxed)
        firstDone.store(false, ordering: .relaxed); secondRanInside.store(false, ordering: .relaxed)
        guard let first = IPIQueue.send(to: other, { _, _ in
            IPIQueueRules.started.store(true, ordering: .releasing)
            _ = spinUntil(milliseconds: 1000, processing: false) { IPIQueueRules.secondSent.load(ordering: .acquiring) }
            IPIQueue.process()                          // nested: runs the second message
            TSC.delay(microseconds: 2000)
            IPIQueueRules.firstDone.store(true, ordering: .releasing)
        }) else { t.expect("send", false, "send the first message"); return }
        _ = spinUntil(milliseconds: 1000) { started.load(ordering: .acquiring) }
        IPIQueue.send(to: other, { _, _ in
            IPIQueueRules.secondRanInside.store(!IPIQueueRules.firstDone.load(ordering: .acquiring), ordering: .releasing)
        })
        secondSent.store(true, ordering: .releasing)
        IPIQueue.wait(first)
        let done = firstDone.load(ordering: .acquiring)
        _ = spinUntil(milliseconds: 1000) { firstDone.load(ordering: .acquiring) }
        t.expect("nested-pass", secondRanInside.load(ordering: .acquiring)) {
            $0.write("a later message ran in a nested pass while the first handler was still running")
        }
        t.expect("xindex", done) { $0.write("wait_ipiq for that first message returned only after its handler finished (xindex held)") }
    }

    /// Message i's handler starts, waits until message i+1 is in the ring (its
    /// send sets the source bit again), then processes: message i+1 runs one
    /// level deeper. The levels stop at the bound; later messages run after the
    /// stack unwinds.
    static let sentCount = Atomic<UInt64>(0)
    static let startedIndex = Atomic<UInt64>(0)
    static func nestingBound(_ t: inout TestContext, _ other: Int) {
        let k = IPIQueue.maxNesting + 2
        sentCount.store(0, ordering: .relaxed); startedIndex.store(0, ordering: .relaxed)
        handled.store(0, ordering: .relaxed); deepest.store(0, ordering: .relaxed)
        let refusedBefore = IPIQueue.targets[other].nestingRefused
        var last: IPITicket? = nil
        for i in 0..<k {
            last = IPIQueue.send(to: other, { i, k in
                IPIQueueRules.startedIndex.store(i + 1, ordering: .releasing)
                if i + 1 < k {
                    _ = spinUntil(milliseconds: 1000, processing: false) { IPIQueueRules.sentCount.load(ordering: .acquiring) >= i + 2 }
                }
                let d = IPIQueue.processingDepth
                var seen = IPIQueueRules.deepest.load(ordering: .relaxed)
                while d > seen {
                    let (ok, now) = IPIQueueRules.deepest.compareExchange(expected: seen, desired: d, ordering: .relaxed)
                    if ok { break }
                    seen = now
                }
                IPIQueueRules.handled.wrappingAdd(1, ordering: .relaxed)
                IPIQueue.process()
            }, UInt64(i), UInt64(k)) ?? last
            sentCount.store(UInt64(i + 1), ordering: .releasing)
            _ = spinUntil(milliseconds: 1000) { startedIndex.load(ordering: .acquiring) >= UInt64(i + 1) }
        }
        if let last { IPIQueue.wait(last) }
        let refused = IPIQueue.targets[other].nestingRefused &- refusedBefore
        let (h, d) = (handled.load(ordering: .relaxed), deepest.load(ordering: .relaxed))
        t.expect("nesting-bound", h == UInt64(k) && d == IPIQueue.maxNesting && refused > 0) { l in
            l.dec(k); l.write(" handlers that each process further messages: "); l.dec(h); l.write(" ran, deepest level "); l.dec(d)
            l.write(" (bound "); l.dec(IPIQueue.maxNesting); l.write("), "); l.dec(refused); l.write(" passes refused at the bound")
        }
    }
}
