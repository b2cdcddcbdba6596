import XCTest
@testable import QuartetCore

private let bse = "\u{8} \u{8}"   // the echo that erases one byte

// Feeds `s` byte by byte; returns the events other than .none and the echo.
private func type(_ e: inout LineEditor, _ s: String) -> (events: [LineEditor.Event], echo: String) {
    type(&e, Array(s.utf8))
}

private func type(_ e: inout LineEditor, _ bytes: [UInt8]) -> (events: [LineEditor.Event], echo: String) {
    var out: [UInt8] = []
    var events: [LineEditor.Event] = []
    for b in bytes {
        let ev = e.feed(b, into: &out)
        if ev != .none { events.append(ev) }
    }
    return (events, String(decoding: out, as: UTF8.self))
}

private func text(_ e: LineEditor) -> String { String(decoding: e.line, as: UTF8.self) }
private func submit(_ s: String) -> LineEditor.Event { .submit(Array(s.utf8)) }
private func args(_ s: String) -> MonitorArgs { MonitorArgs(line: Array(s.utf8))! }

private func failure<T>(_ r: Result<T, MonitorArgError>) -> String? {
    if case .failure(let e) = r { return e.message }
    return nil
}

private func value<T>(_ r: Result<T, MonitorArgError>) -> T? {
    if case .success(let v) = r { return v }
    return nil
}

// One class, so that `--filter MonitorCoreTests` selects all of it.
final class MonitorCoreTests: XCTestCase {
    // MARK: LineEditor

    func testTypingEchoesAndEnterSubmits() {
        var e = LineEditor()
        let r = type(&e, "help\r")
        XCTAssertEqual(r.events, [submit("help")])
        XCTAssertEqual(r.echo, "help\r\n")
        XCTAssertTrue(e.line.isEmpty)
    }

    func testBackspaceAndDeleteAtEmptyLineDoNothing() {
        var e = LineEditor()
        XCTAssertEqual(type(&e, [0x08, 0x7F]).echo, "")
        let r = type(&e, [0x61, 0x62, 0x7F, 0x63, 0x08])
        XCTAssertEqual(r.echo, "ab" + bse + "c" + bse)
        XCTAssertEqual(text(e), "a")
        XCTAssertEqual(e.garbage, 0)
    }

    func testOverflowReportedOnceThenBackspaceMakesRoom() {
        var e = LineEditor(capacity: 4)
        let r = type(&e, "abcdefg")
        XCTAssertEqual(r.events, [.overflow])
        XCTAssertEqual(r.echo, "abcd\u{7}")
        XCTAssertEqual(text(e), "abcd")
        XCTAssertEqual(e.overflowMessage, "line too long (max 4)")
        XCTAssertEqual(LineEditor().overflowMessage, "line too long (max 120)")
        // Room again after a backspace; a new overflow is a new report.
        let r2 = type(&e, "\u{7F}XYZ")
        XCTAssertEqual(r2.events, [.overflow])
        XCTAssertEqual(r2.echo, bse + "X\u{7}")
        // Bytes were lost: Enter drops the line instead of running a cut one.
        XCTAssertEqual(type(&e, "\r").events, [.discarded])
        XCTAssertEqual(text(e), "")
        XCTAssertEqual(type(&e, "ok\r").events, [submit("ok")], "the next line is whole again")
        XCTAssertEqual(e.history.count, 1, "a discarded line is not history")
        // Ctrl-U after an overflow starts a clean line.
        _ = type(&e, "abcdefg")
        XCTAssertEqual(type(&e, [0x15]).events, [])
        XCTAssertEqual(type(&e, "xy\r").events, [submit("xy")])
    }

    func testCtrlUErasesTheWholeLine() {
        var e = LineEditor()
        _ = type(&e, "abc")
        let r = type(&e, [0x15])
        XCTAssertEqual(r.echo, bse + bse + bse)
        XCTAssertTrue(e.line.isEmpty)
        XCTAssertEqual(type(&e, [0x15]).echo, "")
        XCTAssertEqual(type(&e, "x\r").events, [submit("x")])
    }

