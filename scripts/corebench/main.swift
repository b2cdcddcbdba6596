// corebench: the bsd4 run queues (Kernel/Core/Bsd4, the very files the kernel
// runs) timed on the host against a naive baseline, a sorted array, with 10,
// 100, 1,000 and 10,000 queued lwps (docs/benchmarks.md).
//
//   swift run -c release corebench [--ms N] [--bench-lines]
//
// Kernel/Core is compiled into this program (Core is a symlink to it), one
// whole module with the benchmark as in the kernel, so the generic queues are
// specialised for these nodes exactly as they are for the kernel's Lwp.
//
// The workload is Suites/Bsd4Bench's: lwps of the normal class with random nice
// (-20...20) and estcpu (0...ESTCPUMAX); a step selects the best lwp, draws a
// new estcpu for it (it ran) and queues it again, so `count` stay queued.
//   bsd4   select = chooseproc on CPU 0 (bit scan, dequeue)
//          insert = Bsd4Priority.compute + reposition + insert (setrunqueue's
//                   queue work; its CPU choice and the spinlock are not timed)
//   array  entries (queue key, lwp) sorted worst first, so that the best is last:
//          select = removeLast (O(1); with --remove-first the array is kept best
//          first and select = removeFirst, an O(n) shift each time)
//          insert = the same Bsd4Priority.compute + binary search + Array.insert
// The array orders by `priority & ~PPQMASK`, bsd4's queue, FIFO inside a queue,
// so both take the same lwp at every step: checked before timing, over the same
// random stream, or corebench fails.
//
// Honesty: both run the same stream (same seed, same draws, drawn outside the
// timed code); a warm-up precedes the timing; the two alternate in rounds
// (order swapped each round) so drift hits both; every selected lwp feeds the
// next insert and a checksum that is printed, and the final queues are checked,
// so nothing can be optimised away. Timing: batches of B consecutive selects,
// then B inserts of the lwps taken (B = 100, or count / 10 when smaller so that
// the queue holds between count - B and count lwps; but 5 at 10 lwps: a batch
// of one operation would leave the result to the clock-read correction), each
// batch timed with CLOCK_MONOTONIC less one clock read (its mean, measured
// first); a sample is 100 operations (100 / B batches), so that the clock's
// cost and its coarse ticks average out. Medians and p99 (nearest rank) of the
// samples, in ns. Not timed: setrunqueue's CPU choice and the spinlock, which
// the kernel's bsd4.setrunq includes; the links' reference counting is timed
// (the kernel's Lwp pays it too).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import BenchKit

// MARK: - Command line

let usage = """
usage: corebench [--ms N] [--remove-first] [--bench-lines]
  --ms N          timing per structure and size, in ms (default 300), after a warm-up of a quarter of it
  --remove-first  the array sorted best first, select = removeFirst (O(n) shift); default: worst
                  first, select = removeLast (O(1)), the stronger baseline
  --bench-lines   also print BENCHENV/BENCH lines (docs/benchmarks.md) for benchreport
"""
var budgetMs = 300
var benchLines = false
var removeFirst = false
do {
    var args = Array(CommandLine.arguments.dropFirst())
    while let a = args.first {
        args.removeFirst()
        switch a {
        case "--ms":
            guard let v = args.first.flatMap({ Int($0) }), v >= 1, v <= 600_000 else {
                FileHandle.standardError.write(Data("corebench: --ms wants a number of milliseconds, 1 to 600000\n\(usage)\n".utf8))
                exit(2)
            }
            args.removeFirst()
            budgetMs = v
        case "--bench-lines": benchLines = true
        case "--remove-first": removeFirst = true
        case "-h", "--help": print(usage); exit(0)
        default:
            FileHandle.standardError.write(Data("corebench: unknown argument \(a)\n\(usage)\n".utf8))
            exit(2)
        }
    }
}

// MARK: - Clock and statistics

@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

struct Stats {
    var median: Double
    var p99: Double
    var n: Int
    /// The upper middle sample (as the kernel's BenchSamples) and the
    /// nearest-rank 99th percentile.
    init(_ values: [Double]) {
        let s = values.sorted()
        n = s.count
        median = s.isEmpty ? 0 : s[s.count / 2]
        p99 = s.isEmpty ? 0 : s[max(0, min(s.count - 1, (s.count * 99 + 99) / 100 - 1))]
    }
}

/// The mean cost of one clock read (two back-to-back reads; the slowest 1 %,
/// interrupted ones, left out). A mean, not a median: it is taken off sums of
/// intervals, and the clock ticks in steps of several ns on some machines.
func clockOverhead() -> Double {
    var v: [UInt64] = []
    v.reserveCapacity(200_000)
    for _ in 0..<200_000 { let a = nowNs(); v.append(nowNs() &- a) }
    v.sort()
    let kept = v.prefix(v.count * 99 / 100)
    return Double(kept.reduce(0, +)) / Double(kept.count)
}

