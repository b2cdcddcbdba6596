import Foundation

// benchreport's tables: one boot's measurements with their ratios to the
// floors, Quartet against Linux, and boot time / IPI throughput against the
// CPU count.

public struct BenchContext {
    public var accel: String
    public var hostCPU: String
    public var date: String
    public init(accel: String, hostCPU: String, date: String) {
        self.accel = accel; self.hostCPU = hostCPU; self.date = date
    }
}

public enum BenchReport {
    static let header = ["measurement", "id", "median", "p99", "samples", "unit", "x floor"]

    static func rows(_ log: BenchLog) -> [[String]] {
        log.records.map { r in
            let ratio = log.ratioToFloor(r).map { BenchFormat.ratio($0) + " " + (r.floor ?? "") } ?? "-"
            return [r.label, r.id, BenchFormat.number(r.median), BenchFormat.number(r.p99), String(r.n), r.unit, ratio]
        }
    }

    static func heading(_ log: BenchLog, _ c: BenchContext) -> String {
        var parts = ["\(log.system)", "\(c.accel)", "-smp \(log.env["smp"] ?? "?")"]
        if let k = log.env["kernel"] { parts.append("kernel \(k)") }
        parts.append("guest CPU \(log.env["cpu"] ?? "?")")
        parts.append("host CPU \(c.hostCPU)")
        return parts.joined(separator: ", ")
    }

    public static func table(_ log: BenchLog, _ c: BenchContext) -> String {
        "== " + heading(log, c) + "\n" +
            BenchFormat.plainTable(header, rows(log), rightAligned: [2, 3, 4]) + skipsAndErrors(log)
    }

    public static func markdown(_ log: BenchLog, _ c: BenchContext) -> String {
        "### \(c.date): " + heading(log, c) + "\n\n" + BenchFormat.markdownTable(header, rows(log)) + skipsAndErrors(log) + "\n"
    }

    static func skipsAndErrors(_ log: BenchLog) -> String {
        var s = ""
        for k in log.skips { s += "\nSKIP: \(k)" }
        for e in log.errors { s += "\nmalformed: \(e)" }
        return s.isEmpty ? "" : "\n" + s
    }
}

/// Quartet against Linux, per shared measurement.
public enum BenchCompare {
    public struct Pair: Equatable {
        public var quartet: String?
        public var linux: String
        public var note: String
    }

    /// docs/benchmarks.md's table.
    public static let pairs: [Pair] = [
        Pair(quartet: "spin.uncontended", linux: "spin.uncontended", note: "SpinLock pair vs pthread spinlock pair"),
        Pair(quartet: "switch.yield", linux: "switch.yield", note: "yield between two threads vs futex ping-pong on one CPU"),
        Pair(quartet: "wakeup.roundtrip", linux: "wakeup.roundtrip", note: "sleep/wakeup vs futex, across CPUs"),
        Pair(quartet: "mem.pingpong", linux: "mem.pingpong", note: "the hardware floor, same code shape"),
        Pair(quartet: "rendezvous.all", linux: "membarrier.all", note: "rendezvous vs membarrier (expedited)"),
        Pair(quartet: "cpusync.all", linux: "membarrier.all", note: "cpusync vs membarrier (expedited)"),
        Pair(quartet: "heap.alloc64", linux: "heap.alloc64", note: "kernel heap vs glibc malloc"),
        Pair(quartet: nil, linux: "syscall.roundtrip", note: "Quartet has no user mode yet"),
    ]

    public struct Row: Equatable {
        public var measurement: String
        public var quartet: Double?
        public var linux: Double?
        public var note: String
        public var ratio: Double? {
            guard let q = quartet, let l = linux, l > 0 else { return nil }
            return q / l
        }
    }

