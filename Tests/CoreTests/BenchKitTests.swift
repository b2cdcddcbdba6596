import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import BenchKit

/// benchreport's parser, ratios, Linux pairing, scale verdict, SVG, Markdown and
/// results file (scripts/BenchKit, docs/benchmarks.md).
final class BenchKitTests: XCTestCase {
    /// A boot's log as the serial port gives it: SeaBIOS's escape sequences on
    /// the first line, CR LF line ends, test output between the lines.
    let sample = """
    \u{1b}c\u{1b}[?7l\u{1b}[2JSeaBIOS (version 1.16.2)
    \u{1b}[2J\u{1b}[0mBENCHENV: system=quartet smp=4 tsc_mhz=2604 hypervisor=TCG apic=xAPIC cpu=QEMU TCG CPU version 2.5+\r
    PASS: bench: something readable
    BENCH: id=ipi.roundtrip unit=cycles median=1000 p99=4000 n=50 label=raw IPI ping-pong\r
    BENCH: id=ipiq.roundtrip unit=cycles median=250 p99=900 n=40 floor=ipi.roundtrip label=IPI-queue <round> & trip | x
    BENCH: id=cpusync.all unit=cycles median=7 p99=9 n=3 floor=ipi.broadcast label=floor missing here
    BENCH: id=broken unit=cycles median=abc p99=1 n=1 label=x
    BENCH: id=nolabel unit=cycles median=1 p99=1 n=1
    SKIP: bench-scale: IPI-queue throughput needs 2 CPUs
    BENCH: id=spin.fairness4 unit=ratio median=1.47 p99=1.63 n=8 extra=kept label=most / fewest
    End of test: SUCCESS
    """

    // MARK: Parser

    func testParsesEnvRecordsAndRestOfLineKeys() throws {
        let log = BenchParser.parse(sample)
        let env = try XCTUnwrap(log.env)
        XCTAssertEqual(env.system, "quartet")
        XCTAssertEqual(env.smp, 4)
        XCTAssertEqual(env.tscMHz, 2604)
        XCTAssertEqual(env.hypervisor, "TCG")
        XCTAssertEqual(env["apic"], "xAPIC", "every key is kept")
        XCTAssertEqual(env.cpu, "QEMU TCG CPU version 2.5+", "cpu takes the rest of the line, CR removed")
        XCTAssertEqual(env.keys, ["system", "smp", "tsc_mhz", "hypervisor", "apic", "cpu"])
        XCTAssertEqual(env.line, 2)

        XCTAssertEqual(log.records.map(\.id), ["ipi.roundtrip", "ipiq.roundtrip", "cpusync.all", "spin.fairness4"])
        let r = try XCTUnwrap(log.record("ipiq.roundtrip"))
        XCTAssertEqual(r, BenchRecord(id: "ipiq.roundtrip", unit: "cycles", median: 250, p99: 900, n: 40,
                                      floor: "ipi.roundtrip", label: "IPI-queue <round> & trip | x", line: 5))
        XCTAssertEqual(log.record("ipi.roundtrip")?.label, "raw IPI ping-pong", "CR removed from the label")
        XCTAssertNil(log.record("ipi.roundtrip")?.floor)
        let f = try XCTUnwrap(log.record("spin.fairness4"))
        XCTAssertEqual(f.median, 1.47)
        XCTAssertEqual(f.p99, 1.63)
        XCTAssertEqual(f.extra, ["extra": "kept"])
        XCTAssertEqual(f.label, "most / fewest")
        XCTAssertEqual(log.skips.map(\.what), ["bench-scale"])
        XCTAssertEqual(log.skipReason("bench-scale"), "IPI-queue throughput needs 2 CPUs")
    }