// MARK: - The workload

/// xorshift64, as the kernel's benchmarks draw.
struct Stream {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func below(_ n: Int) -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int(state % UInt64(n))
    }
}

/// The lwps' fixed part and initial estcpu, from the seed of Bsd4Bench.
struct Population {
    var nice: [Int] = []
    var estcpu: [Int] = []
    var stream: Stream
    init(count: Int) {
        stream = Stream(seed: UInt64(count) &* 7919 &+ 1)
        for _ in 0..<count {
            nice.append(stream.below(41) - 20)
            estcpu.append(stream.below(Bsd4.estcpuMax + 1))
        }
    }
}

/// What both structures offer the timing loop.
protocol BenchQueue {
    associatedtype Taken
    init(_ p: Population)
    mutating func select() -> Taken
    mutating func insert(_ t: Taken, estcpu: Int)
    func id(_ t: Taken) -> Int
    /// Queued lwps, recounted (the end-of-run check).
    func recount() -> Int
}

/// A bsd4 lwp as the queues see it: no thread, so lastCPU = -1 as in Bsd4Bench
/// (chooseproc's affinity nudge never applies).
final class BenchLwp: Bsd4Node {
    var rqNext: BenchLwp? = nil
    var rqPrev: BenchLwp? = nil
    var rqLevel = -1
    var onRunQ = false
    var rqType: Bsd4Class
    var rqIndex: Int
    var priority: Int
    let cpuMask = CPUMask(bits: 0xF)
    var lastCPU: Int { -1 }
    let id: Int
    let nice: Int
    init(id: Int, nice: Int, estcpu: Int) {
        self.id = id
        self.nice = nice
        let p = Bsd4Priority.compute(.normal, niceOrRtprio: nice, estcpu: estcpu, batch: 0)
        priority = p.priority
        rqIndex = p.rqIndex
        rqType = p.rqType
    }
}

struct Bsd4Side: BenchQueue {
    var queues = Bsd4RunQueues<BenchLwp>()
    let lwps: [BenchLwp]
    init(_ p: Population) {
        lwps = p.nice.indices.map { BenchLwp(id: $0, nice: p.nice[$0], estcpu: p.estcpu[$0]) }
        for lp in lwps { queues.insert(lp) }
    }
    @inline(__always) mutating func select() -> BenchLwp {
        guard let lp = queues.chooseproc(cpu: 0, current: nil).lwp else { fatalError("corebench: bsd4 queues empty") }
        return lp
    }
    @inline(__always) mutating func insert(_ lp: BenchLwp, estcpu: Int) {
        _ = queues.reposition(lp, to: Bsd4Priority.compute(lp.rqType, niceOrRtprio: lp.nice, estcpu: estcpu, batch: 0))
        queues.insert(lp)
    }
    func id(_ lp: BenchLwp) -> Int { lp.id }
    func recount() -> Int {
        if let v = queues.checkA2() { fatalError("corebench: \(v.description)") }
        return queues.runqcount
    }
}

/// The sorted array's two orders, a type parameter rather than a stored flag so
/// that each is compiled on its own, with no test of the order in the timed loop.
/// BestLast (the default): sorted worst (largest key) first, select =
/// removeLast. BestFirst (--remove-first): best first, select = removeFirst
/// (every select shifts the whole array down by one).
protocol ArrayOrder { static var bestLast: Bool { get } }
enum BestLast: ArrayOrder { static var bestLast: Bool { true } }
enum BestFirst: ArrayOrder { static var bestLast: Bool { false } }

struct ArraySide<Order: ArrayOrder>: BenchQueue {
    struct Entry { var key: Int32; var lwp: Int32 }
    /// Sorted by key in `Order`.
    var entries: [Entry] = []
    let nice: [Int]
    var priority: [Int]
    init(_ p: Population) {
        nice = p.nice
        priority = Array(repeating: 0, count: p.nice.count)
        entries.reserveCapacity(p.nice.count + 1)
        for i in p.nice.indices { insert(Int32(i), estcpu: p.estcpu[i]) }
    }
    @inline(__always) mutating func select() -> Int32 {
        Order.bestLast ? entries.removeLast().lwp : entries.removeFirst().lwp
    }
    @inline(__always) mutating func insert(_ lwp: Int32, estcpu: Int) {
        let p = Bsd4Priority.compute(.normal, niceOrRtprio: nice[Int(lwp)], estcpu: estcpu, batch: 0)
        priority[Int(lwp)] = p.priority
        let key = Int32(Bsd4.queueOf(p.priority))
        // FIFO inside a queue. Best last: before the first entry not worse than
        // the new one, so before every entry of its own queue (they are older,
        // and taken first from the end). Best first: after every entry not
        // worse than the new one.
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Order.bestLast ? entries[mid].key > key : entries[mid].key <= key { lo = mid + 1 } else { hi = mid }
        }
        entries.insert(Entry(key: key, lwp: lwp), at: lo)
    }
    func id(_ t: Int32) -> Int { Int(t) }
    func recount() -> Int {
        for i in entries.indices.dropFirst() {
            let before = entries[i - 1].key, after = entries[i].key
            if Order.bestLast ? before < after : before > after {
                fatalError("corebench: the sorted array is not sorted at \(i)")
            }
        }
        return entries.count
    }
}

