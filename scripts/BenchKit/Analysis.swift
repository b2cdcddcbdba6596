// What benchreport computes from the parsed lines: each measurement's ratio to
// its floor, the Quartet/Linux pairs of docs/benchmarks.md, and how boot time
// grows with the CPU count in the scale runs. Pure functions of BenchLog values.

import Foundation

// MARK: - Ratio to the floor

/// A measurement's ratio to its floor (median / floor's median).
public enum FloorRatio: Equatable, Sendable {
    /// The measurement has no floor.
    case none
    case value(Double, floor: String)
    /// The floor's id is not in this log.
    case missing(floor: String)
    /// The floor is there but cannot divide: another unit, or a zero median.
    case unusable(floor: String, reason: String)

    public var value: Double? {
        if case .value(let v, _) = self { return v }
        return nil
    }

    public var floorID: String? {
        switch self {
        case .none: return nil
        case .value(_, let f), .missing(let f), .unusable(let f, _): return f
        }
    }
}

extension BenchLog {
    /// `r`'s median over its floor's median in this log.
    public func ratio(_ r: BenchRecord) -> FloorRatio {
        guard let floorID = r.floor else { return .none }
        guard let f = record(floorID) else { return .missing(floor: floorID) }
        guard f.unit == r.unit else { return .unusable(floor: floorID, reason: "its unit is \(f.unit)") }
        guard f.median > 0 else { return .unusable(floor: floorID, reason: "its median is 0") }
        return .value(r.median / f.median, floor: floorID)
    }
}

// MARK: - Quartet against Linux

/// A row of the comparison: a Quartet id and the Linux id that measures the
/// same thing (docs/benchmarks.md, "Linux counterpart").
public struct BenchPair: Equatable, Sendable {
    /// nil: Quartet cannot measure it; `quartetAbsence` says why.
    public var quartet: String?
    public var linux: String?
    /// What each side does.
    public var note: String
    public var quartetAbsence: String?

    public init(quartet: String?, linux: String?, note: String, quartetAbsence: String? = nil) {
        self.quartet = quartet
        self.linux = linux
        self.note = note
        self.quartetAbsence = quartetAbsence
    }

    /// The ids, "a" or "a / b" when they differ.
    public var name: String {
        switch (quartet, linux) {
        case let (q?, l?): return q == l ? q : "\(q) / \(l)"
        case let (q?, nil): return q
        case let (nil, l?): return l
        case (nil, nil): return "-"
        }
    }

    /// The table of docs/benchmarks.md.
    public static let all: [BenchPair] = [
        BenchPair(quartet: "spin.uncontended", linux: "spin.uncontended",
                  note: "SpinLock lock+unlock vs a pthread spinlock pair"),
        BenchPair(quartet: "switch.yield", linux: "switch.yield",
                  note: "yield between two threads vs futex ping-pong pinned to one CPU, per switch"),
        BenchPair(quartet: "wakeup.roundtrip", linux: "wakeup.roundtrip",
                  note: "wake a thread on another CPU and be woken back (Linux: futex)"),
        BenchPair(quartet: "mem.pingpong", linux: "mem.pingpong",
                  note: "spin ping-pong on a shared line, the same loop on both: the hardware floor"),
        BenchPair(quartet: "rendezvous.all", linux: "membarrier.all",
                  note: "rendezvous on all CPUs vs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)"),
        BenchPair(quartet: "cpusync.all", linux: "membarrier.all",
                  note: "cpusync on all CPUs vs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)"),
        BenchPair(quartet: "heap.alloc64", linux: "heap.alloc64",
                  note: "64-byte allocate + free: kernel heap vs glibc malloc + free"),
        BenchPair(quartet: nil, linux: "syscall.roundtrip",
                  note: "Linux: getppid", quartetAbsence: "no user mode yet"),
    ]
}

public struct CompareRow: Equatable, Sendable {
    public var pair: BenchPair
    public var quartet: BenchRecord?
    public var linux: BenchRecord?
    /// Quartet median / Linux median, when both exist in the same unit.
    public var ratio: Double?
    /// The pair's note, and why a side or the ratio is missing.
    public var note: String
}

public enum BenchCompare {
    public static func rows(quartet: BenchLog, linux: BenchLog, pairs: [BenchPair] = BenchPair.all) -> [CompareRow] {
        pairs.map { pair in
            let q = pair.quartet.flatMap { quartet.record($0) }
            let l = pair.linux.flatMap { linux.record($0) }
            var notes = [pair.note]
            if q == nil {
                notes.append("Quartet: " + (pair.quartetAbsence
                    ?? pair.quartet.map { absence($0, in: quartet, side: "Quartet") } ?? "not measured"))
            }
            if l == nil {
                notes.append("Linux: " + (pair.linux.map { absence($0, in: linux, side: "Linux") } ?? "not measured"))
            }
            var ratio: Double?
            if let q, let l {
                if q.unit != l.unit {
                    notes.append("no ratio: units differ (\(q.unit), \(l.unit))")
                } else if l.median > 0 {
                    ratio = q.median / l.median
                } else {
                    notes.append("no ratio: the Linux median is 0")
                }
            }
            return CompareRow(pair: pair, quartet: q, linux: l, ratio: ratio, note: notes.joined(separator: "; "))
        }
    }