    func testCtrlCDiscardsTheLineAndEchoesNothing() {
        var e = LineEditor()
        let r = type(&e, [0x61, 0x62, 0x03])
        XCTAssertEqual(r.events, [.interrupt])
        XCTAssertEqual(r.echo, "ab")
        XCTAssertTrue(e.line.isEmpty)
        XCTAssertTrue(e.history.isEmpty)
        XCTAssertEqual(type(&e, "c\n").events, [submit("c")])
    }

    func testCRLFAndCRLFAsOne() {
        var e = LineEditor()
        XCTAssertEqual(type(&e, "a\r").events, [submit("a")])
        XCTAssertEqual(type(&e, "b\n").events, [submit("b")])
        let r = type(&e, "c\r\nd\r\n")
        XCTAssertEqual(r.events, [submit("c"), submit("d")])
        XCTAssertEqual(r.echo, "c\r\nd\r\n")
        // LF CR is two Enters, and so is CR CR; an empty line is still submitted.
        XCTAssertEqual(type(&e, "\n\r").events, [submit(""), submit("")])
        XCTAssertEqual(type(&e, "\r\r").events, [submit(""), submit("")])
        XCTAssertTrue(e.history.map { String(decoding: $0, as: UTF8.self) } == ["a", "b", "c", "d"])
    }

    func testHistoryUpDownLimits() {
        var e = LineEditor()
        _ = type(&e, "one\rtwo\rthree\r")
        let up = "\u{1B}[A", down = "\u{1B}[B"
        var r = type(&e, "xy" + up)
        XCTAssertEqual(r.echo, "xy" + bse + bse + "three")
        r = type(&e, up + up)
        XCTAssertEqual(r.echo, String(repeating: bse, count: 5) + "two" + String(repeating: bse, count: 3) + "one")
        // Up past the oldest stays there and echoes nothing.
        XCTAssertEqual(type(&e, up).echo, "")
        XCTAssertEqual(text(e), "one")
        _ = type(&e, down + down)
        XCTAssertEqual(text(e), "three")
        // Down past the newest gives an empty line; more Downs do nothing.
        XCTAssertEqual(type(&e, down).echo, String(repeating: bse, count: 5))
        XCTAssertTrue(e.line.isEmpty)
        XCTAssertEqual(type(&e, down + down).echo, "")
        // A recalled line can be edited and submitted; browsing starts again.
        XCTAssertEqual(type(&e, up + "!\r").events, [submit("three!")])
        _ = type(&e, up)
        XCTAssertEqual(text(e), "three!")
    }

    func testSS3ArrowsAndNoHistory() {
        var e = LineEditor()
        XCTAssertEqual(type(&e, "\u{1B}OA\u{1B}OB").echo, "")
        _ = type(&e, "ls\r")
        XCTAssertEqual(type(&e, "\u{1B}OA").echo, "ls")
        XCTAssertEqual(type(&e, "\u{1B}OB").echo, bse + bse)
    }

    func testHistoryDropsDuplicatesEmptiesAndOldest() {
        var e = LineEditor(historyLimit: 3)
        _ = type(&e, "a\ra\r\r  \rb\ra\rc\rd\r")
        // "a" twice in a row is stored once; blank-only "  " is a line, kept.
        let h = e.history.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(h, ["a", "c", "d"])
        var none = LineEditor(historyLimit: 0)
        _ = type(&none, "x\r")
        XCTAssertTrue(none.history.isEmpty)
        XCTAssertEqual(type(&none, "\u{1B}[A").echo, "")
    }

