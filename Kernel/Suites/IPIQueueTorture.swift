import Synchronization

// ipiq-torture: an all-to-all storm over the IPI queues (docs/ipi-queues.md,
// D1-D4) in the style of Linux scftorture. Every online CPU runs a sender thread
// that picks targets uniformly among the other online CPUs; a quarter of the
// handlers forward a message to another CPU (half of those with a normal send,
// which may wait for room and so process further messages: nested processing).
// The suite counts only its own traffic: per ordered pair and per kind, on the
// sending side and on the receiving side.
//
// Who writes what (all in raw memory):
//   sent[s][d][k]      CPU s: its sender thread (kind 0) or its handlers (kind 1)
//   got[s][d][k]       CPU d's handlers;  seen[s][d] (last kind-0 seq): CPU d
//   preSend[s][d]      CPU s before a kind-0 send; ack[s][d]: CPU d's handler
//   per CPU c          own delivery counts, errors seen, nested handler runs
// Kind 0 is sent only by the sender thread, in order, so FIFO is checked message
// by message (D1). Kind 1 forwards come from handlers that may nest inside each
// other's waits, so their order between themselves is not the ring's: they are
// checked for exactly-once by counts and for their payload (D2).

enum IPIQueueTorture {
    static let suite = TestSuite(name: "ipiq-torture", kind: .normal,
                                 summary: "all-to-all IPI message storm: per-pair counts, D1-D4, scftorture error counters",
                                 torture: true, body: run)

    // arg1 = seq << 16 | kind << 12 | src << 6 | dst; arg2 = ~arg1 (D2 stamp).
    static func encode(seq: UInt64, kind: Int, src: Int, dst: Int) -> UInt64 {
        seq << 16 | UInt64(kind) << 12 | UInt64(src) << 6 | UInt64(dst)
    }

    enum Err: Int, CaseIterable {
        case wrongCPU = 0, payload, order, missedPreSendWrite, missedHandlerWrite, indexOrder, occupancy, lost
        var label: StaticString {
            switch self {
            case .wrongCPU: return "handler on wrong CPU"
            case .payload: return "payload corrupt (D2)"
            case .order: return "duplicate/out of order (D1)"
            case .missedPreSendWrite: return "handler missed caller's pre-send write"
            case .missedHandlerWrite: return "caller missed handler's write after wait"
            case .indexOrder: return "index order (D4)"
            case .occupancy: return "FIFO full (D3)"
            case .lost: return "lost or duplicated messages (D1)"
            }
        }
        /// The check id and invariant of each counter's record.
        var id: StaticString {
            switch self {
            case .wrongCPU: return "wrong-cpu"
            case .payload: return "payload"
            case .order: return "order"
            case .missedPreSendWrite: return "pre-send-write"
            case .missedHandlerWrite: return "handler-write"
            case .indexOrder: return "index-order"
            case .occupancy: return "occupancy"
            case .lost: return "lost"
            }
        }
        var inv: StaticString {
            switch self {
            case .wrongCPU, .missedPreSendWrite, .missedHandlerWrite: return "-"
            case .payload: return "D2"
            case .order, .lost: return "D1"
            case .indexOrder: return "D4"
            case .occupancy: return "D3"
            }
        }
    }

    /// Per-CPU counters of one run (row = CPU): written only by that CPU.
    enum Own: Int { case coalesced = 0, interrupted, passive, waitedForRoom, waited, nested, refused, count }