// MARK: - Timing

/// One structure at one size: its queue, its own copy of the random stream,
/// and the samples so far. A struct kept in a local variable: no dynamic
/// exclusivity check around the queue in the timed loop.
struct Run<Q: BenchQueue> {
    var queue: Q
    var stream: Stream
    let batch: Int
    var taken: [Q.Taken] = []
    var draws: [Int]
    var selects: [Double] = []
    var inserts: [Double] = []
    var checksum = 0

    init(_ p: Population, batch: Int) {
        queue = Q(p)
        stream = p.stream
        self.batch = batch
        draws = Array(repeating: 0, count: batch)
        taken.reserveCapacity(batch)
    }

    /// Samples for `ms` (or `maxSamples`); recorded when `record`. A sample is
    /// `rounds` batches, 100 operations of each kind in all; each batch's
    /// interval loses one mean clock read.
    mutating func run(ms: Int, overhead: Double, record: Bool, maxSamples: Int) {
        let end = nowNs() &+ UInt64(ms) &* 1_000_000
        let rounds = (100 + batch - 1) / batch
        var done = 0
        while done < maxSamples {
            var sel: UInt64 = 0, ins: UInt64 = 0, t2: UInt64 = 0
            for _ in 0..<rounds {
                for k in 0..<batch { draws[k] = stream.below(Bsd4.estcpuMax + 1) }
                taken.removeAll(keepingCapacity: true)
                let t0 = nowNs()
                for _ in 0..<batch { taken.append(queue.select()) }
                let t1 = nowNs()
                for k in 0..<batch { queue.insert(taken[k], estcpu: draws[k]) }
                t2 = nowNs()
                sel &+= t1 &- t0
                ins &+= t2 &- t1
                for t in taken { checksum = checksum &* 31 &+ queue.id(t) }
            }
            if record {
                let ops = Double(rounds * batch), clock = Double(rounds) * overhead
                selects.append(max(0, Double(sel) - clock) / ops)
                inserts.append(max(0, Double(ins) - clock) / ops)
            }
            done += 1
            if t2 >= end { break }
        }
    }
}

/// Both structures take the same lwp at each of `steps` steps of one stream.
func sameChoices<A: BenchQueue>(_ p: Population, steps: Int, _: A.Type) -> Bool {
    var a = Bsd4Side(p), b = A(p)
    var s = p.stream
    for _ in 0..<steps {
        let x = a.select(), y = b.select()
        if x.id != b.id(y) { return false }
        let e = s.below(Bsd4.estcpuMax + 1)
        a.insert(x, estcpu: e)
        b.insert(y, estcpu: e)
    }
    return a.recount() == b.recount()
}

// MARK: - Main

let sizes = [10, 100, 1_000, 10_000]
let rounds = 5
let overhead = clockOverhead()
var totalChecksum = 0
struct Row { var n: Int; var batch: Int; var bsd4: (Stats, Stats); var array: (Stats, Stats) }
var results: [Row] = []

