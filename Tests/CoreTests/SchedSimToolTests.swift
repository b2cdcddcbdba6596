import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import QuartetCore
import SchedSimKit

// schedsim's workload parser, table and SVG writer (scripts/SchedSimKit), run on
// the shipped example so that a change that breaks the format fails here.

final class SchedSimToolTests: XCTestCase {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/schedsim/examples/mixed.txt").standardized

    func testTheExampleParsesRunsAndDraws() throws {
        let text = try String(contentsOf: Self.example, encoding: .utf8)
        let w = try WorkloadParser.parse(text)
        XCTAssertEqual(w.sim.cpus, 2)
        XCTAssertEqual(w.sim.durationMs, 60_000)
        XCTAssertEqual(w.names, ["hog-n0", "hog-n10", "hog-n20", "shell", "editor", "cron", "idle-hog"])
        XCTAssertEqual(w.sim.lwps.map { $0.niceOrRtprio }, [0, 10, 20, 0, 0, 0, 0])
        XCTAssertEqual(w.sim.lwps[4].pattern, .periodic(runMs: 5, sleepMs: 45))
        XCTAssertEqual(w.sim.lwps[6].cls, .idle)

        let r = Bsd4Simulator(w.sim).run()
        let table = Report.table(w, r)
        XCTAssertTrue(table.hasPrefix("schedsim: 2 CPUs, 60 s simulated, decay 8, 7 lwps\n"))
        for name in w.names { XCTAssertTrue(table.contains("\n" + name + " "), name) }
        XCTAssertEqual(table.split(separator: "\n").count, 1 + 1 + 7 + 2)

        let svg = SVGChart.render(w, r)
        XCTAssertTrue(svg.hasPrefix("<?xml"))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2 * 7, "two lines per lwp")
        for name in w.names { XCTAssertTrue(svg.contains(">\(name) ("), "legend names \(name)") }
        // Each line has one point per 100 ms sample.
        let firstLine = svg.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }
        XCTAssertEqual(firstLine.split(separator: " ").count, 600)
        // Well-formed XML.
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "SVG is not well-formed: \(String(describing: parser.parserError))")
    }

    func testNamesCountsDefaultsAndComments() throws {
        let w = try WorkloadParser.parse("""
            # nothing here
            hog
            hog nice=-5 name=b count=2   # two of them
            duration=2s  decay=4 sample=50ms
            interactive run=1ms sleep=0ms cpuset=0,2-3 start=1s
            cpus=4
            hog class=realtime prio=31
            """)
        XCTAssertEqual(w.names, ["hog1", "b.1", "b.2", "interactive4", "hog5"])
        XCTAssertEqual([w.sim.cpus, w.sim.durationMs, w.sim.decay, w.sim.sampleMs], [4, 2000, 4, 50])
        XCTAssertEqual(w.sim.lwps[1].niceOrRtprio, -5)
        XCTAssertEqual(w.sim.lwps[3].cpuMaskBits, 0b1101)
        XCTAssertEqual(w.sim.lwps[3].startMs, 1000)
        XCTAssertEqual(w.sim.lwps[0].cpuMaskBits, UInt64.max)
        XCTAssertEqual(w.sim.lwps[4].cls, .realtime)
        XCTAssertEqual(w.sim.lwps[4].niceOrRtprio, 31)
        XCTAssertEqual(w.patterns, ["hog", "hog", "hog", "1ms/0ms", "hog"])
    }

    func testMalformedLinesAreNamedWithTheirLineNumber() {
        let cases: [(String, String)] = [
            ("cpus=2\nhgo nice=0", "line 2: unknown word 'hgo' (expected hog, interactive, or settings such as cpus=2)"),
            ("hog nise=3", "line 1: unknown option 'nise' (known: name, nice, class, prio, run, sleep, cpuset, start, count)"),
            ("hog nice=21", "line 1: nice=21 is outside -20..20"),
            ("hog nice=x", "line 1: nice=x is not a whole number"),
            ("hog\n\ninteractive run=5ms", "line 3: interactive needs run=TIME and sleep=TIME"),
            ("hog run=5ms", "line 1: run= and sleep= are for interactive lwps; a hog never sleeps"),
            ("interactive run=5 sleep=5ms", "line 1: run=5: expected a time such as 5ms or 60s"),
            ("interactive run=0ms sleep=5ms", "line 1: run=0ms is outside 1ms..3600000ms"),
            ("cpus=2\nhog cpuset=2", "line 2: cpuset names CPU 2, but cpus=2"),
            ("hog cpuset=3-1", "line 1: cpuset=3-1: expected CPU numbers and ranges such as 0,2-3"),
            ("cpus=2 cpus=3\nhog", "line 1: setting 'cpus' given twice"),
            ("cpus=2\ncpus=3\nhog", "line 2: setting 'cpus' given twice"),
            ("cpus=65", "line 1: cpus=65 is outside 1..64"),
            ("speed=3", "line 1: unknown setting 'speed' (known: cpus, duration, decay, sample)"),
            ("sample=300ms\nhog", "line 1: sample=300ms does not divide 1s"),
            ("hog nice=1 nice=2", "line 1: option 'nice' given twice"),
            ("hog class=idle nice=3", "line 1: nice= is for the normal class; class=idle uses prio="),
            ("hog prio=3", "line 1: prio= is for class=realtime or class=idle; the normal class uses nice="),
            ("hog class=batch", "line 1: class=batch: expected normal, realtime or idle"),
            ("hog name=a b", "line 1: expected key=value, found 'b'"),
            ("hog nice=", "line 1: 'nice=' has no value"),
            ("hog name=x\nhog name=x", "two lwps are named 'x'"),
            ("# only a comment\n", "the workload has no lwps (add a line such as 'hog nice=0')"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try WorkloadParser.parse(text), text) { error in
                XCTAssertEqual((error as? WorkloadError)?.description, message, text)
            }
        }
    }
}
