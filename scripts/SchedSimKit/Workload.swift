// The schedsim workload format: a small line-oriented text, parsed into the
// simulator's Bsd4SimWorkload plus a name per lwp.
//
//   # a comment; blank lines are ignored; words are separated by spaces or tabs
//   cpus=2 duration=60s                   settings (any line whose first word has '=')
//   hog nice=0                            an lwp that is always runnable
//   hog nice=10 name=batch count=2        two of them, named batch.1 and batch.2
//   interactive run=5ms sleep=45ms        runs 5 ms of CPU, then sleeps 45 ms, forever
//   hog class=idle prio=0 cpuset=1        idle class, allowed on CPU 1 only
//
// Settings: cpus=1..64 (default 1), duration=TIME (1ms..1h, default 60s),
// decay=1..1024 (default 8), sample=TIME (the chart's period, default 100ms; at
// most 1s and a divisor of 1s). Each may be given once.
// lwp options: name=WORD, nice=-20..20 (normal class only), class=normal|realtime|
// idle, prio=0..31 (realtime and idle only), run=TIME and sleep=TIME (interactive
// only, both required, run >= 1ms), cpuset=LIST (e.g. 0,2-3; CPUs below cpus),
// start=TIME (when it is created, default 0), count=1..64.
// TIME is a whole number followed by ms or s: 5ms, 60s.
// Every error names its line: "line 4: unknown option 'nise' (...)".

import QuartetCore

/// A parsed workload: what the simulator runs, and a name for each lwp.
public struct SchedSimWorkload: Equatable {
    public var sim: Bsd4SimWorkload
    public var names: [String]
    /// What each lwp line said about its pattern, for the table ("hog",
    /// "5ms/45ms").
    public var patterns: [String]
}

public struct WorkloadError: Error, Equatable, CustomStringConvertible {
    /// 1-based line number; 0 for the workload as a whole.
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

public enum WorkloadParser {
    static let maxLwps = 256
    static let lwpOptions = "name, nice, class, prio, run, sleep, cpuset, start, count"