/// One size: the check that both structures choose alike, then the timing.
func measure<A: BenchQueue>(_ n: Int, _ arrayType: A.Type) -> Row {
    let population = Population(count: n)
    guard sameChoices(population, steps: max(10_000, 4 * n), A.self) else {
        FileHandle.standardError.write(Data("corebench: with \(n) lwps the bsd4 queues and the sorted array chose differently: the comparison would not be fair\n".utf8))
        exit(1)
    }
    let batch = max(min(100, n / 10), min(5, n / 2), 1)
    var bsd4 = Run<Bsd4Side>(population, batch: batch)
    var array = Run<A>(population, batch: batch)
    let warm = max(10, budgetMs / 4)
    bsd4.run(ms: warm, overhead: overhead, record: false, maxSamples: .max)
    array.run(ms: warm, overhead: overhead, record: false, maxSamples: .max)
    let slice = max(1, budgetMs / rounds), cap = 100_000 / rounds
    for r in 0..<rounds {
        if r % 2 == 0 {
            bsd4.run(ms: slice, overhead: overhead, record: true, maxSamples: cap)
            array.run(ms: slice, overhead: overhead, record: true, maxSamples: cap)
        } else {
            array.run(ms: slice, overhead: overhead, record: true, maxSamples: cap)
            bsd4.run(ms: slice, overhead: overhead, record: true, maxSamples: cap)
        }
    }
    guard bsd4.queue.recount() == n, array.queue.recount() == n else {
        FileHandle.standardError.write(Data("corebench: a structure lost lwps with \(n) queued\n".utf8))
        exit(1)
    }
    totalChecksum = totalChecksum &* 1_000_003 &+ bsd4.checksum &+ array.checksum
    return Row(n: n, batch: batch, bsd4: (Stats(bsd4.selects), Stats(bsd4.inserts)),
               array: (Stats(array.selects), Stats(array.inserts)))
}

for n in sizes {
    results.append(removeFirst ? measure(n, ArraySide<BestFirst>.self) : measure(n, ArraySide<BestLast>.self))
}

func ns(_ v: Double) -> String { BenchFormat.fixed(v, 1) }

func hostCPU() -> String {
    let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) }
    return model ?? "unknown"
}
let cpus = ProcessInfo.processInfo.activeProcessorCount

var table = TextTable(["queued", "operation", "batch", "bsd4 median", "bsd4 p99", "array median", "array p99",
                       "array / bsd4", "samples"], right: [0, 2, 3, 4, 5, 6, 7, 8])
for r in results {
    for (op, b, a) in [("select", r.bsd4.0, r.array.0), ("insert", r.bsd4.1, r.array.1)] {
        table.add([BenchFormat.number(Double(r.n)), op, String(r.batch), ns(b.median), ns(b.p99), ns(a.median), ns(a.p99),
                   b.median > 0 ? BenchFormat.ratio(a.median / b.median) : "-", "\(b.n) / \(a.n)"])
    }
}
print("corebench: bsd4 run queues (Kernel/Core/Bsd4) against a sorted array, ns per operation")
print("host: \(hostCPU()), \(cpus) CPU\(cpus == 1 ? "" : "s"); \(budgetMs) ms per structure and size in \(rounds) alternating rounds, "
      + "after a \(max(10, budgetMs / 4)) ms warm-up")
print("a sample: 100 operations in batches of B consecutive selects or inserts, each batch timed, minus one clock read "
      + "(\(BenchFormat.fixed(overhead, 1)) ns on average); the queue holds count - B to count lwps")
print("")
print(table.plain, terminator: "")
print("")
print("select: bsd4 chooseproc (bit scan + dequeue) | array " + (removeFirst ? "removeFirst (sorted best first)" : "removeLast (sorted worst first)"))
print("insert: new priority from a random estcpu + bsd4 reposition and insert | the same priority + binary search + Array.insert")
print("array / bsd4 above 1: the bsd4 queues are faster. Both took the same lwp at every step of a check run of the same stream.")
print("checksum \(String(UInt(bitPattern: totalChecksum), radix: 16))")

if benchLines {
    let kernel = ProcessInfo.processInfo.operatingSystemVersionString.replacingOccurrences(of: " ", with: "_")
    print("BENCHENV: system=corebench host_cpus=\(cpus) clock_ns=\(BenchFormat.fixed(overhead, 1)) os=\(kernel) cpu=\(hostCPU())")
    func line(_ id: String, _ s: Stats, floor: String, _ label: String) {
        print("BENCH: id=\(id) unit=ns median=\(ns(s.median)) p99=\(ns(s.p99)) n=\(s.n) floor=\(floor) label=\(label)")
    }
    for r in results {
        let n = r.n, count = BenchFormat.number(Double(n))
        line("corebench.bsd4.select.\(n)", r.bsd4.0, floor: "corebench.bsd4.select.10", "host: bsd4 select (chooseproc), \(count) queued")
        line("corebench.bsd4.setrunq.\(n)", r.bsd4.1, floor: "corebench.bsd4.setrunq.10",
             "host: bsd4 new priority + insert, \(count) queued")
        line("corebench.array.select.\(n)", r.array.0, floor: "corebench.bsd4.select.\(n)",
             "host: sorted array \(removeFirst ? "removeFirst" : "removeLast"), \(count) queued (ratio: array / bsd4)")
        line("corebench.array.insert.\(n)", r.array.1, floor: "corebench.bsd4.setrunq.\(n)",
             "host: sorted array new priority + binary search + insert, \(count) queued (ratio: array / bsd4)")
    }
}