    /// Why `id` is not in a log: its own SKIP line, or the whole run missing
    /// (`runProblem` says why, once, under the table), or plainly absent.
    static func absence(_ id: String, in log: BenchLog, side: String) -> String {
        if let why = log.skipReason(id) { return "skipped (\(why))" }
        if runProblem(log, side: side) != nil { return "no results (below)" }
        return "not in the \(side) log"
    }

    /// Why a log has no results at all, or nil when it has some: the skip of
    /// the whole run, the problem with the file, or no BENCH line.
    public static func runProblem(_ log: BenchLog, side: String) -> String? {
        guard log.records.isEmpty else { return nil }
        if let s = log.skips.first { return "\(side) did not run: \(s.what): \(s.reason)" }
        if let d = log.diagnostics.first(where: { $0.line == 0 }) { return "\(side): \(d.message)" }
        return "\(side): no BENCH lines in its log"
    }
}

// MARK: - Scale runs

public struct ScalePoint: Equatable, Sendable {
    public var cpus: Int
    /// boot.online, µs.
    public var bootUs: Double?
    /// ipiq.alltoall, messages per second (none at 1 CPU).
    public var alltoall: Double?
    public var source: String

    public init(cpus: Int, bootUs: Double?, alltoall: Double?, source: String = "") {
        self.cpus = cpus
        self.bootUs = bootUs
        self.alltoall = alltoall
        self.source = source
    }

    /// The point of one scale log, or nil when its BENCHENV has no smp=.
    public static func from(_ log: BenchLog, source: String = "") -> ScalePoint? {
        guard let cpus = log.env?.smp else { return nil }
        return ScalePoint(cpus: cpus, bootUs: log.record("boot.online")?.median,
                          alltoall: log.record("ipiq.alltoall")?.median, source: source)
    }
}

public enum ScaleVerdict: Equatable, Sendable {
    /// Time grew by less than 0.9 times what the CPU count grew by.
    case subLinear
    /// Within 10 % of the CPU count's growth.
    case linear
    case superLinear
    /// Not enough data; why.
    case unknown(String)
}

public struct ScaleAnalysis: Equatable, Sendable {
    /// Sorted by CPU count (in input order for equal counts).
    public var points: [ScalePoint]

    public init(_ points: [ScalePoint]) {
        self.points = points.enumerated()
            .sorted { ($0.element.cpus, $0.offset) < ($1.element.cpus, $1.offset) }
            .map { $0.element }
    }

    /// Where growth is measured from: the fewest CPUs with a boot time above 0.
    public var base: ScalePoint? { points.first { ($0.bootUs ?? 0) > 0 } }
    /// The most CPUs with a boot time above 0.
    public var top: ScalePoint? { points.last { ($0.bootUs ?? 0) > 0 } }

    /// boot time relative to `base`.
    public func growth(_ p: ScalePoint) -> Double? {
        guard let b = base?.bootUs, let t = p.bootUs else { return nil }
        return t / b
    }

    /// time(top) / time(base).
    public var timeGrowth: Double? { top.flatMap { growth($0) } }
    /// cpus(top) / cpus(base).
    public var cpuGrowth: Double? {
        guard let b = base, let t = top, t.cpus > b.cpus else { return nil }
        return Double(t.cpus) / Double(b.cpus)
    }
    /// timeGrowth / cpuGrowth: below 1, time grows slower than the CPU count.
    public var growthRatio: Double? {
        guard let g = timeGrowth, let c = cpuGrowth else { return nil }
        return g / c
    }
    /// e in time ~ cpus^e between base and top (1 = linear).
    public var exponent: Double? {
        guard let g = timeGrowth, let c = cpuGrowth else { return nil }
        return log(g) / log(c)
    }

    public var verdict: ScaleVerdict {
        guard let b = base, let t = top else { return .unknown("no boot.online figure above 0") }
        guard t.cpus > b.cpus, let r = growthRatio else {
            return .unknown("boot.online is known at one CPU count only (\(b.cpus))")
        }
        if r < 0.9 { return .subLinear }
        if r <= 1.1 { return .linear }
        return .superLinear
    }

    /// The sentence under the table.
    public var summary: String {
        let words: String
        switch verdict {
        case .unknown(let why): return "boot time growth: cannot judge: \(why)"
        case .subLinear: words = "sub-linearly"
        case .linear: words = "linearly, not sub-linearly"
        case .superLinear: words = "faster than linearly"
        }
        let b = base!, t = top!
        return "boot.online grows \(words): \(t.cpus) CPUs take \(BenchFormat.ratio(timeGrowth)) the time of "
            + "\(b.cpus) CPU\(b.cpus == 1 ? "" : "s"), for \(BenchFormat.number(cpuGrowth!))x the CPUs "
            + "(time growth / CPU growth = \(BenchFormat.fixed(growthRatio!, 3)); "
            + "time ~ CPUs^\(BenchFormat.fixed(exponent!, 2)), 1 being linear)"
    }
}
