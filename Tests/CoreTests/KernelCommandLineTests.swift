import XCTest
@testable import QuartetCore

private func parse(_ bytes: [UInt8], skipImageName: Bool = true) -> ParsedCommandLine {
    bytes.withUnsafeBytes { KernelCommandLine.parse($0, skipImageName: skipImageName) }
}

private func parse(_ s: String, skipImageName: Bool = true) -> ParsedCommandLine {
    parse(Array(s.utf8), skipImageName: skipImageName)
}

private func reasons(_ p: ParsedCommandLine) -> [String] {
    p.problems.map { $0.reason.description }
}

private func keys(_ p: ParsedCommandLine) -> [String] {
    p.options.map { $0.key }
}

final class KernelCommandLineTests: XCTestCase {
    func testImageNameIsSkipped() {
        let p = parse("build/kernel.elf run=all smp")
        XCTAssertEqual(p.imageName, "build/kernel.elf")
        XCTAssertEqual(keys(p), ["run", "smp"])
        XCTAssertEqual(p.value(for: "run"), "all")
        XCTAssertTrue(p.problems.isEmpty)
    }

    func testImageNameNotSkippedWhenItHasEqualsOrWhenDisabled() {
        let a = parse("run=all quiet")
        XCTAssertNil(a.imageName)
        XCTAssertEqual(keys(a), ["run", "quiet"])

        let b = parse("quiet run=all", skipImageName: false)
        XCTAssertNil(b.imageName)
        XCTAssertEqual(keys(b), ["quiet", "run"])
    }

    func testBareFlagsAndBlankSeparators() {
        var p = parse("kernel\tverbose\n\nnosmp=0  color=off\r\ndebug=yes")
        XCTAssertEqual(p.value(for: "verbose"), "1")
        XCTAssertTrue(p.flag("verbose"))
        XCTAssertFalse(p.flag("nosmp"))
        XCTAssertFalse(p.flag("color"))
        XCTAssertTrue(p.flag("debug"))
        XCTAssertFalse(p.flag("absent"))
        XCTAssertTrue(p.problems.isEmpty)
    }

    func testFlagWithGarbageValueIsReportedAndFalse() {
        var p = parse("k smp=maybe")
        XCTAssertFalse(p.flag("smp"))
        XCTAssertEqual(reasons(p), ["not a boolean"])
        XCTAssertEqual(p.problems[0].word, "smp=maybe")
    }

