import XCTest
@testable import BenchKit
@testable import QuartetCore

/// benchreport's parser, ratios, Linux pairing, scale verdict, SVG and results
/// file (docs/benchmarks.md), and the bsd4 workload corebench times.
final class BenchKitTests: XCTestCase {
    let sample = """
    \u{1b}[2JSeaBIOS garbage
    BENCHENV: system=quartet smp=4 tsc_mhz=2604 hypervisor=TCG cpu=QEMU TCG CPU version 2.5+\r
    PASS: bench: something readable
    BENCH: id=ipi.roundtrip unit=cycles median=1000 p99=4000 n=50 label=raw IPI ping-pong\r
    BENCH: id=ipiq.roundtrip unit=cycles median=250 p99=900 n=40 floor=ipi.roundtrip label=IPI-queue <round> & trip
    BENCH: id=cpusync.all unit=cycles median=7 p99=9 n=3 floor=ipi.broadcast label=floor missing here
    BENCH: id=broken unit=cycles median=abc p99=1 n=1 label=x
    BENCH: id=nolabel unit=cycles median=1 p99=1 n=1
    SKIP: bench: cross-CPU benchmarks need 2 CPUs
    """

    func testParsesEnvRecordsAndRestOfLineKeys() {
        let log = BenchLog.parse(sample)
        XCTAssertEqual(log.env["system"], "quartet")
        XCTAssertEqual(log.smp, 4)
        XCTAssertEqual(log.env["cpu"], "QEMU TCG CPU version 2.5+", "cpu takes the rest of the line, CR removed")
        XCTAssertEqual(log.records.map(\.id), ["ipi.roundtrip", "ipiq.roundtrip", "cpusync.all"])
        let r = log.record("ipiq.roundtrip")!
        XCTAssertEqual(r.median, 250); XCTAssertEqual(r.p99, 900); XCTAssertEqual(r.n, 40)
        XCTAssertEqual(r.floor, "ipi.roundtrip")
        XCTAssertEqual(r.label, "IPI-queue <round> & trip")
        XCTAssertEqual(log.skips, ["bench: cross-CPU benchmarks need 2 CPUs"])
    }

    func testMalformedLinesAreReportedWithTheirNumbers() {
        let log = BenchLog.parse(sample)
        XCTAssertEqual(log.errors.map(\.line), [7, 8])
        XCTAssertTrue(log.errors[0].reason.contains("non-numeric"), log.errors[0].reason)
        XCTAssertTrue(log.errors[1].reason.contains("label="), log.errors[1].reason)
    }

    func testRatioToFloorAndMissingFloor() {
        let log = BenchLog.parse(sample)
        XCTAssertEqual(log.ratioToFloor(log.record("ipiq.roundtrip")!), 0.25)
        XCTAssertNil(log.ratioToFloor(log.record("cpusync.all")!), "its floor is not in this log")
        XCTAssertNil(log.ratioToFloor(log.record("ipi.roundtrip")!), "no floor")
        let table = BenchReport.table(log, BenchContext(accel: "tcg", hostCPU: "h", date: "d"))
        XCTAssertTrue(table.contains("0.25x ipi.roundtrip"), table)
        XCTAssertTrue(table.contains("malformed: line 7"), table)
    }

    func testFormatting() {
        XCTAssertEqual(BenchFormat.number(1234567), "1,234,567")
        XCTAssertEqual(BenchFormat.number(999), "999")
        XCTAssertEqual(BenchFormat.number(1.65), "1.65")
        XCTAssertEqual(BenchFormat.ratio(0.25), "0.25x")
        XCTAssertEqual(BenchFormat.ratio(362.8), "363x")
        XCTAssertEqual(BenchFormat.ratio(nil), "-")
        XCTAssertEqual(BenchFormat.markdownTable(["a|b", "c"], [["1", "2"]]), "| a\\|b | c |\n| --- | --- |\n| 1 | 2 |")
    }