    public static func rows(quartet q: BenchLog, linux l: BenchLog) -> [Row] {
        pairs.map { p in
            let qr = p.quartet.flatMap { q.record($0) }
            let lr = l.record(p.linux)
            var note = p.note
            if p.quartet != nil && qr == nil { note += "; not in the Quartet log" }
            if lr == nil { note += l.records.isEmpty ? "; Linux did not run (below)" : "; not in the Linux log" }
            let name = p.quartet.map { $0 == p.linux ? $0 : "\($0) / \(p.linux)" } ?? p.linux
            return Row(measurement: name, quartet: qr?.median, linux: lr?.median, note: note)
        }
    }

    static let header = ["measurement", "Quartet (cycles)", "Linux (cycles)", "Quartet / Linux", "note"]

    static func cells(_ r: Row) -> [String] {
        [r.measurement, r.quartet.map(BenchFormat.number) ?? "-", r.linux.map(BenchFormat.number) ?? "-",
         BenchFormat.ratio(r.ratio), r.note]
    }

    public static func table(quartet q: BenchLog, linux l: BenchLog, _ c: BenchContext, markdown: Bool) -> String {
        let rs = rows(quartet: q, linux: l).map(cells)
        let why = l.records.isEmpty ? "\n\nLinux did not run: " + (l.skips.first ?? "its log holds no BENCH lines") : ""
        let title = "Quartet vs Linux, \(c.accel), -smp \(q.env["smp"] ?? "?"), Linux \(l.env["kernel"] ?? "-"), guest CPU \(q.env["cpu"] ?? "?"), host CPU \(c.hostCPU)"
        if markdown { return "### \(c.date): " + title + "\n\n" + BenchFormat.markdownTable(header, rs) + why + "\n" }
        return "== " + title + "\n" + BenchFormat.plainTable(header, rs, rightAligned: [1, 2, 3]) + why
    }
}

/// Boot time and IPI-queue throughput against the CPU count.
public enum BenchScale {
    public struct Point: Equatable {
        public var cpus: Int
        public var bootMicroseconds: Double?
        public var alltoall: Double?
    }

    public static func points(_ logs: [BenchLog]) -> [Point] {
        logs.compactMap { log in
            guard let n = log.smp else { return nil }
            return Point(cpus: n, bootMicroseconds: log.record("boot.online")?.median, alltoall: log.record("ipiq.alltoall")?.median)
        }.sorted { $0.cpus < $1.cpus }
    }

    /// Sub-linear: from the fewest to the most CPUs, boot time grew by less
    /// than the CPU count did. Nil without two points.
    public static func subLinear(_ ps: [Point]) -> (growth: Double, cpuGrowth: Double, subLinear: Bool)? {
        let with = ps.filter { $0.bootMicroseconds != nil }
        guard let a = with.first, let b = with.last, a.cpus < b.cpus, let ta = a.bootMicroseconds, let tb = b.bootMicroseconds, ta > 0
        else { return nil }
        let g = tb / ta, c = Double(b.cpus) / Double(a.cpus)
        return (g, c, g < c)
    }

    public static func table(_ logs: [BenchLog], markdown: Bool, date: String) -> String {
        let ps = points(logs)
        let base = ps.first?.bootMicroseconds
        let header = ["CPUs", "boot to all online (us)", "x the smallest", "IPI queue, all to next (messages/s)"]
        let rows = ps.map { p in
            [String(p.cpus), p.bootMicroseconds.map(BenchFormat.number) ?? "-",
             BenchFormat.ratio(p.bootMicroseconds.flatMap { t in base.map { t / $0 } }),
             p.alltoall.map(BenchFormat.number) ?? "-"]
        }
        var verdict = "boot growth: not enough points"
        if let v = subLinear(ps) {
            verdict = String(format: "boot time grew %.2fx while the CPU count grew %.0fx: ", v.growth, v.cpuGrowth)
                + (v.subLinear ? "sub-linear" : "NOT sub-linear")
        }
        if markdown {
            return "### \(date): scale (TCG, bench-scale)\n\n" + BenchFormat.markdownTable(header, rows) + "\n\n" + verdict + "\n"
        }
        return "== scale (TCG, bench-scale)\n" + BenchFormat.plainTable(header, rows, rightAligned: [0, 1, 2, 3]) + "\n" + verdict
    }
}