    func testOtherEscapeSequencesAreSwallowed() {
        var e = LineEditor()
        let r = type(&e, "a\u{1B}[C\u{1B}[D\u{1B}[3~\u{1B}[1;5C\u{1B}[15~\u{1B}OPb")
        XCTAssertEqual(r.echo, "ab")
        XCTAssertEqual(e.garbage, 0)
        // A parameterised A is not Up.
        _ = type(&e, "\r")
        XCTAssertEqual(type(&e, "\u{1B}[1;2A").echo, "")
    }

    func testLoneEscapeAndCutShortSequences() {
        var e = LineEditor()
        // ESC x: the ESC is dropped and x typed; ESC ESC [ A: the second ESC starts Up.
        XCTAssertEqual(type(&e, "\u{1B}x").echo, "x")
        // A CR inside a sequence ends it and still submits.
        XCTAssertEqual(type(&e, "\u{1B}[1\r").events, [submit("x")])
        XCTAssertEqual(type(&e, "\u{1B}\u{1B}[A").echo, "x")
        // An endless parameter run is abandoned after maxSequence bytes.
        _ = type(&e, [0x15, 0x1B, 0x5B] + Array(repeating: 0x31, count: LineEditor.maxSequence + 1) + Array("zq".utf8))
        XCTAssertEqual(text(e), "zq")
    }

    func testGarbageIsIgnoredAndCounted() {
        var e = LineEditor()
        let r = type(&e, [0x01, 0x61, 0x80, 0xFF, 0x09, 0x00, 0x62, 0xC3, 0xA9])
        XCTAssertEqual(r.echo, "ab")
        XCTAssertEqual(e.garbage, 7)
        XCTAssertTrue(r.events.isEmpty)
    }

    func testPasteOfSeveralLinesInOneLoop() {
        var e = LineEditor()
        let r = type(&e, "mem\r\nsched\nrun all\r\rhelp")
        XCTAssertEqual(r.events, [submit("mem"), submit("sched"), submit("run all"), submit("")])
        XCTAssertEqual(text(e), "help")
    }

    // MARK: MonitorArgs, MonitorCommandTable

    func testWordsSplitAtRunsOfBlanks() {
        let a = args("  nice \t 3   -5  ")
        XCTAssertEqual(a.name, "nice")
        XCTAssertEqual(a.args, ["3", "-5"])
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(a.word(at: 1), "-5")
        XCTAssertNil(a.word(at: 2))
        XCTAssertNil(a.word(at: -1))
        XCTAssertNil(MonitorArgs(line: Array(" \t ".utf8)))
        XCTAssertNil(MonitorArgs(line: []))
    }

    func testIntRangesAndMessages() {
        let a = args("nice 3 -20 21 x 0x10 99999999999999999999999")
        XCTAssertEqual(value(a.int(at: 0, name: "id", range: 0...100)), 3)
        XCTAssertEqual(value(a.int(at: 1, name: "n", range: -20...20)), -20)
        XCTAssertEqual(value(a.int(at: 4, name: "n", range: 0...255)), 16)
        XCTAssertEqual(failure(a.int(at: 2, name: "n", range: -20...20)),
                       "nice: n: expected a number from -20 to 20, got '21'")
        XCTAssertEqual(failure(a.int(at: 3, name: "n", range: -20...20)),
                       "nice: n: expected a number from -20 to 20, got 'x'")
        XCTAssertNotNil(failure(a.int(at: 5, name: "n", range: Int.min...Int.max)))
        XCTAssertEqual(failure(a.int(at: 6, name: "n", range: -20...20)),
                       "nice: n: missing, expected a number from -20 to 20")
    }

    func testEchoedWordsAreBoundedAndPrintable() {
        let a = MonitorArgs(line: Array("x \u{1}".utf8) + [0xFF])!
        // 0xFF decodes to U+FFFD, three bytes, each shown as '?'.
        XCTAssertEqual(failure(a.int(at: 0, name: "n", range: 0...1)),
                       "x: n: expected a number from 0 to 1, got '????'")
        let long = args("x " + String(repeating: "9a", count: 50))
        XCTAssertEqual(failure(long.int(at: 0, name: "n", range: 0...1))?.utf8.count,
                       "x: n: expected a number from 0 to 1, got ''".utf8.count + 64)
    }

