// benchreport's texts: one boot's measurements with their ratios to the floors
// (plain or Markdown), Quartet against Linux, and boot time / IPI-queue
// throughput against the CPU count. Each is a pure function of parsed logs and
// a context (what the command line adds: accelerator, host CPU, date).

import Foundation

/// What the command line knows that the logs do not.
public struct BenchContext: Sendable {
    /// --accel: tcg, kvm ... (else the log's hypervisor= is shown).
    public var accel: String?
    /// --host-cpu: the machine QEMU ran on.
    public var hostCPU: String?
    public var date: Date

    public init(accel: String? = nil, hostCPU: String? = nil, date: Date = Date()) {
        self.accel = accel
        self.hostCPU = hostCPU
        self.date = date
    }
}

/// A parsed log and the name it was read from.
public struct NamedLog: Sendable {
    public var source: String
    public var log: BenchLog
    public init(_ source: String, _ log: BenchLog) {
        self.source = source
        self.log = log
    }
}

public enum BenchReport {
    // MARK: One boot

    /// --accel, else the guest's hypervisor= ("TCG", "KVM"), else "unknown";
    /// both when they disagree.
    static func accelerator(_ log: BenchLog, _ c: BenchContext) -> String {
        let seen = log.env?.hypervisor
        guard let given = c.accel else { return seen ?? "unknown" }
        if let seen, seen.lowercased() != given.lowercased() { return "\(given) (the guest reports \(seen))" }
        return given
    }

    static func smp(_ log: BenchLog) -> String { log.env?["smp"] ?? "?" }
    static func guestCPU(_ log: BenchLog) -> String { log.env?.cpu ?? "unknown" }
    static func hostCPU(_ c: BenchContext) -> String { c.hostCPU ?? "not given" }

    /// BENCHENV keys the heading does not show, as "k=v k=v".
    static func otherEnv(_ log: BenchLog) -> String {
        guard let env = log.env else { return "" }
        return env.keys.filter { !["system", "smp", "cpu"].contains($0) }.map { "\($0)=\(env[$0]!)" }
            .joined(separator: " ")
    }

    static let columns = ["measurement", "id", "median", "p99", "samples", "unit", "ratio to floor", "floor"]

    static func rows(_ log: BenchLog) -> TextTable {
        var t = TextTable(columns, right: [2, 3, 4, 6])
        for r in log.uniqueRecords {
            let ratio = log.ratio(r)
            let floor: String
            switch ratio {
            case .none: floor = ""
            case .value(_, let f): floor = f
            case .missing(let f): floor = "\(f) (not in this log)"
            case .unusable(let f, let why): floor = "\(f) (\(why))"
            }
            t.add([r.label, r.id, BenchFormat.number(r.median), BenchFormat.number(r.p99), BenchFormat.number(Double(r.n)),
                   r.unit, BenchFormat.ratio(ratio.value), floor])
        }
        return t
    }

    /// SKIP lines and problems with the log, for under a table.
    static func notes(_ log: BenchLog) -> [String] {
        log.skips.map { "SKIP \($0.what): \($0.reason)" } + log.diagnostics.map { "log \($0)" }
    }

    /// The plain table of one boot, with its heading.
    public static func table(_ l: NamedLog, _ c: BenchContext) -> String {
        let log = l.log
        var s = "== \(l.source)\n"
        s += "system: \(log.env?.system ?? "unknown")   accelerator: \(accelerator(log, c))   smp: \(smp(log))\n"
        s += "guest cpu: \(guestCPU(log))\n"
        s += "host cpu: \(hostCPU(c))\n"
        let other = otherEnv(log)
        if !other.isEmpty { s += "environment: \(other)\n" }
        s += "\n" + rows(log).plain
        let n = notes(log)
        if !n.isEmpty { s += "\n" + n.map { "  " + $0 + "\n" }.joined() }
        return s
    }

    /// The Markdown section of one boot: a heading line, the log, the table.
    public static func markdown(_ l: NamedLog, _ c: BenchContext) -> String {
        let log = l.log
        let md = BenchFormat.markdown
        var s = "### \(BenchFormat.utc(c.date)): \(md(log.env?.system ?? "unknown")), \(md(accelerator(log, c))), "
        s += "-smp \(md(smp(log))), guest CPU \(md(guestCPU(log))), host CPU \(md(hostCPU(c)))\n\n"
        let other = otherEnv(log)
        s += "Log `\(l.source)`" + (other.isEmpty ? "" : "; \(md(other))") + ". Ratio to floor = median / the floor's median, same boot.\n\n"
        s += rows(log).markdown
        let n = notes(log)
        if !n.isEmpty { s += "\n" + n.map { "- " + md($0) + "\n" }.joined() }
        return s
    }

    // MARK: Quartet against Linux

