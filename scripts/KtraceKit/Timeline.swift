// What both writers draw, derived once from a dump: the events in time order,
// the spans they imply (which thread ran, critical windows, rendezvous and
// cpusync brackets) and the IPI send/receive pairs. Keeping this apart from the
// writers means the JSON and the SVG cannot disagree about what happened.
//
// Times are whole nanoseconds from the first event: the TSC gives sub-ns
// resolution, but nothing here is that precise across CPUs, and integers keep
// the output identical from run to run and machine to machine.

public struct KtraceTimeline {
    public enum SpanKind: Equatable, Sendable {
        case thread(UInt64), critical, rendezvous(UInt64), cpusync
    }

    public struct Span: Sendable {
        public var kind: SpanKind
        public var cpu: Int
        public var startNs: UInt64
        public var endNs: UInt64
        /// Indexes into `events`; no end event for a thread still running at the
        /// end of the trace, nor for a critical window (it is one event).
        public var startEvent: Int
        public var endEvent: Int?

        public var name: String {
            switch kind {
            case .thread(let t): return "thread #\(t)"
            case .critical: return "critical_exit window"
            case .rendezvous(let g): return "rendezvous #\(g)"
            case .cpusync: return "cpusync"
            }
        }
    }

    /// An IPI message from its send to its receive (indexes into `events`).
    public struct Flow: Sendable {
        public var id: Int
        public var send: Int
        public var recv: Int
        public var startNs: UInt64
        public var endNs: UInt64
    }

    public let cpus: Int
    public let tscMHz: UInt64
    public let dropped: UInt64
    /// Sorted by TSC; equal TSCs keep dump order, so the sort is deterministic.
    public let events: [KtraceEvent]
    public let origin: UInt64
    /// Spans ordered by start, a thread before what it encloses.
    public private(set) var spans: [Span] = []
    public private(set) var flows: [Flow] = []
    public private(set) var unmatchedSends = 0
    public private(set) var unmatchedReceives = 0
    /// True for events shown only through their span, not also as an instant.
    public private(set) var absorbed: [Bool]

    /// The last event's time: where threads still running are cut off.
    public var endNs: UInt64 { events.last.map { ns($0.tsc) } ?? 0 }

    static let nsLimit: UInt64 = 1 << 53

    public init(_ dump: KtraceDump) {
        cpus = dump.cpus; tscMHz = dump.tscMHz; dropped = dump.dropped
        events = dump.events.enumerated().sorted { ($0.element.tsc, $0.offset) < ($1.element.tsc, $1.offset) }
            .map { $0.element }
        origin = events.first?.tsc ?? 0
        absorbed = Array(repeating: false, count: events.count)
        deriveThreads()
        deriveBrackets()
        deriveFlows()
        let rank: (SpanKind) -> Int = { if case .thread = $0 { return 0 } else { return 1 } }
        spans = spans.enumerated().sorted {
            ($0.element.startEvent, rank($0.element.kind), $0.offset) < ($1.element.startEvent, rank($1.element.kind), $1.offset)
        }.map { $0.element }
    }

    /// Nanoseconds since the first event, saturated so that a corrupt TSC
    /// cannot overflow anything downstream.
    public func ns(_ tsc: UInt64) -> UInt64 { ns(cycles: tsc >= origin ? tsc - origin : 0) }

    public func ns(cycles: UInt64) -> UInt64 {
        let (hi, lo) = cycles.multipliedFullWidth(by: 1000)
        guard hi < tscMHz else { return Self.nsLimit }
        let (q, r) = tscMHz.dividingFullWidth((hi, lo))
        return q >= Self.nsLimit ? Self.nsLimit : (r >= tscMHz - r ? q + 1 : q)
    }

