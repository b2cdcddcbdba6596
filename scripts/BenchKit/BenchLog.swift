import Foundation

// The BENCH/BENCHENV lines of one boot's serial log (docs/benchmarks.md):
//   BENCHENV: system=quartet smp=4 tsc_mhz=2419 hypervisor=TCG cpu=<rest of line>
//   BENCH: id=ipiq.roundtrip unit=cycles median=.. p99=.. n=.. floor=.. label=<rest of line>
// Tokens are key=value separated by single spaces; the last key (`cpu`,
// `label`) takes the rest of the line. Other lines are ignored; a malformed
// BENCH line is reported with its line number, and the rest is still used.

public struct BenchRecord: Equatable {
    public var id: String
    public var unit: String
    public var median: Double
    public var p99: Double
    public var n: Int
    public var floor: String?
    public var label: String
}

public struct BenchParseError: Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

public struct BenchLog: Equatable {
    public var env: [String: String] = [:]
    public var records: [BenchRecord] = []
    /// SKIP lines (e.g. a measurement the system cannot make).
    public var skips: [String] = []
    public var errors: [BenchParseError] = []

    public init() {}

    public func record(_ id: String) -> BenchRecord? { records.first { $0.id == id } }
    public var system: String { env["system"] ?? "?" }
    public var smp: Int? { env["smp"].flatMap { Int($0) } }

    /// median / the floor's median, when the record names a floor present here.
    public func ratioToFloor(_ r: BenchRecord) -> Double? {
        guard let f = r.floor, let base = record(f), base.median > 0 else { return nil }
        return r.median / base.median
    }

    public static func parse(_ text: String) -> BenchLog {
        var log = BenchLog()
        // "\r\n" is one Character in Swift: split on any newline Character.
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            var line = String(raw)
            while line.hasSuffix("\r") { line.removeLast() }
            if line.hasPrefix("BENCHENV: ") {
                for (k, v) in tokens(String(line.dropFirst(10)), restKey: "cpu") { log.env[k] = v }
            } else if line.hasPrefix("BENCH: ") {
                switch record(String(line.dropFirst(7))) {
                case .success(let r): log.records.append(r)
                case .failure(let e): log.errors.append(BenchParseError(line: i + 1, reason: e.reason))
                }
            } else if line.hasPrefix("SKIP: ") {
                log.skips.append(String(line.dropFirst(6)))
            }
        }
        return log
    }

    struct Failure: Error { var reason: String }

    static func record(_ body: String) -> Result<BenchRecord, Failure> {
        let t = Dictionary(tokens(body, restKey: "label"), uniquingKeysWith: { _, last in last })
        for key in ["id", "unit", "median", "p99", "n", "label"] where t[key] == nil {
            return .failure(Failure(reason: "BENCH line without \(key)="))
        }
        guard let median = Double(t["median"]!), let p99 = Double(t["p99"]!), let n = Int(t["n"]!) else {
            return .failure(Failure(reason: "BENCH line with a non-numeric median, p99 or n"))
        }
        return .success(BenchRecord(id: t["id"]!, unit: t["unit"]!, median: median, p99: p99, n: n,
                                    floor: t["floor"], label: t["label"]!))
    }

    /// key=value tokens; `restKey` takes the rest of the line.
    static func tokens(_ s: String, restKey: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var rest = Substring(s)
        while !rest.isEmpty {
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = String(rest[..<eq]).trimmingCharacters(in: .whitespaces)
            let after = rest[rest.index(after: eq)...]
            if key == restKey { out.append((key, String(after))); break }
            let end = after.firstIndex(of: " ") ?? after.endIndex
            out.append((key, String(after[..<end])))
            rest = end == after.endIndex ? "" : after[after.index(after: end)...]
        }
        return out
    }
}