    final class Run {
        let n: Int
        let cpus: CPUMask
        let sent, got, seen, preSend, ack: PairTable
        let errors: UnsafeMutablePointer<Atomic<UInt64>>
        let own: UnsafeMutablePointer<UInt64>
        let end: UInt64
        /// ipiq.min_per_pair: after `end` each sender goes on (up to 15x the
        /// time) until each of its own ordered pairs carried this many, so that
        /// a count asserted by a test does not depend on the host's speed.
        let minPerPair: UInt64
        let limit: UInt64
        init(cpus: CPUMask, seconds: UInt64) {
            n = PerCPU.count
            self.cpus = cpus
            sent = PairTable(n); got = PairTable(n); seen = PairTable(n); preSend = PairTable(n); ack = PairTable(n)
            errors = .allocate(capacity: Err.allCases.count)
            for i in 0..<Err.allCases.count { (errors + i).initialize(to: Atomic(0)) }
            own = .allocate(capacity: n * Own.count.rawValue)
            own.initialize(repeating: 0, count: n * Own.count.rawValue)
            end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
            limit = end &+ TSC.ticksPerMs &* 14_000 &* seconds
            minPerPair = UInt64(max(0, KernelOptions.int("ipiq.min_per_pair", default: 1)))
        }
        /// The sender on `me` goes on: before `end`, or after it while one of
        /// its own pairs has carried fewer than minPerPair (until `limit`).
        func goesOn(_ me: Int) -> Bool {
            let now = TSC.now
            if now < end { return true }
            guard minPerPair > 0 && now < limit else { return false }
            var short = false
            cpus.forEach { d in if d != me && sent.both(me, d) < minPerPair { short = true } }
            return short
        }
        deinit { errors.deallocate(); own.deallocate() }
        func error(_ e: Err, _ by: UInt64 = 1) { errors[e.rawValue].wrappingAdd(by, ordering: .relaxed) }
        func bump(_ cpu: Int, _ c: Own) { own[cpu * Own.count.rawValue + c.rawValue] &+= 1 }
        func total(_ c: Own) -> UInt64 {
            var s: UInt64 = 0
            for cpu in 0..<n { s &+= own[cpu * Own.count.rawValue + c.rawValue] }
            return s
        }
        /// A uniformly chosen online CPU other than `me`.
        func other(than me: Int, _ rng: inout XorShift) -> Int {
            var others = cpus
            others.remove(me)
            return others.nth(rng.below(others.count)) ?? me
        }
    }
    nonisolated(unsafe) static var current: Run? = nil

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        t.note { l in
            l.dec(seconds); l.write(" s on "); l.dec(cpus.count); l.write(" CPUs, ")
            l.dec(UInt64(IPIQueue.ring.capacity)); l.write("-slot rings (ipiq.fifo=16 is the storm size)")
        }
        let r = Run(cpus: cpus, seconds: seconds)
        current = r
        let global = IPIStats.now()
        SuiteThreads.runOnEveryCPU("ipiq-torture") { IPIQueueTorture.sender(r) }
        // Passive messages wait for the next message on their ring: one normal,
        // waited-for message on every ordered pair flushes them all. Twice: the
        // first round guarantees every first-hand message ran (and so every
        // forward was sent), the second that every forward ran.
        for _ in 0..<2 { SuiteThreads.runOnEveryCPU("ipiq-flush") { IPIQueueTorture.flush(r.cpus) } }
        report(&t, r, IPIStats.now().minus(global))
        current = nil
    }

    /// A waited-for no-op from this CPU to every other one.
    static func flush(_ cpus: CPUMask) {
        let me = PerCPU.currentNumber
        cpus.forEach { d in
            if d != me, let tk = IPIQueue.send(to: d, { _, _ in }) { IPIQueue.wait(tk) }
        }
    }

    /// One per CPU: uniform random targets, one send in 16 passive, one in 8
    /// waited for; the ring is checked after every send (D3, D4).
    static func sender(_ r: Run) {
        let me = PerCPU.currentNumber
        var rng = XorShift(seed: UInt64(me &+ 7))
        var lastR = InlineArray<64, UInt32>(repeating: 0), lastX = InlineArray<64, UInt32>(repeating: 0)
        var primed = InlineArray<64, Bool>(repeating: false)
        while r.goesOn(me) {
            let dst = r.other(than: me, &rng)
            let choice = rng.next()
            let seq = r.sent[me, dst] &+ 1
            r.sent[me, dst] = seq                     // kind 0: only this thread writes it
            r.preSend[me, dst] = seq                  // the caller's write before the send
            let a1 = encode(seq: seq, kind: 0, src: me, dst: dst)
            let mode: IPIQueue.Mode = choice >> 40 & 15 == 0 ? .passive : .normal
            guard let tk = IPIQueue.send(to: dst, { a, b in IPIQueueTorture.handler(a, b) }, a1, ~a1, mode: mode) else {
                r.error(.lost); continue             // a normal or passive send never refuses
            }
            switch tk.delivery {
            case .coalesced: r.bump(me, .coalesced)
            case .interrupted: r.bump(me, .interrupted)
            case .passive: r.bump(me, .passive)
            case .ranHere, .dropped: r.error(.wrongCPU)
            }
            if tk.waitedForRoom { r.bump(me, .waitedForRoom) }
            checkRing(r, me, dst, &lastR[dst], &lastX[dst], &primed[dst])
            if choice & 7 == 0 {                      // wait for it, then read the handler's write
                IPIQueue.wait(tk)
                r.bump(me, .waited)
                if r.ack[me, dst] < seq { r.error(.missedHandlerWrite) }
            }
        }
    }

    /// D3 and D4 from the sending side: xindex <= rindex <= windex, occupancy
    /// below the capacity, and neither target index ever goes back.
    private static func checkRing(_ r: Run, _ me: Int, _ dst: Int, _ lastR: inout UInt32, _ lastX: inout UInt32,
                                  _ primed: inout Bool) {
        let q = IPIQueue.ringFor(source: me, target: dst)
        let x = q.pointee.xindex.load(ordering: .acquiring)      // read in this order: each
        let rr = q.pointee.rindex.load(ordering: .acquiring)     // later index is at least
        let w = q.pointee.windex.load(ordering: .relaxed)        // the earlier one
        if !IPIQueue.ring.ordered(windex: w, rindex: rr, xindex: x) { r.error(.indexOrder) }
        if IPIQueue.ring.occupancy(windex: w, rindex: rr) >= IPIQueue.ring.capacity { r.error(.occupancy) }
        if primed && (Int32(bitPattern: rr &- lastR) < 0 || Int32(bitPattern: x &- lastX) < 0) { r.error(.indexOrder) }
        lastR = rr; lastX = x; primed = true
    }

    static func handler(_ a1: UInt64, _ a2: UInt64) {
        guard let r = current else { return }
        let me = PerCPU.currentNumber
        if a2 != ~a1 { r.error(.payload); return }
        let dst = Int(a1 & 63), src = Int(a1 >> 6 & 63), kind = Int(a1 >> 12 & 1), seq = a1 >> 16
        if dst != me { r.error(.wrongCPU) }
        r.got[src, me, kind: kind] &+= 1
        if IPIQueue.processingDepth > 1 { r.bump(me, .nested) }
        if kind == 0 {
            if r.seen[src, me] &+ 1 != seq { r.error(.order) }
            r.seen[src, me] = seq
            if r.preSend[src, me] < seq { r.error(.missedPreSendWrite) }
            r.ack[src, me] = seq                      // read by the caller after wait()
        }
        let q = IPIQueue.ringFor(source: src, target: me)
        let w = q.pointee.windex.load(ordering: .acquiring), rr = q.pointee.rindex.load(ordering: .relaxed)
        let x = q.pointee.xindex.load(ordering: .relaxed)
        if !IPIQueue.ring.ordered(windex: w, rindex: rr, xindex: x) { r.error(.indexOrder) }
        if IPIQueue.ring.occupancy(windex: w, rindex: rr) >= IPIQueue.ring.capacity { r.error(.occupancy) }
        // Re-entrancy: a quarter of first-hand messages are forwarded from the
        // handler, half of those with a normal send that may wait for room.
        guard kind == 0 && seq & 3 == 0 else { return }
        var rng = XorShift(seed: a1)
        let next = r.other(than: me, &rng)
        let fseq = r.sent[me, next, kind: 1] &+ 1
        let f = encode(seq: fseq, kind: 1, src: me, dst: next)
        if seq & 4 == 0 {
            r.sent[me, next, kind: 1] = fseq          // counted before a send that may nest
            IPIQueue.send(to: next, { a, b in IPIQueueTorture.handler(a, b) }, f, ~f)
        } else if IPIQueue.send(to: next, { a, b in IPIQueueTorture.handler(a, b) }, f, ~f, mode: .nowait) != nil {
            r.sent[me, next, kind: 1] = fseq          // nowait never nests: counted after
        } else {
            r.bump(me, .refused)
        }
    }

    static func report(_ t: inout TestContext, _ r: Run, _ global: IPIStats) {
        var lost: UInt64 = 0, messages: UInt64 = 0
        var fewest = UInt64.max, fewestPair = (0, 0)
        Console.print("ipiq-torture: messages per ordered pair (row: source CPU, column: target CPU; both kinds):")
        r.cpus.forEach { s in
            Console.line { l in
                l.write("  from "); l.dec(s, width: 2); l.write(":")
                r.cpus.forEach { d in
                    if s == d { l.write("         -"); return }
                    l.dec(r.sent.both(s, d), width: 10)
                }
            }
            r.cpus.forEach { d in
                guard s != d else { return }
                let n = r.sent.both(s, d)
                messages &+= n
                if n < fewest { fewest = n; fewestPair = (s, d) }
                for k in 0..<2 {
                    let a = r.sent[s, d, kind: k], b = r.got[s, d, kind: k]
                    lost &+= a > b ? a - b : b - a
                }
                if r.seen[s, d] != r.sent[s, d] { r.error(.order) }
            }
        }
        if lost > 0 { r.error(.lost, lost) }
        var errorTotal: UInt64 = 0
        for e in Err.allCases { errorTotal &+= r.errors[e.rawValue].load(ordering: .relaxed) }
        let coalesced = r.total(.coalesced)
        Console.line { l in
            l.write("ipiq-torture: own sends "); l.dec(messages); l.write(": interrupted "); l.dec(r.total(.interrupted))
            l.write(", coalesced "); l.dec(coalesced); l.write(", passive "); l.dec(r.total(.passive))
            l.write(", waited for room "); l.dec(r.total(.waitedForRoom)); l.write(", waited on "); l.dec(r.total(.waited))
            l.write("; nested handler runs "); l.dec(r.total(.nested)); l.write(", nowait forwards refused "); l.dec(r.total(.refused))
        }
        Console.line { l in l.write("ipiq-torture: all CPUs (figures, not checks): "); global.write(&l) }
        for half in 0..<2 {
            Console.line { l in
                l.write(errorTotal > 0 ? "ipiq-torture: errors !!! " : "ipiq-torture: errors ")
                for e in Err.allCases where (e.rawValue < 4) == (half == 0) {
                    l.write(e.label); l.write(" "); l.dec(r.errors[e.rawValue].load(ordering: .relaxed)); l.write("; ")
                }
            }
        }
        let (fs, fd) = fewestPair
        // The same minimum the senders ran on for (ipiq.min_per_pair, at least 1):
        // a sender that reached its time limit first leaves a pair short, a FAIL.
        let fewestSeen = fewest == UInt64.max ? 0 : fewest
        t.expect("pairs", fewestSeen, .atLeast(max(1, r.minPerPair))) { l in
            l.write("every ordered pair of "); l.dec(r.cpus.count); l.write(" CPUs carried messages (fewest: ")
            l.dec(fewestSeen); l.write(" on "); l.dec(fs); l.write("->"); l.dec(fd); l.write(", at least ")
            l.dec(max(1, r.minPerPair)); l.write(" asked)")
        }
        t.expect("window", coalesced, .above(0)) { l in
            l.write("the storm overlapped: "); l.dec(coalesced); l.write(" own sends found the target's latch set (no IPI needed)")
        }
        for e in Err.allCases {
            let c = r.errors[e.rawValue].load(ordering: .relaxed)
            t.expect(e.id, inv: e.inv, c, .equals(0)) { l in l.write("no "); l.write(e.label); l.write(" ("); l.dec(c); l.write(")") }
        }
    }
}