    func testCPUAgainstOnlineMask() {
        let a = args("bind 2 5 64 -1 zz 0")
        XCTAssertEqual(value(a.cpu(at: 0, online: UInt64(0b0111))), 2)
        XCTAssertEqual(value(a.cpu(at: 0, online: [true, false, true])), 2)
        XCTAssertEqual(value(a.cpu(at: 5, online: CPUMask.first(1))), 0)
        XCTAssertEqual(failure(a.cpu(at: 1, online: UInt64(0b100_1111))),
                       "bind: cpu 5 is not online (online: 0-3,6)")
        XCTAssertEqual(failure(a.cpu(at: 0, online: [true, true, false, true])),
                       "bind: cpu 2 is not online (online: 0-1,3)")
        XCTAssertEqual(failure(a.cpu(at: 2, online: UInt64.max)),
                       "bind: cpu: expected a number from 0 to 63, got '64'")
        XCTAssertEqual(failure(a.cpu(at: 3, online: UInt64.max)),
                       "bind: cpu: expected a number from 0 to 63, got '-1'")
        XCTAssertNotNil(failure(a.cpu(at: 4, online: UInt64.max)))
        XCTAssertEqual(failure(a.cpu(at: 5, online: UInt64(0))), "bind: cpu 0 is not online (online: none)")
        XCTAssertEqual(MonitorArgs.cpuList(CPUMask(bits: UInt64.max)), "0-63")
        XCTAssertEqual(MonitorArgs.cpuList(CPUMask(bits: 1 << 63 | 0b101)), "0,2,63")
    }

    private func table() -> MonitorCommandTable<Int> {
        var t = MonitorCommandTable<Int>()
        t.add(MonitorCommandSpec("help", help: "this list"), 0)
        t.add(MonitorCommandSpec("nice", synopsis: "<id> <n>", help: "set a thread's nice value", args: 2...2), 1)
        t.add(MonitorCommandSpec("run", synopsis: "NAME...", help: "run test suites", args: 1...Int.max), 2)
        t.add(MonitorCommandSpec("exit", synopsis: "[CODE]", help: "leave QEMU", args: 0...1), 3)
        return t
    }

    func testLookupResolveAndUsage() {
        let t = table()
        XCTAssertEqual(t.lookup("nice")?.handler, 1)
        XCTAssertNil(t.lookup("nic"))
        XCTAssertEqual(value(t.resolve(args("nice 1 2")))?.handler, 1)
        XCTAssertEqual(value(t.resolve(args("run a b c d")))?.handler, 2)
        XCTAssertEqual(value(t.resolve(args("exit")))?.handler, 3)
        XCTAssertEqual(failure(t.resolve(args("nice 1"))), "usage: nice <id> <n>")
        XCTAssertEqual(failure(t.resolve(args("nice 1 2 3"))), "usage: nice <id> <n>")
        XCTAssertEqual(failure(t.resolve(args("help me"))), "usage: help")
        XCTAssertEqual(failure(t.resolve(args("run"))), "usage: run NAME...")
        XCTAssertEqual(failure(t.resolve(args("xyzzy 1"))), "unknown command 'xyzzy' (try 'help')")
        XCTAssertNil(t.lookup("nice")!.spec.checkCount(args("nice 1 2")))
    }

    func testHelpLinesAlignInAColumn() {
        XCTAssertEqual(table().helpLines(), [
            "  help           this list",
            "  nice <id> <n>  set a thread's nice value",
            "  run NAME...    run test suites",
            "  exit [CODE]    leave QEMU",
        ])
        XCTAssertEqual(MonitorCommandTable<Int>().helpLines(), [])
    }
}