    func testOtherLinesAreIgnoredAndEscapesBeforeThePrefixSkipped() {
        let log = BenchParser.parse("""
        xBENCH: id=a unit=cycles median=1 p99=1 n=1 label=not at the start
         BENCH: id=b unit=cycles median=1 p99=1 n=1 label=indented
        BENCHMARK: id=c unit=cycles median=1 p99=1 n=1 label=another word
        bench: id=d unit=cycles median=1 p99=1 n=1 label=lower case
        garbage\rBENCH: id=e unit=cycles median=5 p99=6 n=7 label=after a CR
        \u{1b}[1;32m\u{0}BENCH: id=f unit=us median=8 p99=9 n=1 label=after colour codes and a NUL
        BENCH:id=g unit=cycles median=1 p99=1 n=1 label=no space after the colon\r\r
        """)
        XCTAssertEqual(log.records.map(\.id), ["e", "f", "g"])
        XCTAssertEqual(log.record("e")?.median, 5)
        XCTAssertEqual(log.record("g")?.label, "no space after the colon")
        XCTAssertEqual(log.records.map(\.line), [5, 6, 7])
        XCTAssertTrue(log.diagnostics.isEmpty, "\(log.diagnostics)")
        XCTAssertNil(log.env)
    }

    func testMalformedLinesAreReportedWithTheirNumbersAndTheRestIsUsed() {
        let log = BenchParser.parse(sample)
        XCTAssertEqual(log.diagnostics, [
            BenchDiagnostic(line: 7, "malformed BENCH line: median=abc is not a number"),
            BenchDiagnostic(line: 8, "malformed BENCH line: no label="),
        ])
        XCTAssertEqual(log.diagnostics[0].description, "line 7: malformed BENCH line: median=abc is not a number")
        XCTAssertEqual(log.records.count, 4, "the lines after the malformed ones are still read")

        let cases: [(String, String)] = [
            ("BENCH: id=a unit=cycles median=1 p99=1 label=x", "no n="),
            ("BENCH: unit=cycles median=1 p99=1 n=1 label=x", "no id="),
            ("BENCH: id=a unit=cycles median=-1 p99=1 n=1 label=x", "median=-1 is not a number"),
            ("BENCH: id=a unit=cycles median=1e3 p99=1 n=1 label=x", "median=1e3 is not a number"),
            ("BENCH: id=a unit=cycles median=1 p99=nan n=1 label=x", "p99=nan is not a number"),
            ("BENCH: id=a unit=cycles median=1 p99=1 n=1.5 label=x", "n=1.5 is not a sample count"),
            ("BENCH: id=a unit=cycles median=1 median=2 p99=1 n=1 label=x", "key 'median' given twice"),
            ("BENCH: id=a unit=cycles median=1 p99=1 n=1 oops label=x", "expected key=value, found 'oops'"),
            ("BENCH: id=a unit= median=1 p99=1 n=1 label=x", "'unit=' has no value"),
            ("BENCH: id=a unit=cycles median=1 p99=1 n=1 =3 label=x", "'=3' has no key before '='"),
            ("BENCH: id=a/b unit=cycles median=1 p99=1 n=1 label=x", "id=a/b is not a dotted name"),
            ("BENCH: id=a unit=cycles median=1 p99=1 n=1 label=", "'label=' has no value"),
        ]
        for (line, why) in cases {
            let l = BenchParser.parse("PASS: x\n" + line + "\n")
            XCTAssertTrue(l.records.isEmpty, line)
            XCTAssertEqual(l.diagnostics, [BenchDiagnostic(line: 2, "malformed BENCH line: " + why)], line)
        }
        let env = BenchParser.parse("BENCHENV: smp=4 cpu=x\nBENCHENV: system=quartet smp=zero cpu=x\n")
        XCTAssertNil(env.env)
        XCTAssertEqual(env.diagnostics.map(\.description), [
            "line 1: malformed BENCHENV line: no system=",
            "line 2: malformed BENCHENV line: smp=zero is not a CPU count",
        ])
    }

