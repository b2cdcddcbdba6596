import Synchronization

// ipiq-torture, ipiq-flood, ipiq-wakeup: the IPI queues of Kern/IPIQueue.swift
// checked against SPEC.md section 2 (D1-D5) in the style of Linux scftorture.

/// Shared counters in raw memory, indexed by CPU pairs: written by one side only.
final class PairTable {
    let n: Int
    let cells: UnsafeMutablePointer<UInt64>
    init(_ n: Int) { self.n = n; cells = .allocate(capacity: n * n * 2); cells.initialize(repeating: 0, count: n * n * 2) }
    deinit { cells.deallocate() }
    subscript(_ a: Int, _ b: Int, kind kind: Int = 0) -> UInt64 {
        get { cells[(a * n + b) * 2 + kind] }
        set { cells[(a * n + b) * 2 + kind] = newValue }
    }
}

/// IPI statistics summed over CPUs, and deltas between two snapshots.
struct IPIStats {
    var sent: UInt64 = 0, received: UInt64 = 0, ipis: UInt64 = 0, avoided: UInt64 = 0, fullWaits: UInt64 = 0
    static func now() -> IPIStats {
        var s = IPIStats()
        for t in IPIQueue.targets {
            s.sent += t.sent.load(ordering: .relaxed); s.received += t.received.load(ordering: .relaxed)
            s.ipis += t.ipisSent.load(ordering: .relaxed); s.avoided += t.ipisAvoided.load(ordering: .relaxed)
            s.fullWaits += t.fifoFullWaits.load(ordering: .relaxed)
        }
        return s
    }
    func minus(_ o: IPIStats) -> IPIStats {
        IPIStats(sent: sent &- o.sent, received: received &- o.received, ipis: ipis &- o.ipis,
                 avoided: avoided &- o.avoided, fullWaits: fullWaits &- o.fullWaits)
    }
    func write(_ l: inout FixedLineBuffer) {
        l.write("messages sent "); l.dec(sent); l.write(", received "); l.dec(received)
        l.write(", hardware IPIs "); l.dec(ipis); l.write(", IPIs avoided "); l.dec(avoided)
        l.write(", full-FIFO waits "); l.dec(fullWaits)
    }
}

enum IPIQueueTorture {
    static let suite = TestSuite(name: "ipiq-torture", kind: .normal,
                                 summary: "all-to-all IPI message storm: D1-D4, scftorture error counters", body: run)

    // Message encoding: arg1 = seq << 16 | kind << 12 | src << 6 | dst; arg2 = ~arg1 (D2).
    static func encode(seq: UInt64, kind: Int, src: Int, dst: Int) -> UInt64 {
        seq << 16 | UInt64(kind) << 12 | UInt64(src) << 6 | UInt64(dst)
    }