    public static func parse(_ text: String) throws -> SchedSimWorkload {
        var sim = Bsd4SimWorkload(cpus: 1, durationMs: 60_000)
        var names: [String] = []
        var patterns: [String] = []
        var seenSettings: [String] = []
        // cpuset checks wait for the final cpus= value: (line, highest CPU named).
        var cpusetChecks: [(line: Int, highest: Int)] = []

        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = i + 1
            func fail(_ m: String) -> WorkloadError { WorkloadError(line: line, message: m) }
            var content = Substring(raw)
            if let hash = content.firstIndex(of: "#") { content = content[..<hash] }
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = words.first else { continue }

            if first.contains("=") {
                for w in words {
                    let (key, value) = try keyValue(w, fail)
                    if seenSettings.contains(key) { throw fail("setting '\(key)' given twice") }
                    seenSettings.append(key)
                    switch key {
                    case "cpus": sim.cpus = try integer(value, key, 1...64, fail)
                    case "duration": sim.durationMs = try time(value, key, 1...3_600_000, fail)
                    case "decay": sim.decay = try integer(value, key, 1...1024, fail)
                    case "sample":
                        let ms = try time(value, key, 1...1000, fail)
                        if 1000 % ms != 0 { throw fail("sample=\(value) does not divide 1s") }
                        sim.sampleMs = ms
                    default:
                        throw fail("unknown setting '\(key)' (known: cpus, duration, decay, sample)")
                    }
                }
                continue
            }

            let kind = String(first)
            guard kind == "hog" || kind == "interactive" else {
                throw fail("unknown word '\(kind)' (expected hog, interactive, or settings such as cpus=2)")
            }
            var spec = Bsd4SimLwpSpec()
            var name: String?
            var nice: Int?, prio: Int?, run: Int?, sleep: Int?
            var count = 1
            var seen: [String] = []
            for w in words.dropFirst() {
                let (key, value) = try keyValue(w, fail)
                if seen.contains(key) { throw fail("option '\(key)' given twice") }
                seen.append(key)
                switch key {
                case "name":
                    guard value.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                        throw fail("name=\(value): use letters, digits, '-', '_' or '.'")
                    }
                    name = value
                case "nice": nice = try integer(value, key, Bsd4.prioMin...Bsd4.prioMax, fail)
                case "prio": prio = try integer(value, key, 0...31, fail)
                case "class":
                    switch value {
                    case "normal": spec.cls = .normal
                    case "realtime": spec.cls = .realtime
                    case "idle": spec.cls = .idle
                    default: throw fail("class=\(value): expected normal, realtime or idle")
                    }
                case "run": run = try time(value, key, 1...3_600_000, fail)
                case "sleep": sleep = try time(value, key, 0...3_600_000, fail)
                case "cpuset":
                    let bits = try cpuset(value, fail)
                    spec.cpuMaskBits = bits
                    cpusetChecks.append((line, 63 - bits.leadingZeroBitCount))
                case "start": spec.startMs = try time(value, key, 0...3_600_000, fail)
                case "count": count = try integer(value, key, 1...64, fail)
                default: throw fail("unknown option '\(key)' (known: \(lwpOptions))")
                }
            }
            if spec.cls == .normal {
                if prio != nil { throw fail("prio= is for class=realtime or class=idle; the normal class uses nice=") }
                spec.niceOrRtprio = nice ?? 0
            } else {
                if nice != nil { throw fail("nice= is for the normal class; class=\(spec.cls == .idle ? "idle" : "realtime") uses prio=") }
                spec.niceOrRtprio = prio ?? 0
            }
            let pattern: String
            if kind == "interactive" {
                guard let r = run, let s = sleep else { throw fail("interactive needs run=TIME and sleep=TIME") }
                spec.pattern = .periodic(runMs: r, sleepMs: s)
                pattern = "\(r)ms/\(s)ms"
            } else {
                if run != nil || sleep != nil { throw fail("run= and sleep= are for interactive lwps; a hog never sleeps") }
                pattern = "hog"
            }
            if sim.lwps.count + count > maxLwps { throw fail("more than \(maxLwps) lwps") }
            for k in 1...count {
                if let name {
                    names.append(count > 1 ? "\(name).\(k)" : name)
                } else {
                    names.append("\(kind)\(sim.lwps.count + 1)")
                }
                patterns.append(pattern)
                sim.lwps.append(spec)
            }
        }
        if sim.lwps.isEmpty { throw WorkloadError(line: 0, message: "the workload has no lwps (add a line such as 'hog nice=0')") }
        for check in cpusetChecks where check.highest >= sim.cpus {
            throw WorkloadError(line: check.line, message: "cpuset names CPU \(check.highest), but cpus=\(sim.cpus)")
        }
        for (i, name) in names.enumerated() where names[..<i].contains(name) {
            throw WorkloadError(line: 0, message: "two lwps are named '\(name)'")
        }
        return SchedSimWorkload(sim: sim, names: names, patterns: patterns)
    }

    private static func keyValue(_ w: Substring, _ fail: (String) -> WorkloadError) throws -> (String, String) {
        guard let eq = w.firstIndex(of: "="), eq != w.startIndex else {
            throw fail("expected key=value, found '\(w)'")
        }
        let value = w[w.index(after: eq)...]
        if value.isEmpty { throw fail("'\(w)' has no value") }
        return (String(w[..<eq]), String(value))
    }

    private static func integer(_ s: String, _ key: String, _ range: ClosedRange<Int>,
                                _ fail: (String) -> WorkloadError) throws -> Int {
        guard let v = Int(s) else { throw fail("\(key)=\(s) is not a whole number") }
        guard range.contains(v) else { throw fail("\(key)=\(s) is outside \(range.lowerBound)..\(range.upperBound)") }
        return v
    }

    /// "5ms" or "60s" in milliseconds.
    private static func time(_ s: String, _ key: String, _ range: ClosedRange<Int>,
                             _ fail: (String) -> WorkloadError) throws -> Int {
        let ms: Int?
        if s.hasSuffix("ms") {
            ms = Int(s.dropLast(2))
        } else if s.hasSuffix("s"), let v = Int(s.dropLast()), v <= Int.max / 1000 {
            ms = v * 1000
        } else {
            ms = nil
        }
        guard let v = ms, v >= 0 else { throw fail("\(key)=\(s): expected a time such as 5ms or 60s") }
        guard range.contains(v) else {
            throw fail("\(key)=\(s) is outside \(range.lowerBound)ms..\(range.upperBound)ms")
        }
        return v
    }

    /// "0,2-3" as a CPU mask word (bit c = CPU c).
    private static func cpuset(_ s: String, _ fail: (String) -> WorkloadError) throws -> UInt64 {
        var mask: UInt64 = 0
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let lo = Int(ends[0]), let hi = Int(ends[ends.count - 1]),
                  lo >= 0, lo <= hi, hi < 64 else {
                throw fail("cpuset=\(s): expected CPU numbers and ranges such as 0,2-3")
            }
            for c in lo...hi { mask |= 1 << UInt64(c) }
        }
        return mask
    }
}