    /// "12.345": microseconds with three decimals, a valid JSON number.
    public static func microseconds(_ ns: UInt64) -> String {
        let frac = String(ns % 1000)
        return "\(ns / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A slice from each switch to the next on its CPU, named after the thread
    /// switched to; before a CPU's first switch, the thread switched from.
    mutating func deriveThreads() {
        var first = [Int?](repeating: nil, count: cpus), last = [Int?](repeating: nil, count: cpus)
        for (i, e) in events.enumerated() {
            if first[e.cpu] == nil { first[e.cpu] = i }
            guard e.name == "switch" else { continue }
            if let p = last[e.cpu] {
                spans.append(Span(kind: .thread(events[p].b), cpu: e.cpu, startNs: ns(events[p].tsc), endNs: ns(e.tsc),
                                  startEvent: p, endEvent: i))
            } else if let f = first[e.cpu], f != i {
                spans.append(Span(kind: .thread(e.a), cpu: e.cpu, startNs: ns(events[f].tsc), endNs: ns(e.tsc),
                                  startEvent: f, endEvent: i))
            }
            last[e.cpu] = i
        }
        for case let p? in last {
            let e = events[p]
            spans.append(Span(kind: .thread(e.b), cpu: e.cpu, startNs: ns(e.tsc), endNs: endNs, startEvent: p, endEvent: nil))
        }
    }

    /// Critical windows, and enter/exit pairs per CPU. An exit whose entry fell
    /// out of the ring (or the reverse) stays a plain instant.
    mutating func deriveBrackets() {
        var rendezvous: [[UInt64: Int]] = Array(repeating: [:], count: cpus)
        var cpusync: [[Int]] = Array(repeating: [], count: cpus)
        func bracket(_ kind: SpanKind, _ start: Int, _ end: Int) {
            spans.append(Span(kind: kind, cpu: events[end].cpu, startNs: ns(events[start].tsc), endNs: ns(events[end].tsc),
                              startEvent: start, endEvent: end))
            absorbed[start] = true; absorbed[end] = true
        }
        for (i, e) in events.enumerated() {
            switch e.name {
            case "crit.window":
                let start = ns(e.tsc)
                spans.append(Span(kind: .critical, cpu: e.cpu, startNs: start, endNs: min(start + ns(cycles: e.b), Self.nsLimit),
                                  startEvent: i, endEvent: nil))
                absorbed[i] = true
            case "rdv.enter": rendezvous[e.cpu][e.a] = i
            case "rdv.exit":
                if let s = rendezvous[e.cpu].removeValue(forKey: e.a) { bracket(.rendezvous(e.a), s, i) }
            case "cpusync.begin": cpusync[e.cpu].append(i)
            case "cpusync.end":
                // Cross-calls can nest; the innermost open one ends first.
                if let s = cpusync[e.cpu].popLast() { bracket(.cpusync, s, i) }
            default: break
            }
        }
    }

    /// A message sent on CPU s to t with seq n (ipi.send, or ipi.coalesced when
    /// t's interrupt was already pending) pairs with t's receive from s of seq
    /// n, in either order: the kernel stamps the send after publishing the
    /// message and kicking t, so a receiver polling its queue can stamp first.
    /// The message existed by then, so the flow starts no later than its receive.
    mutating func deriveFlows() {
        struct Key: Hashable { let from: Int; let to: UInt64; let seq: UInt64 }
        var sends: [Key: [Int]] = [:], receives: [Key: [Int]] = [:], keys: [Key] = []
        for (i, e) in events.enumerated() {
            let key: Key
            switch e.name {
            case "ipi.send", "ipi.coalesced":
                key = Key(from: e.cpu, to: e.a, seq: e.b)
                sends[key, default: []].append(i)
            case "ipi.recv":
                key = Key(from: Int(clamping: e.a), to: UInt64(e.cpu), seq: e.b)
                receives[key, default: []].append(i)
            default: continue
            }
            if (sends[key]?.count ?? 0) + (receives[key]?.count ?? 0) == 1 { keys.append(key) }
        }
        var pairs: [(send: Int, recv: Int)] = []
        for key in keys {
            let s = sends[key] ?? [], r = receives[key] ?? []
            pairs += zip(s, r).map { ($0, $1) }
            unmatchedSends += max(0, s.count - r.count)
            unmatchedReceives += max(0, r.count - s.count)
        }
        pairs.sort { min($0.send, $0.recv) < min($1.send, $1.recv) }
        flows = pairs.enumerated().map { k, p in
            let recv = ns(events[p.recv].tsc)
            return Flow(id: k + 1, send: p.send, recv: p.recv, startNs: min(ns(events[p.send].tsc), recv), endNs: recv)
        }
    }
}
