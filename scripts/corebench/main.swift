import Foundation
import QuartetCore

// corebench (`swift run -c release corebench [--ms N] [--bench-lines]`): the bsd4
// run queues (Kernel/Core/Bsd4, the same files the kernel runs) timed on the
// host against a naive baseline, a sorted array of priorities (insert by binary
// search + Array.insert, select = removeFirst), with 10 to 10,000 queued items.
// Same workload for both: select the best, give it a new random priority,
// insert it again. Each sample is a batch of 100 steps; results feed a
// checksum that is printed, so nothing is optimised away.

var ms = 300
var benchLines = false
var args = Array(CommandLine.arguments.dropFirst())
while let a = args.first {
    args.removeFirst()
    switch a {
    case "--ms": ms = args.first.flatMap { Int($0) } ?? ms; if !args.isEmpty { args.removeFirst() }
    case "--bench-lines": benchLines = true
    default:
        FileHandle.standardError.write("usage: corebench [--ms N] [--bench-lines]\n".data(using: .utf8)!)
        exit(2)
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

struct Stats { var median: Double; var p99: Double; var n: Int }
func stats(_ v: [Double]) -> Stats {
    let s = v.sorted()
    return Stats(median: s[s.count / 2], p99: s[min(s.count - 1, (s.count * 99 + 99) / 100 - 1)], n: s.count)
}

/// Batches of 100 (select, insert) steps for `ms`; returns ns per select and per insert.
func measure(_ select: () -> Int, _ insert: () -> Void, checksum: inout Int) -> (Stats, Stats) {
    var sel: [Double] = [], ins: [Double] = []
    for _ in 0..<50 { checksum &+= select(); insert() }                    // warm-up
    let end = now() + UInt64(ms) * 1_000_000
    while now() < end {
        var a: UInt64 = 0, b: UInt64 = 0
        for _ in 0..<100 {
            let t0 = now(); checksum &+= select(); let t1 = now(); insert(); let t2 = now()
            a &+= t1 - t0; b &+= t2 - t1
        }
        sel.append(Double(a) / 100); ins.append(Double(b) / 100)
    }
    return (stats(sel), stats(ins))
}

var checksum = 0
var rows: [[String]] = []
for n in [10, 100, 1_000, 10_000] {
    let core = Bsd4QueueWorkload(count: n, seed: UInt64(n) &* 7919)
    let (cs, ci) = measure({ core.select() }, { core.reinsert(estcpu: core.random(below: Bsd4QueueWorkload.estcpuMax + 1)) },
                           checksum: &checksum)
    // The baseline: the same priorities in a sorted array (ascending: best first).
    let seedWorkload = Bsd4QueueWorkload(count: 0, seed: UInt64(n) &* 7919)
    var sorted = (0..<n).map { _ in 128 + seedWorkload.random(below: 128) }.sorted()
    var held = 0
    let (bs, bi) = measure({ held = sorted.removeFirst(); return held }, {
        let p = 128 + seedWorkload.random(below: 128)
        var lo = 0, hi = sorted.count
        while lo < hi { let mid = (lo + hi) / 2; if sorted[mid] <= p { lo = mid + 1 } else { hi = mid } }
        sorted.insert(p, at: lo)                 // after equals: FIFO among equal priorities, as the queues
    }, checksum: &checksum)
    rows.append([String(n), String(format: "%.1f", cs.median), String(format: "%.1f", ci.median),
                 String(format: "%.1f", bs.median), String(format: "%.1f", bi.median),
                 String(format: "%.2fx", (bs.median + bi.median) / max(0.001, cs.median + ci.median))])
    if benchLines {
        for (id, s, label) in [("core.bsd4.select.\(n)", cs, "host: bsd4 select, \(n) queued"),
                               ("core.bsd4.setrunq.\(n)", ci, "host: bsd4 setrunqueue, \(n) queued"),
                               ("core.sorted.select.\(n)", bs, "host: sorted array removeFirst, \(n) queued"),
                               ("core.sorted.insert.\(n)", bi, "host: sorted array insert, \(n) queued")] {
            print("BENCH: id=\(id) unit=ns median=\(String(format: "%.1f", s.median)) p99=\(String(format: "%.1f", s.p99)) n=\(s.n) label=\(label)")
        }
    }
}
print("corebench: ns per operation (medians of batches of 100, \(ms) ms each; each includes one clock read), bsd4 queues vs a sorted array")
let header = ["queued", "bsd4 select", "bsd4 setrunqueue", "sorted select", "sorted insert", "sorted / bsd4"]
var widths = header.map(\.count)
for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
for r in [header] + rows {
    print(r.enumerated().map { i, c in String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  "))
}
print("checksum \(checksum)")
