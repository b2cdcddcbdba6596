// Finds the benchmark results in a serial log (docs/benchmarks.md). The log is
// everything one boot printed; only these shapes matter, each at the start of a
// line (lines end in \n or \r\n):
//
//   BENCHENV: system=quartet smp=4 tsc_mhz=2419 hypervisor=KVM cpu=QEMU Virtual CPU version 2.5+
//   BENCH: id=ipiq.roundtrip unit=cycles median=41234 p99=90211 n=4120 floor=ipi.roundtrip label=IPI queue ...
//   SKIP: <what>: <reason>
//
// Tokens are key=value separated by spaces; the last key (`cpu`, `label`) takes
// the rest of the line, spaces included. Before the prefix, escape sequences
// (SeaBIOS clears the screen on the first line) and control characters are
// skipped, and a CR inside a line starts it over, as on a terminal. Every other
// line is ignored. SKIP lines (qbench's, the kernel's) are kept as the reason a
// measurement or a whole run is missing.
//
// A malformed BENCH or BENCHENV line is a diagnostic with its line number, not a
// silent drop; the rest of the log is still used.

/// One BENCH line.
public struct BenchRecord: Equatable, Sendable {
    public var id: String
    /// `cycles`, `us`, `ops/s`, `ratio` (`ns` from corebench). Not checked: a
    /// newer kernel may add one; a ratio is only taken between equal units.
    public var unit: String
    public var median: Double
    /// The 99th percentile in the worse direction (the 1st for rates).
    public var p99: Double
    public var n: Int
    /// The id this measurement is divided by, if any.
    public var floor: String?
    public var label: String
    /// Keys this tool does not know, kept as read.
    public var extra: [String: String]
    /// 1-based line number in the log.
    public var line: Int

    public init(id: String, unit: String, median: Double, p99: Double, n: Int, floor: String? = nil,
                label: String, extra: [String: String] = [:], line: Int = 0) {
        self.id = id
        self.unit = unit
        self.median = median
        self.p99 = p99
        self.n = n
        self.floor = floor
        self.label = label
        self.extra = extra
        self.line = line
    }
}

/// The BENCHENV line: every key as read, in order, with accessors for the usual ones.
public struct BenchEnv: Equatable, Sendable {
    public var values: [String: String]
    /// The keys in the order of the line.
    public var keys: [String]
    public var line: Int

    public init(_ pairs: [(String, String)], line: Int = 0) {
        values = [:]
        keys = []
        for (k, v) in pairs where values[k] == nil {
            values[k] = v
            keys.append(k)
        }
        self.line = line
    }

    public subscript(_ key: String) -> String? { values[key] }
    public var system: String? { values["system"] }
    public var smp: Int? { values["smp"].flatMap { Int($0) } }
    public var tscMHz: Double? { values["tsc_mhz"].flatMap { BenchParser.number(Substring($0)) } }
    public var hypervisor: String? { values["hypervisor"] }
    public var kernel: String? { values["kernel"] }
    public var cpu: String? { values["cpu"] }
}

/// A problem found in a log, with its line number (0: the log as a whole).
public struct BenchDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }
    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// What one log holds.
public struct BenchLog: Sendable {
    /// Every valid BENCH line, in log order (a repeated id appears twice).
    public var records: [BenchRecord] = []
    /// The first valid BENCHENV line.
    public var env: BenchEnv?
    /// Malformed lines and warnings, in line order.
    public var diagnostics: [BenchDiagnostic] = []
    /// `SKIP: <what>: <reason>` lines, as (what, reason), in order.
    public var skips: [(what: String, reason: String)] = []

    public init() {}

    /// The record of an id (the last one, when the log repeats it).
    public func record(_ id: String) -> BenchRecord? { records.last { $0.id == id } }

    /// The reason of the last SKIP line about `what`.
    public func skipReason(_ what: String) -> String? { skips.last { $0.what == what }?.reason }