    func testQuotedValues() {
        let p = parse(#"k name="a b  c" empty="" plain= x=1"#)
        XCTAssertEqual(p.value(for: "name"), "a b  c")
        XCTAssertEqual(p.value(for: "empty"), "")
        XCTAssertEqual(p.value(for: "plain"), "")
        XCTAssertEqual(p.value(for: "x"), "1")
        XCTAssertTrue(p.problems.isEmpty)
    }

    func testUnterminatedQuoteOnlyKillsItsWord() {
        let p = parse(#"k a=1 name="oops rest=2 last"#)
        XCTAssertEqual(p.value(for: "a"), "1")
        XCTAssertNil(p.value(for: "name"))
        // Parsing resumed after the first blank following the quote.
        XCTAssertEqual(p.value(for: "rest"), "2")
        XCTAssertEqual(p.value(for: "last"), "1")
        XCTAssertEqual(reasons(p), ["unterminated quote"])
        XCTAssertEqual(p.problems[0].word, #"name="oops"#)
        XCTAssertEqual(p.problems[0].severity, .error)
    }

    func testMisplacedQuotes() {
        let p = parse(#"k "q"=1 a=b"c b="x"y ok"#)
        XCTAssertEqual(keys(p), ["ok"])
        XCTAssertEqual(reasons(p), ["quote in key", "quote inside value", "text after closing quote"])
    }

    func testDuplicateLastWinsWithWarning() {
        let p = parse("k run=a other run=b")
        XCTAssertEqual(p.value(for: "run"), "b")
        XCTAssertEqual(keys(p), ["run", "other"])
        XCTAssertEqual(p.problems.count, 1)
        XCTAssertEqual(p.problems[0].severity, .warning)
        XCTAssertEqual(p.problems[0].word, "run=b")
    }

    func testUnknownKeys() {
        let p = parse("k run=all smp=4 typo=1 zz")
        XCTAssertEqual(KernelCommandLine.unknownKeys(p, known: ["run", "smp"] as [StaticString]), ["typo", "zz"])
        XCTAssertEqual(KernelCommandLine.unknownKeys(p, known: ["run", "smp", "zz"] as [String]), ["typo"])
        XCTAssertEqual(KernelCommandLine.unknownKeys(p, known: [] as [String]).count, 4)
    }

    func testKeyCharacterSetAndLength() {
        let key32 = String(repeating: "k", count: 32)
        let key33 = String(repeating: "k", count: 33)
        let p = parse("k a.b_c-9=1 \(key32)=x \(key33)=y Upper=1 =v sp@ce=1")
        XCTAssertEqual(keys(p), ["a.b_c-9", key32])
        XCTAssertEqual(reasons(p), ["key longer than 32 bytes", "key must be [a-z0-9._-]",
                                    "empty key", "key must be [a-z0-9._-]"])
    }

    func testValueLength() {
        let v256 = String(repeating: "v", count: 256)
        let v257 = String(repeating: "v", count: 257)
        let p = parse("k a=\(v256) b=\(v257) c=\"\(v257)\"")
        XCTAssertEqual(p.value(for: "a")?.count, 256)
        XCTAssertNil(p.value(for: "b"))
        XCTAssertNil(p.value(for: "c"))
        XCTAssertEqual(reasons(p), ["value longer than 256 bytes", "value longer than 256 bytes"])
        // The echoed word is bounded.
        XCTAssertEqual(p.problems[0].word.utf8.count, KernelCommandLine.maxWordEcho)
    }

    func testControlAndNonASCIIBytes() {
        var bytes = Array("k a=1 b=x".utf8)
        bytes.append(0x1B)                               // ESC inside a value
        bytes += Array(" c=\u{e9} d=\"x".utf8)           // non-ASCII
        bytes.append(0x07)                               // BEL inside quotes
        bytes += Array("\" e\u{7f}=1 f=2".utf8)          // DEL in key
        let p = parse(bytes)
        XCTAssertEqual(keys(p), ["a", "f"])
        XCTAssertEqual(reasons(p), Array(repeating: "control or non-ASCII byte", count: 4))
        // Echoed words are made printable.
        XCTAssertEqual(p.problems[0].word, "b=x?")
        XCTAssertTrue(p.problems.allSatisfy { $0.word.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f } })
    }

    func testStopsAtEmbeddedNULAndNeedsNoNUL() {
        let p = parse(Array("k a=1 b=2".utf8) + [0] + Array(" c=3".utf8))
        XCTAssertEqual(keys(p), ["a", "b"])

        // No terminator at all: the buffer bound is respected.
        let q = parse(Array("k a=1 b=2".utf8))
        XCTAssertEqual(keys(q), ["a", "b"])
        XCTAssertEqual(q.value(for: "b"), "2")

        let empty = parse([0, 0x61])
        XCTAssertTrue(empty.options.isEmpty)
        XCTAssertNil(empty.imageName)
        XCTAssertTrue(parse([]).options.isEmpty)
        XCTAssertTrue(parse("   \t  ").options.isEmpty)
    }

    func testTooManyOptions() {
        let words = (0..<40).map { "o\($0)=\($0)" }.joined(separator: " ")
        let p = parse("k " + words + " o0=again")
        XCTAssertEqual(p.options.count, KernelCommandLine.maxOptions)
        XCTAssertEqual(p.value(for: "o31"), "31")
        XCTAssertNil(p.value(for: "o32"))
        XCTAssertEqual(reasons(p).filter { $0 == "too many options (max 32)" }.count, 8)
        // Replacing an existing key still works when full.
        XCTAssertEqual(p.value(for: "o0"), "again")
    }

    func testInt() {
        var p = parse("k a=42 b=0x1F c=-7 d=9223372036854775807 e=9223372036854775808 f=-9223372036854775808 g=0xffffffffffffffffff h=12x i=0x j=- k2=99999999999999999999")
        XCTAssertEqual(p.int("a", default: 0), 42)
        XCTAssertEqual(p.int("b", default: 0), 31)
        XCTAssertEqual(p.int("c", default: 0), -7)
        XCTAssertEqual(p.int("d", default: 0), Int.max)
        XCTAssertEqual(p.int("e", default: 5), 5)
        XCTAssertEqual(p.int("f", default: 0), Int.min)
        XCTAssertEqual(p.int("g", default: 6), 6)
        XCTAssertEqual(p.int("h", default: 7), 7)
        XCTAssertEqual(p.int("i", default: 8), 8)
        XCTAssertEqual(p.int("j", default: 9), 9)
        XCTAssertEqual(p.int("k2", default: 10), 10)
        XCTAssertEqual(p.int("absent", default: 11), 11)
        XCTAssertEqual(reasons(p).filter { $0 == "not an integer or out of range" }.count, 6)
        XCTAssertEqual(p.problems.first?.word, "e=9223372036854775808")
    }

    func testList() {
        let p = parse("k run=ipi,,sched,,panic, one=x none= bad=,,")
        XCTAssertEqual(p.list("run"), ["ipi", "sched", "panic"])
        XCTAssertEqual(p.list("one"), ["x"])
        XCTAssertEqual(p.list("none"), [])
        XCTAssertEqual(p.list("bad"), [])
        XCTAssertEqual(p.list("absent"), [])
    }

    func testQuotedListWithSpacesSurvives() {
        let p = parse(#"k run="a, b""#)
        XCTAssertEqual(p.list("run"), ["a", " b"])
    }

    func testRandomBytesNeverTrapAndOptionsAreWellFormed() {
        var seed: UInt64 = 42
        func next() -> UInt64 {
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let alphabet = Array("ab=\" \t,x0-1".utf8) + [0, 0x1B, 0xC3, 0x7F]
        for _ in 0..<2000 {
            let bytes = (0..<Int(next() % 80)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            let p = parse(bytes)
            XCTAssertLessThanOrEqual(p.options.count, KernelCommandLine.maxOptions)
            for o in p.options {
                XCTAssertFalse(o.key.isEmpty)
                XCTAssertTrue(o.key.utf8.allSatisfy(KernelCommandLine.isKeyByte))
                XCTAssertTrue(o.value.utf8.allSatisfy(KernelCommandLine.isPrintable))
                XCTAssertFalse(o.value.utf8.contains(0x22))
            }
            XCTAssertEqual(Set(p.options.map(\.key)).count, p.options.count)
        }
    }
}