    // State (allocated per run, read by handlers through these statics).
    nonisolated(unsafe) static var nextSeq: PairTable? = nil       // sender side [src][dst][kind]
    nonisolated(unsafe) static var lastSeen: PairTable? = nil      // receiver side [src][dst][kind]
    nonisolated(unsafe) static var handlerAck: PairTable? = nil    // handler writes, caller reads after wait
    nonisolated(unsafe) static var preSend: PairTable? = nil       // caller's write before send [src][dst]
    nonisolated(unsafe) static var errors: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static let forwardsDropped = Atomic<UInt64>(0)
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
            case .lost: return "lost messages (D1)"
            }
        }
    }
    static func error(_ e: Err) { errors![e.rawValue].wrappingAdd(1, ordering: .relaxed) }

    static func run(_ t: inout TestContext) {
        let n = PerCPU.count
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("needs at least 2 CPUs"); return }
        nextSeq = PairTable(n); lastSeen = PairTable(n); handlerAck = PairTable(n)
        preSend = PairTable(n)
        errors = .allocate(capacity: Err.allCases.count)
        for i in 0..<Err.allCases.count { (errors! + i).initialize(to: Atomic(0)) }
        forwardsDropped.store(0, ordering: .relaxed)
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        t.note { $0.write(IPIQueue.ring.capacity == 16 ? "" : "note: ring capacity "); if IPIQueue.ring.capacity != 16 { $0.dec(UInt64(IPIQueue.ring.capacity)); $0.write(" (ipiq.fifo=16 is the SPEC storm size); ") }; $0.dec(seconds); $0.write(" s on "); $0.dec(cpus.count); $0.write(" CPUs") }
        let before = IPIStats.now()
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        var threads: [Thread] = []
        cpus.forEach { cpu in
            if let td = Thread.spawn("ipiq-torture", cpu: cpu, { sender(end: end, cpus: cpus) }) { threads.append(td) }
        }
        for td in threads { td.join() }
        // Let the last messages land, then check exactly-once: received == sent per pair and kind.
        let settle = TimeBudget(milliseconds: 200)
        while !settle.expired { IPIQueue.process(); CPU.pause() }
        var lostTotal: UInt64 = 0
        for s in 0..<n { for d in 0..<n { for k in 0..<2 {
            let sent = nextSeq![s, d, kind: k], seen = lastSeen![s, d, kind: k]
            if sent != seen { lostTotal += sent > seen ? sent - seen : seen - sent }
        } } }
        if lostTotal > 0 { errors![Err.lost.rawValue].wrappingAdd(lostTotal, ordering: .relaxed) }
        let stats = IPIStats.now().minus(before)
        report(&t, stats)
    }

    /// One per CPU: random targets, some sends waited on, handlers that forward.
    static func sender(end: UInt64, cpus: CPUMask) {
        let me = PerCPU.currentNumber
        var rng = UInt64(me &+ 7) &* 0x9E37_79B9_7F4A_7C15
        while TSC.now < end {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            guard let dst = cpus.next(atOrAfter: Int(rng % 64)), dst != me else { continue }
            let seq = nextSeq![me, dst] &+ 1
            nextSeq![me, dst] = seq
            preSend![me, dst] = seq                 // the caller's write before the send
            let a1 = encode(seq: seq, kind: 0, src: me, dst: dst)
            // One send in 16 is passive: no IPI, the target finds it at its next
            // tick or with the next message.
            let mode: IPIQueue.Mode = rng >> 40 & 15 == 0 ? .passive : .normal
            guard let s = IPIQueue.send(to: dst, { a, b in IPIQueueTorture.handler(a, b) }, a1, ~a1, mode: mode) else { continue }
            if rng & 7 == 0 {                       // wait for it, then read the handler's write
                IPIQueue.wait(target: dst, sequence: s)
                if handlerAck![me, dst] < seq { error(.missedHandlerWrite) }
            }
        }
    }

    static func handler(_ a1: UInt64, _ a2: UInt64) {
        let me = PerCPU.currentNumber
        if a2 != ~a1 { error(.payload); return }
        let dst = Int(a1 & 63), src = Int(a1 >> 6 & 63), kind = Int(a1 >> 12 & 1), seq = a1 >> 16
        if dst != me { error(.wrongCPU) }
        if lastSeen![src, me, kind: kind] &+ 1 != seq { error(.order) }
        lastSeen![src, me, kind: kind] = seq
        if kind == 0 {
            if preSend![src, me] < seq { error(.missedPreSendWrite) }
            handlerAck![src, me] = seq              // read by the caller after wait()
        }
        let q = IPIQueue.ringFor(source: src, target: me)
        let w = q.pointee.windex.load(ordering: .acquiring), r = q.pointee.rindex.load(ordering: .relaxed)
        let x = q.pointee.xindex.load(ordering: .relaxed)
        if !IPIQueue.ring.ordered(windex: w, rindex: r, xindex: x) { error(.indexOrder) }
        if IPIQueue.ring.occupancy(windex: w, rindex: r) >= IPIQueue.ring.capacity { error(.occupancy) }
        // Re-entrancy: a quarter of first-hand messages are forwarded from the
        // handler (nowait: a handler must not wait on a full ring).
        if kind == 0 && seq & 3 == 0 {
            let next = SMP.online.next(atOrAfter: me + 1) ?? me
            if next != me {
                let fseq = nextSeq![me, next, kind: 1] &+ 1
                let f = encode(seq: fseq, kind: 1, src: me, dst: next)
                if IPIQueue.send(to: next, { a, b in IPIQueueTorture.handler(a, b) }, f, ~f, mode: .nowait) != nil {
                    nextSeq![me, next, kind: 1] = fseq
                } else {
                    forwardsDropped.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
    }

    static func report(_ t: inout TestContext, _ stats: IPIStats) {
        var total: UInt64 = 0
        for e in Err.allCases { total += errors![e.rawValue].load(ordering: .relaxed) }
        Console.line { l in l.write("ipiq-torture: "); stats.write(&l) }
        Console.line { l in
            l.write(total > 0 ? "ipiq-torture: errors !!! " : "ipiq-torture: errors ")
            for e in Err.allCases { l.write(e.label); l.write(" "); l.dec(errors![e.rawValue].load(ordering: .relaxed)); l.write("; ") }
        }
        t.check(stats.sent > 0 && stats.received >= stats.sent) { l in
            l.dec(stats.sent); l.write(" messages sent, "); l.dec(stats.received); l.write(" received")
        }
        t.check(stats.avoided > 0) { l in l.write("coalescing avoided "); l.dec(stats.avoided); l.write(" hardware IPIs ("); l.dec(stats.ipis); l.write(" sent)") }
        for e in Err.allCases {
            let c = errors![e.rawValue].load(ordering: .relaxed)
            t.check(c == 0) { l in l.write("no "); l.write(e.label); l.write(" ("); l.dec(c); l.write(")") }
        }
        Console.print(total == 0 ? "End of test: SUCCESS" : "End of test: FAILURE")
    }
}

enum IPIQueueFlood {
    static let suite = TestSuite(name: "ipiq-flood", kind: .normal,
                                 summary: "two CPUs flood each other with full FIFOs, interrupts off: no deadlock", body: run)

    nonisolated(unsafe) static var received: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static let startLine = Atomic<UInt64>(0)
    static let deadline = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2, let a = cpus.first, let b = cpus.next(atOrAfter: a + 1), b != a else {
            t.skip("needs at least 2 CPUs"); return
        }
        received = .allocate(capacity: 2)
        received!.initialize(to: Atomic(0)); (received! + 1).initialize(to: Atomic(0))
        let before = IPIStats.now()
        let sent = SharedCounters()      // [0], [1]: messages sent by each flooder
        startLine.store(0, ordering: .relaxed)
        deadline.store(0, ordering: .relaxed)
        var threads: [Thread] = []
        for (i, (me, other)) in [(a, b), (b, a)].enumerated() {
            if let td = Thread.spawn("flood", cpu: me, {
                // Start together: otherwise the first flooder keeps the second
                // one's CPU busy in its IPI handler before that one ever runs.
                IPIQueueFlood.startLine.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while IPIQueueFlood.startLine.load(ordering: .acquiring) < 2 { CPU.pause() }
                if i == 0 { IPIQueueFlood.deadline.store(TSC.now &+ TSC.ticksPerMs &* 1000, ordering: .releasing) }
                while IPIQueueFlood.deadline.load(ordering: .acquiring) == 0 { CPU.pause() }
                let end = IPIQueueFlood.deadline.load(ordering: .acquiring)
                while TSC.now < end {
                    // A batch with interrupts OFF: only the sender's own draining in
                    // the nearly-full path lets the other side make progress.
                    let flags = CPU.saveFlagsAndDisableInterrupts()
                    for _ in 0..<64 {
                        IPIQueue.send(to: other, { idx, _ in
                            IPIQueueFlood.received![Int(idx)].wrappingAdd(1, ordering: .relaxed)
                            for _ in 0..<50 { CPU.pause() }         // a slow handler fills the FIFO
                        }, UInt64(1 - i))
                        sent.values[i] &+= 1
                    }
                    CPU.restoreFlags(flags)
                }
            }) { threads.append(td) }
        }
        for td in threads { td.join() }
        let settle = TimeBudget(milliseconds: 200)
        while !settle.expired { IPIQueue.process(); CPU.pause() }
        let stats = IPIStats.now().minus(before)
        let r0 = received![0].load(ordering: .relaxed), r1 = received![1].load(ordering: .relaxed)
        Console.line { l in l.write("ipiq-flood: CPUs "); l.dec(a); l.write(" and "); l.dec(b); l.write(": "); stats.write(&l) }
        t.check(sent.values[0] > 0 && sent.values[1] > 0, "both CPUs finished flooding (no deadlock)")
        t.check(r0 == sent.values[1] && r1 == sent.values[0]) { l in
            l.write("every message arrived: "); l.dec(r1); l.write("/"); l.dec(sent.values[0]); l.write(" and "); l.dec(r0); l.write("/"); l.dec(sent.values[1])
        }
        t.check(stats.fullWaits > 0) { l in l.write("the FIFOs really filled ("); l.dec(stats.fullWaits); l.write(" nearly-full waits)") }
    }
}

enum IPIQueueWakeup {
    static let suite = TestSuite(name: "ipiq-wakeup", kind: .normal,
                                 summary: "D5: every message is processed within a bound (run with tick=0)", body: run)

    static let done = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("needs at least 2 CPUs"); return }
        let target = cpus.next(atOrAfter: 1) ?? 0
        if Clock.enabled { t.note { $0.write("the periodic tick is on: it would hide lost wake-ups (use tick=0)") } }
        if IPIQueue.skipRecheckFence { t.note { $0.write("negative control: no fence between latch release and re-check") } }
        let boundMs: UInt64 = 100
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        let c = SharedCounters()      // per sender: [i] messages, [16 + i] lost wake-ups
        var threads: [Thread] = []
        var i = 0
        cpus.forEach { cpu in
            guard cpu != target else { return }
            let me = i
            i += 1
            if let td = Thread.spawn("wakeup-sender", cpu: cpu, {
                while TSC.now < end {
                    let expected = IPIQueueWakeup.done.load(ordering: .acquiring) &+ 1
                    IPIQueue.send(to: target, { _, _ in IPIQueueWakeup.done.wrappingAdd(1, ordering: .releasing) })
                    c.values[me] &+= 1
                    let bound = TSC.now &+ TSC.ticksPerMs &* boundMs
                    // Wait for our message (or a later one) to be processed.
                    while IPIQueueWakeup.done.load(ordering: .acquiring) < expected && TSC.now < bound { CPU.pause() }
                    if IPIQueueWakeup.done.load(ordering: .acquiring) < expected {
                        c.values[16 + me] &+= 1      // lost: the target slept on a pending message
                        LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
                        while IPIQueueWakeup.done.load(ordering: .acquiring) < expected { CPU.pause() }
                    }
                }
            }) { threads.append(td) }
        }
        for td in threads { td.join() }
        var messages: UInt64 = 0, lost: UInt64 = 0
        for k in 0..<16 { messages += c.values[k]; lost += c.values[16 + k] }
        Console.line { l in
            l.write("ipiq-wakeup: "); l.dec(messages); l.write(" messages to CPU "); l.dec(target)
            l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
            l.write(" (bound "); l.dec(boundMs); l.write(" ms, tick "); l.write(Clock.enabled ? "on)" : "off)")
        }
        t.check(messages > 0) { $0.dec(messages); $0.write(" messages sent to an idle CPU") }
        t.check(lost == 0) { $0.write("D5: every message processed within "); $0.dec(boundMs); $0.write(" ms ("); $0.dec(lost); $0.write(" lost wake-ups)") }
        Console.print(lost == 0 ? "End of test: SUCCESS" : "End of test: FAILURE")
    }
}