    func testARepeatedIdOrASecondEnvironmentIsNamed() {
        let log = BenchParser.parse("""
        BENCHENV: system=quartet smp=2 cpu=a
        BENCH: id=x unit=cycles median=1 p99=1 n=1 label=first
        BENCH: id=y unit=cycles median=2 p99=2 n=1 floor=x label=y
        BENCH: id=x unit=cycles median=4 p99=4 n=1 label=second
        BENCHENV: system=quartet smp=4 cpu=a
        """)
        XCTAssertEqual(log.record("x")?.label, "second", "the last one is used")
        XCTAssertEqual(log.uniqueRecords.map(\.label), ["second", "y"], "in order of first appearance")
        XCTAssertEqual(log.ratio(log.record("y")!), .value(0.5, floor: "x"))
        XCTAssertEqual(log.env?.smp, 2, "the first BENCHENV is used")
        XCTAssertEqual(log.diagnostics.map(\.line), [4, 5])
        XCTAssertTrue(log.diagnostics[0].message.contains("first at line 2"), log.diagnostics[0].message)
    }

    // MARK: Ratios and tables

    func testRatioToFloorIncludingAMissingOne() {
        let log = BenchParser.parse(sample + """

        BENCH: id=self unit=cycles median=30 p99=1 n=1 floor=self label=its own floor
        BENCH: id=rate unit=ops/s median=30 p99=1 n=1 floor=ipi.roundtrip label=another unit
        BENCH: id=zero unit=cycles median=0 p99=0 n=1 label=zero
        BENCH: id=overzero unit=cycles median=5 p99=5 n=1 floor=zero label=over zero
        """)
        XCTAssertEqual(log.ratio(log.record("ipiq.roundtrip")!), .value(0.25, floor: "ipi.roundtrip"))
        XCTAssertEqual(log.ratio(log.record("cpusync.all")!), .missing(floor: "ipi.broadcast"))
        XCTAssertEqual(log.ratio(log.record("ipi.roundtrip")!), .none)
        XCTAssertEqual(log.ratio(log.record("self")!).value, 1)
        XCTAssertEqual(log.ratio(log.record("rate")!), .unusable(floor: "ipi.roundtrip", reason: "its unit is cycles"))
        XCTAssertEqual(log.ratio(log.record("overzero")!), .unusable(floor: "zero", reason: "its median is 0"))
        XCTAssertNil(log.ratio(log.record("cpusync.all")!).value)
        XCTAssertEqual(log.ratio(log.record("cpusync.all")!).floorID, "ipi.broadcast")
    }

