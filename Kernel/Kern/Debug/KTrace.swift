import Synchronization

// Kernel event tracing (after FreeBSD's KTR; docs/tracing.md). One ring of
// timestamped events per CPU, lock-free: only its CPU writes it (a thread that
// read its CPU number and then moved would write the old CPU's ring: the slot
// index is taken atomically, so two writers never share a slot; such an event
// is merely attributed to the CPU it read). Off, `record` is one load and one
// predictable branch. Dumped as text (`K cpu tsc event a b`) that
// `swift run ktrace` turns into Chrome Trace Event JSON and an SVG timeline.
//
// Who writes what:
//   CPU c           ring c's slots and its index
//   start/stop      `on` (any CPU; recording is best effort around the flip)
//   dump            reads every ring (with tracing stopped, or racing: a torn
//                   slot shows as one odd event, never a crash)

enum KTraceEvent: UInt32 {
    case switchTo = 1, preemptDefer, preemptTake, critWindow
    case ipiSend, ipiRecv, ipiCoalesced
    case rdvEnter, rdvSetup, rdvAction, rdvTeardown, rdvExit
    case cpusyncBegin, cpusyncEnd, bsd4Resched, migrate, nmiStop
    case bsd4User, bsd4Kernel, spinWait

    var name: StaticString {
        switch self {
        case .switchTo: "switch"
        case .preemptDefer: "preempt.defer"
        case .preemptTake: "preempt.take"
        case .critWindow: "crit.window"
        case .ipiSend: "ipi.send"
        case .ipiRecv: "ipi.recv"
        case .ipiCoalesced: "ipi.coalesced"
        case .rdvEnter: "rdv.enter"
        case .rdvSetup: "rdv.setup"
        case .rdvAction: "rdv.action"
        case .rdvTeardown: "rdv.teardown"
        case .rdvExit: "rdv.exit"
        case .cpusyncBegin: "cpusync.begin"
        case .cpusyncEnd: "cpusync.end"
        case .bsd4Resched: "bsd4.resched"
        case .migrate: "migrate"
        case .nmiStop: "nmi.stop"
        case .bsd4User: "bsd4.user"
        case .bsd4Kernel: "bsd4.kernel"
        case .spinWait: "spin.wait"
        }
    }
}

struct KTraceEntry {
    var tsc: UInt64
    var event: UInt32
    var a: UInt64
    var b: UInt64
}

final class KTraceRing {
    let slots: UnsafeMutablePointer<KTraceEntry>
    let capacity: Int
    /// Events ever recorded here (the next slot is index % capacity).
    let index = Atomic<UInt64>(0)
    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: KTraceEntry(tsc: 0, event: 0, a: 0, b: 0), count: capacity)
    }
}

enum KTrace {
    /// The one branch every trace point pays when tracing is off.
    nonisolated(unsafe) static var on = false
    nonisolated(unsafe) private static var rings: [KTraceRing] = []
    /// Set when a torture suite froze the rings at its first race window.
    private static let frozenAtWindow = Atomic<Bool>(false)
    private static let windowDumped = Atomic<Bool>(false)

    /// Boot CPU, before the APs: rings of `ktrace.entries` slots (default
    /// 4096) if `ktrace=1` or when the monitor may start it later.
    static func initialize(cpuCount: Int) {
        let entries = max(64, min(1 << 20, KernelOptions.int("ktrace.entries", default: 4096)))
        rings = (0..<cpuCount).map { _ in KTraceRing(capacity: entries) }
        on = KernelOptions.flag("ktrace", default: false)
    }

    static var available: Bool { !rings.isEmpty }

    @inline(__always)
    static func record(_ e: KTraceEvent, _ a: UInt64 = 0, _ b: UInt64 = 0) {
        guard on else { return }
        write(e, a, b)
    }

    @inline(never)
    private static func write(_ e: KTraceEvent, _ a: UInt64, _ b: UInt64) {
        let cpu = PerCPU.currentNumber
        guard cpu < rings.count else { return }
        let r = rings[cpu]
        let i = r.index.wrappingAdd(1, ordering: .relaxed).oldValue
        r.slots[Int(i % UInt64(r.capacity))] = KTraceEntry(tsc: TSC.now, event: e.rawValue, a: a, b: b)
    }

    static func start() { if available { on = true } }
    static func stop() { on = false }

    /// Forgets every recorded event (tracing should be stopped).
    static func clear() { for r in rings { r.index.store(0, ordering: .relaxed) } }

    /// Recorded and overwritten events, all CPUs.
    static var counts: (recorded: UInt64, dropped: UInt64) {
        var rec: UInt64 = 0, dropped: UInt64 = 0
        for r in rings {
            let n = r.index.load(ordering: .relaxed)
            rec &+= n
            if n > UInt64(r.capacity) { dropped &+= n - UInt64(r.capacity) }
        }
        return (rec, dropped)
    }

    /// The text dump: a begin line, each CPU's events oldest first, an end line.
    /// Stops tracing while it prints (the dump's own IPIs and switches would
    /// otherwise overwrite what it is printing) and restores it after.
    /// `stop`: asked between events (the monitor's Ctrl-C).
    static func dump(stop: () -> Bool = { false }) {
        guard available else { Console.print("ktrace: not available"); return }
        let was = on
        on = false
        let c = counts
        Console.line { l in
            l.write("ktrace: begin cpus="); l.dec(rings.count); l.write(" tsc_mhz="); l.dec(TSC.ticksPerMs / 1000)
            l.write(" events="); l.dec(c.recorded - c.dropped); l.write(" dropped="); l.dec(c.dropped)
        }
        var interrupted = false
        for (cpu, r) in rings.enumerated() where !interrupted {
            let n = r.index.load(ordering: .relaxed)
            let first = n > UInt64(r.capacity) ? n - UInt64(r.capacity) : 0
            var i = first
            while i < n {
                if stop() { Console.print("ktrace: dump interrupted"); interrupted = true; break }
                let s = r.slots[Int(i % UInt64(r.capacity))]
                if let e = KTraceEvent(rawValue: s.event) {
                    Console.line { l in
                        l.write("K "); l.dec(cpu); l.write(" "); l.hex(s.tsc, width: 16, prefix: false); l.write(" "); l.write(e.name)
                        l.write(" "); l.dec(s.a); l.write(" "); l.dec(s.b)
                    }
                }
                i += 1
            }
        }
        Console.print("ktrace: end")
        // A window frozen meanwhile (or before) stays frozen.
        on = was && !frozenAtWindow.load(ordering: .relaxed)
    }

    /// A torture suite calls this where it sees its race window (any context,
    /// even inside a rendezvous action): the first time, recording stops, so
    /// the rings end with the window instead of being overwritten by the rest
    /// of the run.
    static func freezeAtWindow() {
        guard on, !frozenAtWindow.exchange(true, ordering: .relaxed) else { return }
        on = false
    }

    /// Later, in thread context: the frozen trace, once per boot.
    static func dumpFrozenWindow(_ suite: StaticString) {
        guard frozenAtWindow.load(ordering: .relaxed), !windowDumped.exchange(true, ordering: .relaxed) else { return }
        Console.line { l in l.write("ktrace: "); l.write(suite); l.write(" saw its race window; the trace up to it follows") }
        dump()
    }
}