    /// One record per id, the last of each, in order of first appearance.
    public var uniqueRecords: [BenchRecord] {
        var seen: [String: Int] = [:]
        var out: [BenchRecord] = []
        for r in records {
            if let i = seen[r.id] { out[i] = r } else { seen[r.id] = out.count; out.append(r) }
        }
        return out
    }
}

public enum BenchParser {
    public static func parse(_ text: String) -> BenchLog {
        var log = BenchLog()
        var firstLine: [String: Int] = [:]
        var number = 0
        // By scalars: as Characters, "\r\n" is one grapheme and never equals "\n".
        for raw in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = visibleLine(Substring(raw))
            if line.hasPrefix("BENCHENV:") {
                switch parseEnv(line.dropFirst("BENCHENV:".count), line: number) {
                case .success(let env):
                    if let first = log.env {
                        if first.values != env.values {
                            log.diagnostics.append(BenchDiagnostic(line: number,
                                "a second, different BENCHENV line (the first, line \(first.line), is used)"))
                        }
                    } else {
                        log.env = env
                    }
                case .failure(let d): log.diagnostics.append(d)
                }
            } else if line.hasPrefix("BENCH:") {
                switch parseBench(line.dropFirst("BENCH:".count), line: number) {
                case .success(let r):
                    if let first = firstLine[r.id] {
                        log.diagnostics.append(BenchDiagnostic(line: number,
                            "id \(r.id) appears again (first at line \(first)); the last one is used"))
                    } else {
                        firstLine[r.id] = number
                    }
                    log.records.append(r)
                case .failure(let d): log.diagnostics.append(d)
                }
            } else if line.hasPrefix("SKIP:") {
                let rest = line.dropFirst("SKIP:".count)
                if let colon = rest.firstIndex(of: ":") {
                    let what = trimmed(rest[..<colon]), why = trimmed(rest[rest.index(after: colon)...])
                    if !what.isEmpty && !what.contains(" ") { log.skips.append((what, why)) }
                }
            }
        }
        return log
    }

    /// The visible text of a line: trailing CRs dropped, only what follows the
    /// last CR inside it (a terminal returns to column 0 there), then escape
    /// sequences and control characters before the first printable character
    /// skipped.
    static func visibleLine(_ raw: Substring) -> String {
        var s = raw
        while s.last == "\r" { s = s.dropLast() }
        if let cr = s.lastIndex(of: "\r") { s = s[s.index(after: cr)...] }
        var scalars = s.unicodeScalars[...]
        while let c = scalars.first {
            if c == "\u{1B}" {
                scalars = scalars.dropFirst()
                guard let kind = scalars.first else { break }
                scalars = scalars.dropFirst()
                if kind == "[" {
                    // CSI: parameters and intermediates up to a final byte 0x40-0x7E.
                    while let b = scalars.first {
                        scalars = scalars.dropFirst()
                        if b.value >= 0x40 && b.value <= 0x7E { break }
                    }
                } else if kind == "]" {
                    // OSC: up to BEL or ESC \.
                    while let b = scalars.first, b != "\u{07}", b != "\u{1B}" { scalars = scalars.dropFirst() }
                    scalars = scalars.dropFirst(scalars.first == "\u{1B}" ? 2 : 1)
                }
                // Any other ESC x is a two-character sequence (ESC c, ESC 7, ...).
            } else if c.value < 0x20 || c.value == 0x7F {
                scalars = scalars.dropFirst()
            } else {
                break
            }
        }
        return String(Substring(scalars))
    }

    static func trimmed<S: StringProtocol>(_ s: S) -> String {
        let t = s.drop { $0 == " " || $0 == "\t" }
        var end = t.endIndex
        while end > t.startIndex, t[t.index(before: end)] == " " || t[t.index(before: end)] == "\t" {
            end = t.index(before: end)
        }
        return String(t[..<end])
    }

    /// key=value tokens; `last` takes the rest of the line.
    static func tokens(_ rest: Substring, last: String, kind: String, line: Int)
        -> Result<[(String, String)], BenchDiagnostic> {
        func bad(_ why: String) -> Result<[(String, String)], BenchDiagnostic> {
            .failure(BenchDiagnostic(line: line, "malformed \(kind) line: \(why)"))
        }
        var out: [(String, String)] = []
        var seen = Set<String>()
        var s = rest
        while true {
            s = s.drop { $0 == " " || $0 == "\t" }
            if s.isEmpty { break }
            let word = s.prefix { $0 != " " && $0 != "\t" }
            guard let eq = word.firstIndex(of: "=") else {
                return bad("expected key=value, found '\(word.prefix(40))'")
            }
            let key = String(word[..<eq])
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                return bad("'\(word.prefix(40))' has no key before '='")
            }
            guard !seen.contains(key) else { return bad("key '\(key)' given twice") }
            seen.insert(key)
            let value: String
            if key == last {
                value = trimmed(s[s.index(after: eq)...])
                s = s[s.endIndex...]
            } else {
                value = String(word[word.index(after: eq)...])
                s = s[word.endIndex...]
            }
            guard !value.isEmpty else { return bad("'\(key)=' has no value") }
            out.append((key, value))
        }
        return .success(out)
    }

    static func parseEnv(_ rest: Substring, line: Int) -> Result<BenchEnv, BenchDiagnostic> {
        switch tokens(rest, last: "cpu", kind: "BENCHENV", line: line) {
        case .failure(let d): return .failure(d)
        case .success(let pairs):
            let env = BenchEnv(pairs, line: line)
            guard env.system != nil else {
                return .failure(BenchDiagnostic(line: line, "malformed BENCHENV line: no system="))
            }
            if let smp = env["smp"], (Int(smp) ?? 0) < 1 {
                return .failure(BenchDiagnostic(line: line, "malformed BENCHENV line: smp=\(smp) is not a CPU count"))
            }
            return .success(env)
        }
    }

    static func parseBench(_ rest: Substring, line: Int) -> Result<BenchRecord, BenchDiagnostic> {
        func bad(_ why: String) -> Result<BenchRecord, BenchDiagnostic> {
            .failure(BenchDiagnostic(line: line, "malformed BENCH line: \(why)"))
        }
        let pairs: [(String, String)]
        switch tokens(rest, last: "label", kind: "BENCH", line: line) {
        case .failure(let d): return .failure(d)
        case .success(let p): pairs = p
        }
        var v: [String: String] = [:]
        for (k, value) in pairs { v[k] = value }
        for key in ["id", "unit", "median", "p99", "n", "label"] where v[key] == nil {
            return bad("no \(key)=")
        }
        let id = v["id"]!
        guard id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            return bad("id=\(id) is not a dotted name")
        }
        if let f = v["floor"], !f.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
            return bad("floor=\(f) is not a dotted name")
        }
        guard let median = number(Substring(v["median"]!)) else { return bad("median=\(v["median"]!) is not a number") }
        guard let p99 = number(Substring(v["p99"]!)) else { return bad("p99=\(v["p99"]!) is not a number") }
        let nText = v["n"]!
        guard nText.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(nText) else {
            return bad("n=\(nText) is not a sample count")
        }
        var extra = v
        for key in ["id", "unit", "median", "p99", "n", "floor", "label"] { extra[key] = nil }
        return .success(BenchRecord(id: id, unit: v["unit"]!, median: median, p99: p99, n: n, floor: v["floor"],
                                    label: v["label"]!, extra: extra, line: line))
    }

    /// A decimal number as the kernel prints it: digits, optionally a point and
    /// more digits. No sign, exponent, inf or nan.
    static func number(_ s: Substring) -> Double? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
            return nil
        }
        return Double(s)
    }
}
