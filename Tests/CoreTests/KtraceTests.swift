import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
import KtraceKit

// ktrace (scripts/KtraceKit) over a serial log shaped like the kernel's: boot and
// PASS lines, an older dump, then the one to use (4 CPUs, dumped CPU after CPU,
// lines from other CPUs in between, one corrupt K line), all ending in \r\n.
// The JSON is read back with JSONSerialization and held to the trace-event
// format that Perfetto expects; the SVG is read back with XMLParser.

final class KtraceTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ktrace/sample.log")

    private func load() throws -> (KtraceLog, KtraceDump, KtraceTimeline) {
        let log = KtraceParser.parse(try String(contentsOf: Self.fixture, encoding: .utf8))
        let dump = try XCTUnwrap(log.dump)
        return (log, dump, KtraceTimeline(dump))
    }

    private func trace(_ t: KtraceTimeline) throws -> (top: [String: Any], events: [[String: Any]]) {
        let any = try JSONSerialization.jsonObject(with: Data(ChromeTrace.render(t).utf8))
        let top = try XCTUnwrap(any as? [String: Any])
        return (top, try XCTUnwrap(top["traceEvents"] as? [[String: Any]]))
    }

    private func num(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }

    func testTheFixtureParsesPerCPU() throws {
        let (log, dump, t) = try load()
        XCTAssertEqual(log.dumpsFound, 2)
        XCTAssertEqual(dump.beginLine, 20, "the last complete dump, not the older one")
        XCTAssertEqual([dump.cpus, Int(dump.tscMHz), dump.declaredEvents, Int(dump.dropped)], [4, 2604, 313, 17])
        XCTAssertEqual((0..<4).map { dump.eventCount(cpu: $0) }, [80, 82, 64, 86])
        XCTAssertEqual((0..<4).map { c in dump.events.filter { $0.cpu == c && $0.name == "switch" }.count }, [16, 15, 14, 17])
        XCTAssertEqual(dump.malformed.map(\.line), [79])
        XCTAssertTrue(dump.malformed[0].description.hasPrefix("line 79: malformed K line (tsc '000000z2a088b418'"))
        XCTAssertEqual(log.diagnostics, dump.malformed, "no other warnings")
        XCTAssertEqual(dump.unknownEventCount, 0)
        XCTAssertEqual(dump.endLine, 339)
        XCTAssertTrue(dump.events.allSatisfy { (21..<339).contains($0.line) })
        XCTAssertEqual(t.events.map(\.tsc), t.events.map(\.tsc).sorted())
        XCTAssertEqual([t.flows.count, t.unmatchedSends, t.unmatchedReceives], [48, 2, 1])
    }

    func testTheJSONFollowsTheTraceEventFormat() throws {
        let (_, _, t) = try load()
        let (top, events) = try trace(t)
        XCTAssertEqual(top["displayTimeUnit"] as? String, "ns")
        let other = try XCTUnwrap(top["otherData"] as? [String: Any])
        XCTAssertEqual(other["source"] as? String, "quartet ktrace")
        XCTAssertEqual([num(other["cpus"]), num(other["tsc_mhz"]), num(other["dropped"])], [4, 2604, 17])

        var threadNames: [Int: String] = [:], open: [Int: [String]] = [:], lastTs = -1.0, phases: [String: Int] = [:]
        for e in events {
            let ph = try XCTUnwrap(e["ph"] as? String), name = try XCTUnwrap(e["name"] as? String)
            let ts = try XCTUnwrap(num(e["ts"])), tid = try XCTUnwrap(e["tid"] as? Int)
            XCTAssertEqual(e["pid"] as? Int, 0)
            XCTAssertTrue((0..<4).contains(tid), "\(e)")
            phases[ph, default: 0] += 1
            if ph == "M" {
                if name == "thread_name" { threadNames[tid] = (e["args"] as? [String: Any])?["name"] as? String }
                if name == "process_name" { XCTAssertEqual((e["args"] as? [String: Any])?["name"] as? String, "Quartet") }
                continue
            }
            XCTAssertNotNil(threadNames[tid], "track \(tid) named before use")
            XCTAssertGreaterThanOrEqual(ts, lastTs, "time order"); lastTs = ts
            switch ph {
            case "i": XCTAssertEqual(e["s"] as? String, "t")
            case "X": XCTAssertGreaterThanOrEqual(try XCTUnwrap(num(e["dur"])), 0)
            case "B": open[tid, default: []].append(name)
            case "E": XCTAssertEqual(open[tid]?.popLast(), name, "E closes the innermost B on its track")
            default: break
            }
        }
        XCTAssertEqual(threadNames, [0: "CPU 0", 1: "CPU 1", 2: "CPU 2", 3: "CPU 3"])
        // Perfetto needs the slices of one track to nest: each ends before its parent does.
        var ends: [Int: [Double]] = [:]
        for e in events where ["X", "B", "E"].contains(e["ph"] as? String) {
            let tid = e["tid"] as! Int, ts = num(e["ts"])!
            while let top = ends[tid]?.last, top <= ts + 1e-9, top >= 0 { ends[tid]!.removeLast() }
            switch e["ph"] as! String {
            case "X": let end = ts + num(e["dur"])!
                XCTAssertLessThanOrEqual(end, (ends[tid]?.last).map { $0 < 0 ? .infinity : $0 } ?? .infinity, "\(e)")
                ends[tid, default: []].append(end)
            case "B": ends[tid, default: []].append(-1)
            default: XCTAssertEqual(ends[tid]?.popLast(), -1, "an E inside an unfinished X: \(e)")
            }
        }
        XCTAssertTrue(open.values.allSatisfy(\.isEmpty), "B/E balanced on every track")
        XCTAssertEqual(num(events.first { $0["ph"] as? String != "M" }?["ts"]), 0, "the first event is ts 0")
        XCTAssertEqual(phases, ["M": 9, "i": 266, "X": 86, "B": 12, "E": 12, "s": 48, "f": 48])
        let brackets = events.filter { $0["ph"] as? String == "B" }.compactMap { $0["name"] as? String }
        XCTAssertEqual(brackets.filter { $0 == "rendezvous #3" }.count, 4)
        XCTAssertEqual(brackets.filter { $0 == "cpusync" }.count, 4)
    }

    func testSwitchesBecomeThreadSlicesAndTimesComeFromTheTSC() throws {
        let (_, dump, t) = try load()
        let (_, events) = try trace(t)
        let byLine = Dictionary(uniqueKeysWithValues: dump.events.map { ($0.line, $0) })
        let origin = try XCTUnwrap(dump.events.map(\.tsc).min())
        func micros(_ cycles: UInt64) -> Double { Double(cycles) / 2604 }
        for e in events where e["ph"] as? String == "i" || e["ph"] as? String == "X" {
            let args = try XCTUnwrap(e["args"] as? [String: Any]), k = try XCTUnwrap(byLine[try XCTUnwrap(args["line"] as? Int)])
            XCTAssertEqual(try XCTUnwrap(num(e["ts"])), micros(k.tsc - origin), accuracy: 0.0006, "\(e)")
            if e["name"] as? String == "critical_exit window" {
                XCTAssertEqual(try XCTUnwrap(num(e["dur"])), micros(k.b), accuracy: 0.0011)
            }
        }
        XCTAssertEqual(events.filter { $0["name"] as? String == "critical_exit window" }.count, 22)
        for cpu in 0..<4 {
            let mine = dump.events.filter { $0.cpu == cpu }.sorted { $0.tsc < $1.tsc }
            let switches = mine.filter { $0.name == "switch" }
            let slices = events.filter { $0["tid"] as? Int == cpu && ($0["name"] as? String)?.hasPrefix("thread #") == true }
            XCTAssertEqual(slices.count, switches.count + (mine.first?.name == "switch" ? 0 : 1), "CPU \(cpu)")
            for s in switches {
                let ts = micros(s.tsc - origin)
                XCTAssertTrue(events.contains { $0["name"] as? String == "switch #\(s.a)→#\(s.b)" && $0["tid"] as? Int == cpu },
                              "switch instant at line \(s.line)")
                XCTAssertTrue(slices.contains { $0["name"] as? String == "thread #\(s.b)" && abs(num($0["ts"])! - ts) < 0.0006 })
            }
        }
    }

    func testIPIFlowsJoinEachSendToItsReceive() throws {
        let (_, dump, t) = try load()
        let (_, events) = try trace(t)
        let origin = try XCTUnwrap(dump.events.map(\.tsc).min())
        // Every message sent (or coalesced onto a pending interrupt) whose receive is in the dump.
        let pairs = dump.events.filter { $0.name == "ipi.send" || $0.name == "ipi.coalesced" }.compactMap { s in
            dump.events.first { $0.name == "ipi.recv" && $0.cpu == s.a && $0.a == s.cpu && $0.b == s.b }.map { (s, $0) }
        }
        XCTAssertEqual(pairs.count, 48)
        XCTAssertTrue(pairs.contains { $0.1.tsc < $0.0.tsc }, "the fixture has a receive stamped before its send")
        let starts = events.filter { $0["ph"] as? String == "s" }, ends = events.filter { $0["ph"] as? String == "f" }
        XCTAssertEqual(starts.count, pairs.count)
        XCTAssertEqual(ends.count, pairs.count, "no dangling flow for the unanswered sends")
        XCTAssertEqual(Set(starts.compactMap { $0["id"] as? Int }).count, starts.count, "ids unique")
        var seen = Set<Int>()
        for s in starts {
            let end = try XCTUnwrap(ends.first { $0["id"] as? Int == s["id"] as? Int }, "flow \(s)")
            XCTAssertEqual(s["cat"] as? String, "ipi"); XCTAssertEqual(end["cat"] as? String, "ipi")
            XCTAssertEqual(end["bp"] as? String, "e")
            let ts = num(s["ts"])!, te = num(end["ts"])!
            XCTAssertGreaterThanOrEqual(te, ts)
            let k = try XCTUnwrap(pairs.firstIndex { p in
                p.0.cpu == s["tid"] as? Int && p.1.cpu == end["tid"] as? Int
                    && abs(Double(p.1.tsc - origin) / 2604 - te) < 0.0006
            }, "a flow from a send on the sender's track to its receive on the receiver's: \(s) \(end)")
            XCTAssertTrue(seen.insert(k).inserted)
            let (send, recv) = pairs[k]
            XCTAssertEqual(ts, Double(min(send.tsc, recv.tsc) - origin) / 2604, accuracy: 0.0006)
        }
        XCTAssertEqual(events.filter { $0["name"] as? String == "ipi.coalesced" }.count, 2)
    }

    func testTheSVGIsWellFormedWithOneLanePerCPU() throws {
        let (_, _, t) = try load()
        let svg = SVGTimeline.render(t)
        XCTAssertEqual(svg, SVGTimeline.render(KtraceTimeline(try load().1)), "deterministic")
        XCTAssertTrue(svg.hasPrefix("<?xml")); XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertFalse(svg.contains("<script"))
        let reader = SVGReader(), parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        XCTAssertTrue(parser.parse(), "SVG is not well-formed: \(String(describing: parser.parserError))")
        XCTAssertEqual(reader.lanes, ["cpu-0", "cpu-1", "cpu-2", "cpu-3"])
        for cpu in 0..<4 { XCTAssertTrue(reader.texts.contains("CPU \(cpu)")) }
        XCTAssertEqual(reader.flows, 48)
        XCTAssertEqual(reader.critical, 22)
    }

    func testALogWithoutADumpSaysSo() {
        let log = KtraceParser.parse("Quartet: boot\r\nPASS: boot: ok\r\nK 0 00000012a05f2000 switch 1 2\r\nktrace: end\r\n")
        XCTAssertNil(log.dump)
        XCTAssertEqual(log.diagnostics.count, 1)
        XCTAssertTrue(log.diagnostics[0].description.contains("no ktrace dump"))
        let bad = KtraceParser.parse("ktrace: begin cpus=4 events=1 dropped=0\nK 0 00000012a05f2000 switch 1 2\nktrace: end\n")
        XCTAssertNil(bad.dump)
        XCTAssertEqual(bad.diagnostics.map(\.description),
                       ["line 1: malformed begin line: no tsc_mhz=", "no ktrace dump in the log (no valid 'ktrace: begin' line)"])
    }

    func testMalformedKLinesAreCountedAndSkipped() throws {
        let log = KtraceParser.parse("""
            ktrace: begin cpus=2 tsc_mhz=1000 events=8 dropped=0
            K 0 0000000000001000 switch 1 2
            K 0 12a05f2000 switch 2 1
            K 2 0000000000002000 switch 1 2
            K 1 0000000000003000 switch 1
            K 1 0000000000004000 migrate x 1
            K +1 0000000000005000 migrate 1 1
            cpu1: a line printed in the middle
            K 1 0000000000006000 sleepq.wake 7 0
            K 1 0000000000007000 ipi.recv 0 1
            ktrace: end
            """)
        let dump = try XCTUnwrap(log.dump)
        XCTAssertEqual(dump.events.map(\.line), [2, 9, 10])
        XCTAssertEqual(dump.malformed.map(\.line), [3, 4, 5, 6, 7])
        XCTAssertEqual(dump.malformed[1].description, "line 4: malformed K line (cpu 2 is not below cpus=2): K 2 0000000000002000 switch 1 2")
        XCTAssertEqual(log.diagnostics.count, 5, "events=8 is what arrived, counting the malformed lines")
        XCTAssertEqual(dump.unknownEventCount, 1)
        let json = ChromeTrace.render(KtraceTimeline(dump))
        XCTAssertTrue(json.contains("{\"name\":\"sleepq.wake\",\"ph\":\"i\",\"ts\":20.480,\"pid\":0,\"tid\":1,\"cat\":\"other\",\"s\":\"t\",\"args\":{\"a\":7,\"b\":0,\"line\":9}}"))
        XCTAssertFalse(json.contains("\"ph\":\"f\""), "a receive without its send draws no flow")
    }

    func testTheLastCompleteDumpWinsAndAnUnfinishedOneWarns() throws {
        let one = "ktrace: begin cpus=1 tsc_mhz=1000 events=1 dropped=0\nK 0 0000000000001000 switch 1 2\n"
        let two = "ktrace: begin cpus=1 tsc_mhz=1000 events=2 dropped=0\nK 0 0000000000001000 switch 1 3\n"
        let log = KtraceParser.parse(one + "ktrace: end\n" + two)
        XCTAssertEqual(log.dump?.events.map(\.b), [2])
        XCTAssertEqual(log.diagnostics.map(\.description),
                       ["line 4: this dump has no 'ktrace: end'; using the complete one at line 1"])
        let cut = KtraceParser.parse("boot\n" + two)
        XCTAssertEqual(cut.dump?.events.map(\.b), [3])
        XCTAssertEqual(cut.diagnostics.map(\.description),
                       ["line 2: the dump has no 'ktrace: end' (log cut short?); using the 1 events read"])
        let short = KtraceParser.parse(two + "ktrace: end")
        XCTAssertEqual(short.diagnostics.map(\.description), ["line 1: the dump announces events=2 but has 1 K lines"])
    }
}