    public static func compare(quartet q: NamedLog, linux l: NamedLog, _ c: BenchContext, markdown: Bool) -> String {
        let rows = BenchCompare.rows(quartet: q.log, linux: l.log)
        let units = Set(rows.flatMap { [$0.quartet?.unit, $0.linux?.unit].compactMap { $0 } })
        let unit = units.count == 1 ? " (\(units.first!))" : ""
        var t = TextTable(["measurement", "Quartet median" + unit, "Linux median" + unit, "Quartet / Linux", "note"],
                          right: [1, 2, 3])
        func cell(_ r: BenchRecord?) -> String {
            guard let r else { return "-" }
            return BenchFormat.number(r.median) + (units.count > 1 ? " " + r.unit : "")
        }
        for r in rows { t.add([r.pair.name, cell(r.quartet), cell(r.linux), BenchFormat.ratio(r.ratio), r.note]) }

        // A side without results, and anything that makes the two runs unlike.
        var warnings = [BenchCompare.runProblem(q.log, side: "Quartet"), BenchCompare.runProblem(l.log, side: "Linux")]
            .compactMap { $0 }
        if let s = q.log.env?.system, s != "quartet" { warnings.append("the --quartet log says system=\(s)") }
        if let s = l.log.env?.system, s != "linux" { warnings.append("the --linux log says system=\(s)") }
        if let a = q.log.env?.smp, let b = l.log.env?.smp, a != b {
            warnings.append("not like for like: Quartet ran with smp \(a), Linux with smp \(b)")
        }
        if let a = q.log.env?.tscMHz, let b = l.log.env?.tscMHz, a > 0, b > 0, abs(a - b) / a > 0.02 {
            warnings.append("the TSC rates differ (\(BenchFormat.number(a)) and \(BenchFormat.number(b)) MHz): cycles are not the same unit")
        }
        let accel = accelerator(q.log, c)
        let smpText = q.log.env?.smp.map(String.init) ?? l.log.env?.smp.map(String.init) ?? "?"
        let linuxKernel = l.log.env?.kernel ?? (l.log.records.isEmpty ? "did not run" : "unknown")
        if markdown {
            let md = BenchFormat.markdown
            var s = "### \(BenchFormat.utc(c.date)): Quartet vs Linux, \(md(accel)), -smp \(md(smpText)), "
            s += "Linux kernel \(md(linuxKernel)), guest CPU \(md(guestCPU(q.log))), host CPU \(md(hostCPU(c)))\n\n"
            s += "Logs `\(q.source)` and `\(l.source)`. Quartet / Linux = ratio of the medians; below 1, Quartet is cheaper.\n\n"
            s += t.markdown
            if !warnings.isEmpty { s += "\n" + warnings.map { "- " + md($0) + "\n" }.joined() }
            return s
        }
        var s = "== Quartet vs Linux: \(accel), smp \(smpText)\n"
        s += "quartet: \(q.source) (guest cpu \(guestCPU(q.log)))\n"
        s += "linux:   \(l.source) (kernel \(l.log.env?.kernel ?? "unknown"), guest cpu \(guestCPU(l.log)))\n"
        s += "host cpu: \(hostCPU(c))\n\n"
        s += t.plain
        if !warnings.isEmpty { s += "\n" + warnings.map { "note: " + $0 + "\n" }.joined() }
        return s
    }

    // MARK: Scale runs

    /// The growth table of the scale runs; logs without smp= are left out (and named).
    public static func scale(_ logs: [NamedLog], _ c: BenchContext, markdown: Bool) -> String {
        var points: [ScalePoint] = []
        var left: [String] = []
        for l in logs {
            if let p = ScalePoint.from(l.log, source: l.source) { points.append(p) } else { left.append(l.source) }
        }
        let a = ScaleAnalysis(points)
        let baseCPUs = a.base?.cpus
        let growthHeader = "growth (vs \(baseCPUs.map { "\($0) CPU\($0 == 1 ? "" : "s")" } ?? "-"))"
        var t = TextTable(["CPUs", "boot.online (us)", growthHeader, "ipiq.alltoall (ops/s)", "log"], right: [0, 1, 2, 3])
        for p in a.points {
            t.add([String(p.cpus), p.bootUs.map(BenchFormat.number) ?? "-", BenchFormat.ratio(a.growth(p)),
                   p.alltoall.map(BenchFormat.number) ?? "-", p.source])
        }
        let first = logs.first?.log ?? BenchLog()
        let accel = accelerator(first, c)
        let span = a.points.isEmpty ? "no CPU counts"
            : "\(a.points.first!.cpus) to \(a.points.last!.cpus) CPUs, \(a.points.count) boot\(a.points.count == 1 ? "" : "s")"
        let leftNote = left.isEmpty ? [] : ["left out (no smp= in BENCHENV): " + left.joined(separator: ", ")]
        if markdown {
            let md = BenchFormat.markdown
            var s = "### \(BenchFormat.utc(c.date)): scale runs (bench-scale), \(md(accel)), \(span), "
            s += "guest CPU \(md(guestCPU(first))), host CPU \(md(hostCPU(c)))\n\n"
            s += t.markdown + "\n" + md(a.summary) + "\n"
            for n in leftNote { s += "\n" + md(n) + "\n" }
            return s
        }
        var s = "== Scale runs (bench-scale): \(accel), \(span)\n"
        s += "guest cpu: \(guestCPU(first))\nhost cpu: \(hostCPU(c))\n\n"
        s += t.plain + "\n" + a.summary + "\n"
        for n in leftNote { s += n + "\n" }
        return s
    }
}
