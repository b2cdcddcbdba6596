// The events of a ktrace dump as the kernel recorded them, and what each one
// means. Names are kept as strings rather than an enum so that a kernel newer
// than this tool still yields a usable trace: an unknown name becomes a plain
// instant and is only counted.

/// One `K` line: `K <cpu> <tsc> <name> <a> <b>`.
public struct KtraceEvent: Equatable, Sendable {
    /// 1-based line in the log, so that every later complaint can point at it.
    public var line: Int
    public var cpu: Int
    public var tsc: UInt64
    public var name: String
    public var a: UInt64
    public var b: UInt64

    public init(line: Int, cpu: Int, tsc: UInt64, name: String, a: UInt64, b: UInt64) {
        self.line = line; self.cpu = cpu; self.tsc = tsc; self.name = name; self.a = a; self.b = b
    }

    public var family: KtraceFamily { KtraceFamily(eventName: name) }
    public var isKnown: Bool { Self.argumentNames[name] != nil }

    /// What a and b mean per event; "" marks an argument the kernel leaves 0.
    /// Also the list of known names.
    static let argumentNames: [String: (String, String)] = [
        "switch": ("from", "to"),
        "preempt.defer": ("thread", ""), "preempt.take": ("thread", ""),
        "crit.window": ("thread", "cycles"),
        "ipi.send": ("target", "seq"), "ipi.recv": ("source", "seq"), "ipi.coalesced": ("target", "seq"),
        "rdv.setup": ("gen", ""), "rdv.action": ("gen", ""), "rdv.teardown": ("gen", ""),
        "rdv.enter": ("gen", ""), "rdv.exit": ("gen", ""),
        "cpusync.begin": ("mask", ""), "cpusync.end": ("mask", ""),
        "bsd4.resched": ("target", "reason"), "migrate": ("thread", "target"),
        "nmi.stop": ("cpu", ""),
        "bsd4.user": ("thread", ""), "bsd4.kernel": ("thread", ""), "spin.wait": ("cycles", ""),
    ]

    /// Named arguments for display, in a fixed order. A mask reads better in hex.
    public var arguments: [(String, String)] {
        let (na, nb) = Self.argumentNames[name] ?? ("a", "b")
        func show(_ label: String, _ v: UInt64) -> String {
            label == "mask" ? "0x" + String(v, radix: 16) : String(v)
        }
        var out = [(na, show(na, a))]
        if !nb.isEmpty { out.append((nb, show(nb, b))) }
        return out
    }
}

/// Groups events for colour (SVG) and category (Chrome trace `cat`).
public enum KtraceFamily: String, CaseIterable, Sendable {
    case sched, preempt, crit, ipi, rdv, cpusync, bsd4, nmi, other

    public init(eventName name: String) {
        switch name {
        case "switch": self = .sched
        case "preempt.defer", "preempt.take": self = .preempt
        case "crit.window": self = .crit
        case "ipi.send", "ipi.recv", "ipi.coalesced": self = .ipi
        case "rdv.setup", "rdv.action", "rdv.teardown", "rdv.enter", "rdv.exit": self = .rdv
        case "cpusync.begin", "cpusync.end": self = .cpusync
        case "bsd4.resched", "migrate", "bsd4.user", "bsd4.kernel": self = .bsd4
        case "spin.wait": self = .sched
        case "nmi.stop": self = .nmi
        default: self = .other
        }
    }
}

/// A problem found in the log, pointing at its line when there is one.
public struct KtraceDiagnostic: Error, Equatable, CustomStringConvertible, Sendable {
    /// 0 when the problem belongs to no single line (e.g. no dump at all).
    public var line: Int
    public var message: String

    public init(line: Int, _ message: String) { self.line = line; self.message = message }

    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// One `ktrace: begin` … `ktrace: end` block.
public struct KtraceDump: Sendable {
    public var cpus: Int
    /// TSC cycles per microsecond.
    public var tscMHz: UInt64
    /// What the begin line announced; compared with what arrived.
    public var declaredEvents: Int
    public var dropped: UInt64
    public var beginLine: Int
    /// nil when the log stops before `ktrace: end` (the kernel died mid-dump).
    public var endLine: Int?
    /// In dump order: CPU after CPU, each ring oldest first.
    public var events: [KtraceEvent] = []
    public var malformed: [KtraceDiagnostic] = []

    public var isComplete: Bool { endLine != nil }
    public var unknownEventCount: Int { events.filter { !$0.isKnown }.count }

    public func eventCount(cpu: Int) -> Int { events.filter { $0.cpu == cpu }.count }
}