    func testCompareJoinsThePairsAndSaysWhatIsMissing() {
        let q = BenchLog.parse("""
        BENCHENV: system=quartet smp=4 cpu=x
        BENCH: id=switch.yield unit=cycles median=1000 p99=1 n=1 label=a
        BENCH: id=rendezvous.all unit=cycles median=300 p99=1 n=1 label=b
        """)
        let l = BenchLog.parse("""
        BENCHENV: system=linux smp=4 kernel=6.1 cpu=x
        BENCH: id=switch.yield unit=cycles median=4000 p99=1 n=1 label=a
        BENCH: id=membarrier.all unit=cycles median=100 p99=1 n=1 label=b
        BENCH: id=syscall.roundtrip unit=cycles median=2000 p99=1 n=1 label=c
        """)
        let rows = BenchCompare.rows(quartet: q, linux: l)
        XCTAssertEqual(rows.count, BenchCompare.pairs.count)
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.measurement, $0) })
        XCTAssertEqual(byName["switch.yield"]?.ratio, 0.25)
        XCTAssertEqual(byName["rendezvous.all / membarrier.all"]?.ratio, 3)
        XCTAssertNil(byName["spin.uncontended"]?.ratio)
        XCTAssertTrue(byName["spin.uncontended"]!.note.contains("not in the Quartet log"))
        XCTAssertTrue(byName["spin.uncontended"]!.note.contains("not in the Linux log"))
        XCTAssertEqual(byName["syscall.roundtrip"]?.linux, 2000)
        XCTAssertNil(byName["syscall.roundtrip"]?.quartet)
        // A Linux log that holds only a SKIP line: every row says so, the table gives the reason.
        let skipped = BenchLog.parse("SKIP: linux: cannot boot here\n")
        let text = BenchCompare.table(quartet: q, linux: skipped, BenchContext(accel: "kvm", hostCPU: "h", date: "d"), markdown: true)
        XCTAssertTrue(text.contains("Linux did not run: linux: cannot boot here"), text)
        XCTAssertTrue(BenchCompare.rows(quartet: q, linux: skipped).allSatisfy { $0.linux == nil && $0.note.contains("did not run") })
    }

    func scaleLog(_ cpus: Int, _ bootUs: Int) -> BenchLog {
        BenchLog.parse("""
        BENCHENV: system=quartet smp=\(cpus) cpu=x
        BENCH: id=boot.online unit=us median=\(bootUs) p99=\(bootUs) n=1 label=boot
        """)
    }

    func testScaleVerdict() {
        let sub = [scaleLog(64, 146_000), scaleLog(1, 45_000), scaleLog(8, 52_000)]
        let v = BenchScale.subLinear(BenchScale.points(sub))!
        XCTAssertEqual(v.cpuGrowth, 64)
        XCTAssertEqual(v.growth, 146.0 / 45.0, accuracy: 1e-9)
        XCTAssertTrue(v.subLinear)
        XCTAssertEqual(BenchScale.points(sub).map(\.cpus), [1, 8, 64], "sorted by CPU count")
        let linear = [scaleLog(1, 10_000), scaleLog(16, 200_000)]
        XCTAssertFalse(BenchScale.subLinear(BenchScale.points(linear))!.subLinear)
        XCTAssertTrue(BenchScale.table(linear, markdown: false, date: "d").contains("NOT sub-linear"))
        XCTAssertNil(BenchScale.subLinear(BenchScale.points([scaleLog(4, 1)])), "one point is no verdict")
    }

    func testSVGHasOneBarPerFlooredMeasurementAndEscapesText() {
        let log = BenchLog.parse(sample)
        let svg = BenchSVG.render([("tcg <a&b>", log), ("kvm", log)], title: "t & <u>")
        XCTAssertEqual(svg.components(separatedBy: "class=\"bar\"").count - 1, 2, "ipiq.roundtrip in each of 2 logs")
        XCTAssertTrue(svg.contains("tcg &lt;a&amp;b&gt;"))
        XCTAssertTrue(svg.contains("t &amp; &lt;u&gt;"))
        XCTAssertFalse(svg.contains("<round>"), "labels are escaped")
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
    }

    func testResultsFileHeadingOnce() {
        let first = BenchResultsFile.appending("### one\n", to: nil)
        XCTAssertTrue(first.hasPrefix("# Benchmark results"))
        let second = BenchResultsFile.appending("### two", to: first)
        XCTAssertEqual(second.components(separatedBy: "# Benchmark results").count - 1, 1)
        XCTAssertTrue(second.hasSuffix("### two\n"))
        XCTAssertTrue(second.contains("### one\n\n### two"))
    }

    /// corebench's workload: select takes the best priority queued (checked
    /// against a brute-force minimum), and reinsert keeps the count.
    func testBsd4WorkloadSelectsTheBest() {
        let w = Bsd4QueueWorkload(count: 200, seed: 42)
        for step in 0..<500 {
            let best = w.nodes.filter { $0.onRunQ }.map(\.priority).min()!
            let got = w.select()
            XCTAssertEqual(got / Bsd4.ppq, best / Bsd4.ppq, "step \(step): chooseproc took a worse queue")   // the same queue
            w.reinsert(estcpu: w.random(below: Bsd4QueueWorkload.estcpuMax + 1))
            XCTAssertEqual(w.nodes.filter { $0.onRunQ }.count, 200)
        }
    }
}