/// Collects what the SVG test checks: lanes by id, flow lines, critical windows, text.
private final class SVGReader: NSObject, XMLParserDelegate {
    var lanes: [String] = [], texts: [String] = [], flows = 0, critical = 0
    private var inText = false, inLane = false

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        if attributes["class"] == "lane", let id = attributes["id"] { lanes.append(id) }
        if attributes["class"] == "flow" { flows += 1 }
        if name == "g" { inLane = attributes["class"] == "lane" }
        if inLane && name == "rect" && attributes["stroke"] == "#ff7f0e" { critical += 1 }
        inText = name == "text"
        if inText { texts.append("") }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { texts[texts.count - 1] += string } }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        inText = false
        if name == "g" { inLane = false }
    }
}

/// A real serial log: `run=rendezvous-preempt ktrace=1` on 4 CPUs under TCG,
/// where the suite froze the trace at its first race window (seed 002) and
/// dumped it. The picture in the README is this log's SVG.
final class KtraceRealLogTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ktrace/rendezvous-preempt.log")

    func testTheSeed002WindowConvertsToAValidTrace() throws {
        let log = KtraceParser.parse(try String(contentsOf: Self.fixture, encoding: .utf8))
        let dump = try XCTUnwrap(log.dump)
        XCTAssertEqual(dump.cpus, 4)
        XCTAssertTrue(dump.malformed.isEmpty)
        XCTAssertEqual(dump.unknownEventCount, 0)
        XCTAssertEqual(dump.events.count, dump.declaredEvents)
        XCTAssertGreaterThan(dump.events.filter { $0.name == "crit.window" }.count, 0, "critical_exit windows")
        XCTAssertGreaterThan(dump.events.filter { $0.name == "rdv.action" }.count, 0, "rendezvous actions")
        let t = KtraceTimeline(dump)
        XCTAssertEqual(t.unmatchedSends + t.unmatchedReceives, 0, "every IPI send meets its receive")
        XCTAssertGreaterThan(t.flows.count, 0)
        let any = try JSONSerialization.jsonObject(with: Data(ChromeTrace.render(t).utf8))
        let events = try XCTUnwrap((any as? [String: Any])?["traceEvents"] as? [[String: Any]])
        let tracks = Set(events.compactMap { $0["tid"] as? Int })
        XCTAssertEqual(tracks, [0, 1, 2, 3], "one track per CPU")
        let starts = events.filter { $0["ph"] as? String == "s" }.compactMap { $0["id"] as? Int }
        let ends = events.filter { $0["ph"] as? String == "f" }.compactMap { $0["id"] as? Int }
        XCTAssertEqual(Set(starts), Set(ends), "every flow has both ends")
        XCTAssertTrue(events.contains { $0["name"] as? String == "critical_exit window" && $0["ph"] as? String == "X" })
    }
}