    func testPlainTableHasAlignedColumnsRatiosAndNotes() throws {
        let log = BenchParser.parse(sample)
        let text = BenchReport.table(NamedLog("quartet-tcg.log", log),
                                     BenchContext(accel: "tcg", hostCPU: "EPYC (2 host CPUs)", date: Date(timeIntervalSince1970: 0)))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "== quartet-tcg.log")
        XCTAssertEqual(lines[1], "system: quartet   accelerator: tcg   smp: 4")
        XCTAssertEqual(lines[2], "guest cpu: QEMU TCG CPU version 2.5+")
        XCTAssertEqual(lines[3], "host cpu: EPYC (2 host CPUs)")
        XCTAssertEqual(lines[4], "environment: tsc_mhz=2604 hypervisor=TCG apic=xAPIC")
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("measurement") })
        let row = try XCTUnwrap(lines.first { $0.contains(" ipiq.roundtrip ") })
        let missing = try XCTUnwrap(lines.first { $0.contains(" cpusync.all ") })
        XCTAssertTrue(row.hasSuffix("0.25x  ipi.roundtrip"), row)
        XCTAssertTrue(missing.hasSuffix("-  ipi.broadcast (not in this log)"), missing)
        XCTAssertTrue(lines.contains { $0.contains(" spin.fairness4 ") && $0.contains(" 1.47 ") })
        // Left columns start where their heading does; right ones end where it ends.
        for column in ["id", "unit", "floor"] {
            let at = header.range(of: "  " + column)!.lowerBound
            XCTAssertEqual(row[at...].prefix(2), "  ", column)
            XCTAssertNotEqual(row[row.index(at, offsetBy: 2)], " ", column)
        }
        let ratioEnd = header.range(of: "ratio to floor")!.upperBound.utf16Offset(in: header)
        XCTAssertEqual(row.range(of: "0.25x")!.upperBound.utf16Offset(in: row), ratioEnd)
        XCTAssertEqual(missing.range(of: "  -  ")!.lowerBound.utf16Offset(in: missing) + 3, ratioEnd)
        // The SKIP line and the malformed lines follow the table.
        XCTAssertTrue(text.contains("\n  SKIP bench-scale: IPI-queue throughput needs 2 CPUs\n"), text)
        XCTAssertTrue(text.contains("\n  log line 7: malformed BENCH line: median=abc is not a number\n"), text)
        // An accelerator the guest contradicts is shown with what the guest saw.
        XCTAssertTrue(BenchReport.table(NamedLog("l", log), BenchContext(accel: "kvm"))
            .contains("accelerator: kvm (the guest reports TCG)"))
        XCTAssertTrue(BenchReport.table(NamedLog("l", log), BenchContext()).contains("accelerator: TCG   smp: 4"))
    }

    func testMarkdownSectionHeadingAndEscaping() {
        let log = BenchParser.parse(sample)
        let date = Date(timeIntervalSince1970: 1_790_000_000)   // 2026-09-21 14:13:20 UTC
        let md = BenchReport.markdown(NamedLog("build/bench/quartet-tcg.log", log),
                                      BenchContext(accel: "tcg", hostCPU: "AMD <EPYC>", date: date))
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "### 2026-09-21 14:13 UTC: quartet, tcg, -smp 4, guest CPU QEMU TCG CPU version 2.5+, "
                       + "host CPU AMD &lt;EPYC&gt;")
        XCTAssertEqual(lines[1], "")
        XCTAssertTrue(lines.contains("| measurement | id | median | p99 | samples | unit | ratio to floor | floor |"))
        XCTAssertTrue(lines.contains("| --- | --- | --: | --: | --: | --- | --: | --- |"))
        XCTAssertTrue(lines.contains("| IPI-queue &lt;round&gt; &amp; trip \\| x | ipiq.roundtrip | 250 | 900 | 40 | cycles | 0.25x | ipi.roundtrip |"),
                      md)
        XCTAssertTrue(lines.contains("- SKIP bench-scale: IPI-queue throughput needs 2 CPUs"), md)
        XCTAssertEqual(lines.filter { $0.hasPrefix("| ") }.count, 2 + 4, "heading, rule, one row per record")
    }

    func testFormatting() {
        XCTAssertEqual(BenchFormat.number(1_234_567), "1,234,567")
        XCTAssertEqual(BenchFormat.number(999), "999")
        XCTAssertEqual(BenchFormat.number(0), "0")
        XCTAssertEqual(BenchFormat.number(1.65), "1.65")
        XCTAssertEqual(BenchFormat.number(1940.4), "1,940.40")
        XCTAssertEqual(BenchFormat.number(.nan), "-")
        XCTAssertEqual(BenchFormat.ratio(0.25), "0.25x")
        XCTAssertEqual(BenchFormat.ratio(1.234), "1.23x")
        XCTAssertEqual(BenchFormat.ratio(362.8), "363x")
        XCTAssertEqual(BenchFormat.ratio(nil), "-")
        XCTAssertEqual(BenchFormat.ratio(.infinity), "-")
        XCTAssertEqual(BenchFormat.utc(Date(timeIntervalSince1970: 0)), "1970-01-01 00:00 UTC")
        XCTAssertEqual(BenchFormat.markdown("a|b <c> & d\ne"), "a\\|b &lt;c&gt; &amp; d e")
        var t = TextTable(["name", "n"], right: [1])
        t.add(["alpha", "1"])
        t.add(["b", "1,000"])
        XCTAssertEqual(t.plain, "name       n\n-----  -----\nalpha      1\nb      1,000\n")
        XCTAssertEqual(t.markdown, "| name | n |\n| --- | --: |\n| alpha | 1 |\n| b | 1,000 |\n")
    }

    // MARK: Quartet against Linux

    let quartetLog = BenchParser.parse("""
    BENCHENV: system=quartet smp=4 tsc_mhz=2600 hypervisor=TCG cpu=QEMU TCG CPU version 2.5+
    BENCH: id=switch.yield unit=cycles median=1000 p99=1 n=1 label=a
    BENCH: id=rendezvous.all unit=cycles median=300 p99=1 n=1 label=b
    BENCH: id=cpusync.all unit=cycles median=150 p99=1 n=1 label=c
    BENCH: id=heap.alloc64 unit=us median=2 p99=1 n=1 label=odd unit
    BENCH: id=mem.pingpong unit=cycles median=600 p99=1 n=1 label=d
    """)
    let linuxLog = BenchParser.parse("""
    BENCHENV: system=linux smp=4 tsc_mhz=2606 kernel=6.1.0-56-amd64 cpu=QEMU TCG CPU version 2.5+
    BENCH: id=switch.yield unit=cycles median=4000 p99=1 n=1 label=a
    BENCH: id=membarrier.all unit=cycles median=100 p99=1 n=1 label=b
    BENCH: id=syscall.roundtrip unit=cycles median=2000 p99=1 n=1 label=c
    BENCH: id=heap.alloc64 unit=cycles median=300 p99=1 n=1 label=d
    SKIP: mem.pingpong: needs 2 CPUs
    """)

    func testCompareJoinsThePairsAndSaysWhatIsMissing() throws {
        let rows = BenchCompare.rows(quartet: quartetLog, linux: linuxLog)
        XCTAssertEqual(rows.map(\.pair.name), ["spin.uncontended", "switch.yield", "wakeup.roundtrip", "mem.pingpong",
                                                "rendezvous.all / membarrier.all", "cpusync.all / membarrier.all",
                                                "heap.alloc64", "syscall.roundtrip"])
        let by = Dictionary(uniqueKeysWithValues: rows.map { ($0.pair.name, $0) })
        XCTAssertEqual(by["switch.yield"]?.ratio, 0.25)
        XCTAssertEqual(by["rendezvous.all / membarrier.all"]?.ratio, 3)
        XCTAssertEqual(by["cpusync.all / membarrier.all"]?.ratio, 1.5, "both use the one membarrier figure")
        let spin = try XCTUnwrap(by["spin.uncontended"])
        XCTAssertNil(spin.ratio)
        XCTAssertEqual(spin.note, "SpinLock lock+unlock vs a pthread spinlock pair; Quartet: not in the Quartet log; "
                       + "Linux: not in the Linux log")
        let mem = try XCTUnwrap(by["mem.pingpong"])
        XCTAssertEqual(mem.quartet?.median, 600)
        XCTAssertNil(mem.linux)
        XCTAssertTrue(mem.note.hasSuffix("; Linux: skipped (needs 2 CPUs)"), mem.note)
        let sys = try XCTUnwrap(by["syscall.roundtrip"])
        XCTAssertNil(sys.quartet)
        XCTAssertEqual(sys.linux?.median, 2000)
        XCTAssertEqual(sys.note, "Linux: getppid; Quartet: no user mode yet")
        let heap = try XCTUnwrap(by["heap.alloc64"])
        XCTAssertNil(heap.ratio, "us against cycles")
        XCTAssertTrue(heap.note.hasSuffix("no ratio: units differ (us, cycles)"), heap.note)
    }

    func testCompareWhenLinuxDidNotRun() throws {
        let skipped = BenchParser.parse("SKIP: linux: /dev/kvm is the nested kvm_pvm backend\n")
        let rows = BenchCompare.rows(quartet: quartetLog, linux: skipped)
        XCTAssertTrue(rows.allSatisfy { $0.linux == nil && $0.ratio == nil })
        XCTAssertTrue(rows.allSatisfy { $0.note.hasSuffix("Linux: no results (below)") }, "\(rows.map(\.note))")
        XCTAssertEqual(BenchCompare.runProblem(skipped, side: "Linux"),
                       "Linux did not run: linux: /dev/kvm is the nested kvm_pvm backend")
        XCTAssertNil(BenchCompare.runProblem(linuxLog, side: "Linux"))
        var unreadable = BenchLog()
        unreadable.diagnostics = [BenchDiagnostic(line: 0, "cannot read linux-kvm.log")]
        XCTAssertEqual(BenchCompare.runProblem(unreadable, side: "Linux"), "Linux: cannot read linux-kvm.log")

        let c = BenchContext(accel: "tcg", hostCPU: "h", date: Date(timeIntervalSince1970: 0))
        let md = BenchReport.compare(quartet: NamedLog("q.log", quartetLog), linux: NamedLog("l.log", skipped), c, markdown: true)
        XCTAssertTrue(md.hasPrefix("### 1970-01-01 00:00 UTC: Quartet vs Linux, tcg, -smp 4, Linux kernel did not run, "
                                   + "guest CPU QEMU TCG CPU version 2.5+, host CPU h\n"), md)
        XCTAssertTrue(md.contains("\n- Linux did not run: linux: /dev/kvm is the nested kvm_pvm backend\n"), md)
        XCTAssertTrue(md.contains("| switch.yield | 1,000 cycles | - | - | "), "units per cell (heap.alloc64 is in us here): " + md)
        let plain = BenchReport.compare(quartet: NamedLog("q.log", quartetLog), linux: NamedLog("l.log", linuxLog),
                                        BenchContext(accel: "tcg"), markdown: false)
        XCTAssertTrue(plain.hasPrefix("== Quartet vs Linux: tcg, smp 4\n"), plain)
        let row = try XCTUnwrap(plain.split(separator: "\n").first { $0.hasPrefix("switch.yield ") })
        XCTAssertTrue(row.contains(" 1,000 ") && row.contains(" 4,000 ") && row.contains(" 0.25x "), String(row))
        XCTAssertFalse(plain.contains("note: "), "same smp, TSC within 2 %: nothing to warn about")
        let otherSMP = BenchParser.parse("BENCHENV: system=linux smp=2 tsc_mhz=3000 cpu=x\n" +
                                         "BENCH: id=switch.yield unit=cycles median=1 p99=1 n=1 label=a\n")
        let warned = BenchReport.compare(quartet: NamedLog("q", quartetLog), linux: NamedLog("l", otherSMP),
                                         BenchContext(), markdown: false)
        XCTAssertTrue(warned.contains("note: not like for like: Quartet ran with smp 4, Linux with smp 2"), warned)
        XCTAssertTrue(warned.contains("note: the TSC rates differ"), warned)
    }

    // MARK: Scale runs

    func scaleLog(_ cpus: Int, _ bootUs: Int, alltoall: Int? = nil) -> NamedLog {
        var text = """
        BENCHENV: system=quartet smp=\(cpus) tsc_mhz=2600 hypervisor=TCG cpu=x
        BENCH: id=boot.online unit=us median=\(bootUs) p99=\(bootUs) n=1 label=boot

        """
        if let alltoall { text += "BENCH: id=ipiq.alltoall unit=ops/s median=\(alltoall) p99=1 n=5 label=all\n" }
        return NamedLog("scale-\(cpus).log", BenchParser.parse(text))
    }

    func analysis(_ logs: [NamedLog]) -> ScaleAnalysis {
        ScaleAnalysis(logs.compactMap { ScalePoint.from($0.log, source: $0.source) })
    }

    func testScaleSubLinear() throws {
        let a = analysis([scaleLog(64, 160_000, alltoall: 5_000), scaleLog(1, 40_000), scaleLog(8, 55_000, alltoall: 150_000)])
        XCTAssertEqual(a.points.map(\.cpus), [1, 8, 64], "sorted by CPU count")
        XCTAssertEqual(a.growth(a.points[1]), 1.375)
        XCTAssertEqual(a.timeGrowth, 4)
        XCTAssertEqual(a.cpuGrowth, 64)
        XCTAssertEqual(a.growthRatio, 0.0625)
        XCTAssertEqual(try XCTUnwrap(a.exponent), 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(a.verdict, .subLinear)
        XCTAssertEqual(a.summary, "boot.online grows sub-linearly: 64 CPUs take 4.00x the time of 1 CPU, for 64x the CPUs "
                       + "(time growth / CPU growth = 0.062; time ~ CPUs^0.33, 1 being linear)")
        let text = BenchReport.scale([scaleLog(64, 160_000, alltoall: 5_000), scaleLog(1, 40_000)], BenchContext(), markdown: false)
        XCTAssertTrue(text.contains("\n   1            40,000              1.00x                      -  scale-1.log\n"), text)
        XCTAssertTrue(text.contains("\n  64           160,000              4.00x                  5,000  scale-64.log\n"), text)
        XCTAssertTrue(text.contains("grows sub-linearly"))
    }

    func testScaleLinearSuperLinearAndUnknown() {
        let linear = analysis([scaleLog(1, 10_000), scaleLog(4, 41_000), scaleLog(16, 160_000)])
        XCTAssertEqual(linear.growthRatio, 1)
        XCTAssertEqual(linear.exponent, 1)
        XCTAssertEqual(linear.verdict, .linear)
        XCTAssertTrue(linear.summary.hasPrefix("boot.online grows linearly, not sub-linearly: 16 CPUs take 16.00x"),
                      linear.summary)
        XCTAssertEqual(analysis([scaleLog(2, 10_000), scaleLog(8, 80_000)]).verdict, .superLinear)
        XCTAssertEqual(analysis([scaleLog(2, 10_000), scaleLog(8, 80_000)]).cpuGrowth, 4, "from the fewest CPUs given")
        XCTAssertEqual(analysis([scaleLog(4, 1)]).verdict, .unknown("boot.online is known at one CPU count only (4)"))
        XCTAssertEqual(analysis([]).verdict, .unknown("no boot.online figure above 0"))
        let noSMP = NamedLog("odd.log", BenchParser.parse("BENCH: id=boot.online unit=us median=5 p99=5 n=1 label=b\n"))
        let md = BenchReport.scale([scaleLog(1, 10_000), noSMP], BenchContext(date: Date(timeIntervalSince1970: 0)), markdown: true)
        XCTAssertTrue(md.hasPrefix("### 1970-01-01 00:00 UTC: scale runs (bench-scale), TCG, 1 to 1 CPUs, 1 boot, "), md)
        XCTAssertTrue(md.contains("boot time growth: cannot judge"), md)
        XCTAssertTrue(md.contains("left out (no smp= in BENCHENV): odd.log"), md)
    }

    // MARK: SVG

    func parsesAsXML(_ svg: String, file: StaticString = #filePath, line: UInt = #line) {
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "SVG is not well-formed: \(String(describing: parser.parserError))", file: file, line: line)
    }

    func testSVGHasOneBarPerFlooredMeasurementAndEscapesText() {
        let log = BenchParser.parse(sample + """

        BENCH: id=ipiq.perip unit=ops/s median=100 p99=1 n=1 label=per IPI
        BENCH: id=ipiq.coalesced unit=ops/s median=300 p99=1 n=1 floor=ipiq.perip label=coalesced
        """)
        let other = BenchParser.parse("""
        BENCH: id=ipi.roundtrip unit=cycles median=100 p99=1 n=1 label=raw
        BENCH: id=ipiq.roundtrip unit=cycles median=50 p99=1 n=1 floor=ipi.roundtrip label=IPI-queue <round> & trip | x
        """)
        let svg = BenchSVG.render([("tcg <a&b>", log), ("kvm", other)], title: "t & <u>")
        parsesAsXML(svg)
        XCTAssertEqual(svg.components(separatedBy: "<rect class=\"bar\"").count - 1, 3,
                       "ipiq.roundtrip in both logs, ipiq.coalesced in one; none for the missing floor")
        XCTAssertEqual(svg.components(separatedBy: "<g class=\"measurement\">").count - 1, 2, "one group per id")
        XCTAssertTrue(svg.contains(">tcg &lt;a&amp;b&gt;</text>"))
        XCTAssertTrue(svg.contains(">t &amp; &lt;u&gt;</text>"))
        XCTAssertTrue(svg.contains(">IPI-queue &lt;round&gt; &amp; trip | x<title>"))
        XCTAssertFalse(svg.contains("<round>"), "labels are escaped")
        XCTAssertTrue(svg.contains(">0.25x</text>") && svg.contains(">0.50x</text>") && svg.contains(">3.00x</text>"))
        XCTAssertTrue(svg.contains("not drawn: cpusync.all in tcg &lt;a&amp;b&gt;: its floor ipi.broadcast is not in the log"))
        XCTAssertFalse(svg.contains("logarithmic"), "0.25 to 3: a linear axis")
        XCTAssertTrue(svg.contains("stroke-dasharray"), "the line at 1.0")
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
    }

    func testSVGAxisTurnsLogarithmicBeyond100x() {
        let log = BenchParser.parse("""
        BENCH: id=f unit=cycles median=100 p99=1 n=1 label=floor
        BENCH: id=big unit=cycles median=50000 p99=1 n=1 floor=f label=big
        BENCH: id=small unit=cycles median=50 p99=1 n=1 floor=f label=small
        """)
        let svg = BenchSVG.render([("x", log)], title: "t")
        parsesAsXML(svg)
        XCTAssertTrue(svg.contains("logarithmic axis"))
        XCTAssertEqual(svg.components(separatedBy: "<rect class=\"bar\"").count - 1, 2)
        XCTAssertTrue(svg.contains(">500x</text>") && svg.contains(">0.50x</text>"))
        XCTAssertTrue(svg.contains(">1,000x</text>") && svg.contains(">0.1x</text>"), "decades from 0.1 to 1,000")
        let empty = BenchSVG.render([("x", BenchParser.parse("BENCH: id=f unit=cycles median=1 p99=1 n=1 label=f\n"))],
                                    title: "t")
        parsesAsXML(empty)
        XCTAssertTrue(empty.contains("no measurement with a floor"))
        XCTAssertFalse(empty.contains("class=\"bar\""))
    }

    // MARK: bench/results.md

    func testResultsFileHeadingOnce() throws {
        let first = BenchResultsFile.appending("### one\n", to: nil)
        XCTAssertTrue(first.hasPrefix("# Benchmark results\n"))
        XCTAssertTrue(first.hasSuffix("\n\n### one\n"))
        let second = BenchResultsFile.appending("### two", to: first)
        XCTAssertEqual(second.components(separatedBy: "# Benchmark results").count - 1, 1)
        XCTAssertTrue(second.hasSuffix("### one\n\n### two\n"))
        XCTAssertEqual(BenchResultsFile.appending("### x\n", to: ""), BenchResultsFile.appending("### x\n", to: nil),
                       "an empty file gets the heading")
        XCTAssertEqual(BenchResultsFile.appending("### x\n", to: "mine"), "mine\n\n### x\n", "no heading in a file with text")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("benchkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("results.md").path
        try BenchResultsFile.append("### a\n", toFile: path)
        try BenchResultsFile.append("### b\n", toFile: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(text, BenchResultsFile.heading + "\n### a\n\n### b\n")
        XCTAssertEqual(text.components(separatedBy: "# Benchmark results").count - 1, 1)
    }

}
