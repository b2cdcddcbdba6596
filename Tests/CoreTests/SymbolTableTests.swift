import XCTest
@testable import QuartetCore

// The kernel symbol table reader (Kernel/Core/SymbolTable.swift): lookups at every
// boundary, every malformation refused, and a randomized comparison with a
// linear scan. Blobs are built here the way scripts/symbols.sh builds them.

private struct Sym {
    var start: UInt64
    var size: UInt32
    var name: String
}

/// One entry as stored: the name is an offset into the string area.
private struct RawEntry {
    var start: UInt64
    var size: UInt32
    var nameOffset: UInt32
}

private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// A blob field by field; `count` and `stringBytes` default to the true values.
private func rawBlob(magic: [UInt8] = Array("QSYM".utf8), version: UInt32 = 1, count: UInt32? = nil,
                     entries: [RawEntry], strings: [UInt8], stringBytes: UInt32? = nil,
                     padding: [UInt8] = []) -> [UInt8] {
    var b = magic + le32(version) + le32(count ?? UInt32(entries.count)) + le32(stringBytes ?? UInt32(strings.count))
    for e in entries { b += le64(e.start) + le32(e.size) + le32(e.nameOffset) }
    return b + strings + padding
}

/// A well-formed blob: names length-prefixed in order, identical names shared.
private func blob(_ syms: [Sym], padding: Int = 0) -> [UInt8] {
    var strings: [UInt8] = []
    var offsets: [String: UInt32] = [:]
    var entries: [RawEntry] = []
    for s in syms {
        if offsets[s.name] == nil {
            offsets[s.name] = UInt32(strings.count)
            strings += [UInt8(s.name.utf8.count)] + Array(s.name.utf8)
        }
        entries.append(RawEntry(start: s.start, size: s.size, nameOffset: offsets[s.name]!))
    }
    return rawBlob(entries: entries, strings: strings, padding: [UInt8](repeating: 0, count: padding))
}

private func withTable<R>(_ bytes: [UInt8], _ body: (SymbolTable?) -> R) -> R {
    bytes.withUnsafeBytes { body(SymbolTable(bytes: $0)) }
}

/// Why the reader refuses `bytes`, or nil when it accepts them.
private func refusal(_ bytes: [UInt8]) -> String? {
    bytes.withUnsafeBytes { b in
        switch SymbolTable.check(b) {
        case .valid: return nil
        case .invalid(let why): return "\(why)"
        }
    }
}

/// lookup as (name, offset), the name decoded.
private func find(_ t: SymbolTable, _ address: UInt64) -> (String, UInt64)? {
    t.lookup(address).map { (String(decoding: $0.name, as: UTF8.self), $0.offset) }
}

private func expect(_ t: SymbolTable, _ address: UInt64, _ name: String, _ offset: UInt64,
                    file: StaticString = #filePath, line: UInt = #line) {
    guard let hit = find(t, address) else {
        return XCTFail("no symbol at \(String(address, radix: 16)), expected \(name)", file: file, line: line)
    }
    XCTAssertEqual(hit.0, name, "name at \(String(address, radix: 16))", file: file, line: line)
    XCTAssertEqual(hit.1, offset, "offset at \(String(address, radix: 16))", file: file, line: line)
}

/// A fixed-seed generator, so that a failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class SymbolTableTests: XCTestCase {
    // A at 0x1000 (16 bytes), B right after it (32 bytes), a gap, C at 0x1100 (4 bytes).
    private let abc = [Sym(start: 0x1000, size: 0x10, name: "cpu_touch"),
                       Sym(start: 0x1010, size: 0x20, name: "static Scheduler.switchAway()"),
                       Sym(start: 0x1100, size: 4, name: "closure #1 in Boot.main()")]

    // MARK: lookups

    func testLookupAtStartInsideAndLastByte() {
        withTable(blob(abc)) { t in
            guard let t else { return XCTFail("a well-formed table was refused") }
            XCTAssertEqual(t.count, 3)
            expect(t, 0x1000, "cpu_touch", 0)
            expect(t, 0x1007, "cpu_touch", 7)
            expect(t, 0x100f, "cpu_touch", 0xf)
            expect(t, 0x1010, "static Scheduler.switchAway()", 0)      // one past A is B's start
            expect(t, 0x102f, "static Scheduler.switchAway()", 0x1f)
            expect(t, 0x1100, "closure #1 in Boot.main()", 0)
            expect(t, 0x1103, "closure #1 in Boot.main()", 3)
        }
    }

    func testNoSymbolOnePastTheEndInGapsBeforeTheFirstAndAfterTheLast() {
        withTable(blob(abc)) { t in
            guard let t else { return XCTFail("a well-formed table was refused") }
            for address: UInt64 in [0, 1, 0xfff, 0x1030, 0x1031, 0x10ff, 0x1104, 0x1105, 0xdead_0000, UInt64.max] {
                XCTAssertNil(t.lookup(address), "address \(String(address, radix: 16)) belongs to no symbol")
            }
        }
    }

    func testZeroSymbols() {
        withTable(blob([])) { t in
            guard let t else { return XCTFail("an empty table is well-formed") }
            XCTAssertEqual(t.count, 0)
            XCTAssertEqual(t.usedBytes, 16)
            XCTAssertNil(t.lookup(0))
            XCTAssertNil(t.lookup(0x1000))
            XCTAssertNil(t.lookup(UInt64.max))
        }
    }

    func testSymbolsAtTheBottomAndTopOfTheAddressSpace() {
        let edges = [Sym(start: 0, size: 1, name: "zero"), Sym(start: UInt64.max - 9, size: 9, name: "top")]
        withTable(blob(edges)) { t in
            guard let t else { return XCTFail("refused") }
            expect(t, 0, "zero", 0)
            XCTAssertNil(t.lookup(1))
            expect(t, UInt64.max - 1, "top", 8)
            XCTAssertNil(t.lookup(UInt64.max), "the last byte is not covered: top ends at 2^64 - 1")
        }
    }

    func testNamesAreExactBytesSharedAndPaddingIsIgnored() {
        let syms = [Sym(start: 0x10, size: 2, name: "Façade.ünïcode()"), Sym(start: 0x12, size: 2, name: "twin"),
                    Sym(start: 0x20, size: 2, name: "twin")]
        let bytes = blob(syms) + [UInt8](repeating: 0xAB, count: 100)   // garbage after the table
        withTable(bytes) { t in
            guard let t else { return XCTFail("trailing padding must be ignored") }
            XCTAssertEqual(t.usedBytes, bytes.count - 100)
            expect(t, 0x11, "Façade.ünïcode()", 1)
            expect(t, 0x12, "twin", 0)
            expect(t, 0x21, "twin", 1)
            XCTAssertEqual(t.lookup(0x10)!.name.count, "Façade.ünïcode()".utf8.count, "no terminator in the name")
        }
    }

    func testNamesOfTheMaximumLength() {
        let long = String(repeating: "x", count: 255)
        withTable(blob([Sym(start: 0x40, size: 1, name: long)])) { t in
            XCTAssertEqual(t.flatMap { find($0, 0x40) }?.0, long)
        }
    }

    // MARK: malformed tables

    func testShortBlobsAreRefused() {
        XCTAssertEqual(refusal([]), "shorter than its header")
        XCTAssertEqual(refusal(Array(blob([]).prefix(15))), "shorter than its header")
    }

    func testAnUnwrittenSectionIsReportedAsEmpty() {
        XCTAssertEqual(refusal([UInt8](repeating: 0, count: 256 * 1024)),
                       "empty section: the build did not write the table")
    }

    func testBadMagicAndVersion() {
        XCTAssertEqual(refusal(rawBlob(magic: Array("QSYN".utf8), entries: [], strings: [])), "bad magic")
        XCTAssertEqual(refusal(rawBlob(magic: Array("MYSQ".utf8), entries: [], strings: [])), "bad magic")
        XCTAssertEqual(refusal(rawBlob(version: 0, entries: [], strings: [])), "unknown version")
        XCTAssertEqual(refusal(rawBlob(version: 2, entries: [], strings: [])), "unknown version")
    }

    func testCountsBeyondTheBlobAreRefused() {
        let strings: [UInt8] = [1, 0x61]
        let one = [RawEntry(start: 0x1000, size: 1, nameOffset: 0)]
        XCTAssertNil(refusal(rawBlob(entries: one, strings: strings)))
        XCTAssertEqual(refusal(rawBlob(count: 2, entries: one, strings: [])), "entries run past the end")
        XCTAssertEqual(refusal(rawBlob(count: UInt32.max, entries: one, strings: strings)), "entries run past the end")
        XCTAssertEqual(refusal(rawBlob(count: 1 << 28, entries: one, strings: strings)), "entries run past the end")
        XCTAssertEqual(refusal(rawBlob(entries: one, strings: strings, stringBytes: 3)), "string area runs past the end")
        XCTAssertEqual(refusal(rawBlob(entries: one, strings: strings, stringBytes: UInt32.max)),
                       "string area runs past the end")
    }

    /// Every prefix of a valid table that cuts into it is refused; none traps.
    func testEveryTruncationIsRefused() {
        let bytes = blob(abc)
        for n in 0..<bytes.count {
            XCTAssertNotNil(refusal(Array(bytes.prefix(n))), "a table cut to \(n) of \(bytes.count) bytes was accepted")
        }
        XCTAssertNil(refusal(bytes))
    }

    func testBadEntriesAreRefused() {
        let s: [UInt8] = [1, 0x61, 1, 0x62]
        func entries(_ e: [RawEntry]) -> String? { refusal(rawBlob(entries: e, strings: s)) }
        XCTAssertEqual(entries([RawEntry(start: 0x1000, size: 0, nameOffset: 0)]), "an entry of size 0")
        XCTAssertEqual(entries([RawEntry(start: UInt64.max - 1, size: 2, nameOffset: 0)]),
                       "an entry wraps past the top of memory")
        XCTAssertEqual(entries([RawEntry(start: 0x2000, size: 4, nameOffset: 0), RawEntry(start: 0x1000, size: 4, nameOffset: 2)]),
                       "entries not sorted or overlapping", "descending")
        XCTAssertEqual(entries([RawEntry(start: 0x1000, size: 0x20, nameOffset: 0), RawEntry(start: 0x1010, size: 4, nameOffset: 2)]),
                       "entries not sorted or overlapping", "overlapping")
        XCTAssertEqual(entries([RawEntry(start: 0x1000, size: 4, nameOffset: 0), RawEntry(start: 0x1000, size: 4, nameOffset: 2)]),
                       "entries not sorted or overlapping", "same start")
        XCTAssertEqual(entries([RawEntry(start: 0x1000, size: 4, nameOffset: 4)]), "a name offset outside the string area")
        XCTAssertEqual(entries([RawEntry(start: 0x1000, size: 4, nameOffset: UInt32.max)]),
                       "a name offset outside the string area")
        // Adjacent entries are fine.
        XCTAssertNil(entries([RawEntry(start: 0x1000, size: 4, nameOffset: 0), RawEntry(start: 0x1004, size: 4, nameOffset: 2)]))
    }

    func testBadNamesAreRefused() {
        let e = [RawEntry(start: 0x1000, size: 4, nameOffset: 0)]
        XCTAssertEqual(refusal(rawBlob(entries: e, strings: [0, 0x61])), "an empty name")
        XCTAssertEqual(refusal(rawBlob(entries: e, strings: [3, 0x61, 0x62])), "a name runs past the string area")
        XCTAssertEqual(refusal(rawBlob(entries: e, strings: [255])), "a name runs past the string area")
        // Bytes after the string area (padding) do not complete a name that runs past it.
        XCTAssertEqual(refusal(rawBlob(entries: e, strings: [3, 0x61], padding: [0x62, 0x63, 0, 0])),
                       "a name runs past the string area")
        // The second entry's name is the bad one: the whole table goes.
        let two = [RawEntry(start: 0x1000, size: 4, nameOffset: 0), RawEntry(start: 0x1004, size: 4, nameOffset: 2)]
        XCTAssertEqual(refusal(rawBlob(entries: two, strings: [1, 0x61, 9, 0x62])), "a name runs past the string area")
    }

    /// Random corruption of a valid table: the reader refuses it or accepts it,
    /// and what it accepts it can look up in without leaving the blob.
    func testRandomCorruptionNeverTraps() {
        var rng = SplitMix64(state: 0x5157_4D59)
        let good = blob(abc)
        for _ in 0..<5000 {
            var bytes = good
            for _ in 0...Int.random(in: 0...3, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            withTable(bytes) { t in
                guard let t else { return }
                for a: UInt64 in [0, 0x1000, 0x100f, 0x1010, 0x1100, 0x1104, UInt64.random(in: 0...UInt64.max, using: &rng)] {
                    if let hit = t.lookup(a) {
                        XCTAssertGreaterThan(hit.name.count, 0)
                        XCTAssertLessThanOrEqual(hit.name.count, 255)
                    }
                }
            }
        }
    }

    // MARK: randomized against a linear scan

    func testRandomTablesAgreeWithALinearScan() {
        var rng = SplitMix64(state: 2026)
        for round in 0..<200 {
            var syms: [Sym] = []
            var at = UInt64.random(in: 0...0x10_0000, using: &rng)
            for i in 0..<Int.random(in: 0...300, using: &rng) {
                // Adjacent functions, small gaps (alignment) and large ones.
                at += [0, 0, 1, 3, 15, UInt64.random(in: 0...5000, using: &rng)][Int.random(in: 0..<6, using: &rng)]
                let size = UInt32.random(in: 1...(i % 7 == 0 ? 4000 : 64), using: &rng)
                syms.append(Sym(start: at, size: size, name: "f\(i % 50)_\(round)"))
                at += UInt64(size)
            }
            func model(_ a: UInt64) -> (String, UInt64)? {
                for s in syms where a >= s.start && a - s.start < UInt64(s.size) { return (s.name, a - s.start) }
                return nil
            }
            var probes: [UInt64] = [0, UInt64.max, at, at + 1]
            for s in syms {
                probes += [s.start, s.start &- 1, s.start + UInt64(s.size) - 1, s.start + UInt64(s.size)]
            }
            for _ in 0..<200 { probes.append(UInt64.random(in: 0...(at + 10), using: &rng)) }
            withTable(blob(syms, padding: Int.random(in: 0...64, using: &rng))) { t in
                guard let t else { return XCTFail("round \(round): a well-formed table was refused") }
                XCTAssertEqual(t.count, syms.count)
                for a in probes {
                    let got = find(t, a)
                    let want = model(a)
                    XCTAssertTrue(got?.0 == want?.0 && got?.1 == want?.1,
                                  "round \(round), address \(a): got \(String(describing: got)), want \(String(describing: want))")
                }
            }
        }
    }

    // MARK: the frame suffix

    private func line(_ prefix: String, name: String, offset: UInt64) -> (String, Bool) {
        var l = FixedLineBuffer()
        for b in prefix.utf8 { l.put(b) }
        Array(name.utf8).withUnsafeBytes { l.writeSymbol(name: $0, offset: offset) }
        return (l.withBytes { String(decoding: $0, as: UTF8.self) }, l.truncated)
    }

    private let frame = "    #1  0x0000000000115a3f"      // 26 bytes

    func testFrameSuffix() {
        XCTAssertEqual(line(frame, name: "static Scheduler.switchAway()", offset: 0x4f).0,
                       "    #1  0x0000000000115a3f  static Scheduler.switchAway() + 0x4f")
        XCTAssertEqual(line("", name: "cpu_touch", offset: 0).0, "  cpu_touch + 0x0")
        XCTAssertEqual(line("", name: "f", offset: UInt64.max).0, "  f + 0xffffffffffffffff")
    }

    func testLongNamesAreCutSoTheOffsetStillFits() {
        let (text, truncated) = line(frame, name: String(repeating: "a", count: 300), offset: 0x4f)
        XCTAssertFalse(truncated, "the suffix must fit, not be cut by the buffer")
        XCTAssertEqual(text.utf8.count, FixedLineBuffer.capacity)
        XCTAssertTrue(text.hasSuffix("aaa... + 0x4f"), text)
        // A name that just fits is not cut.
        let fits = String(repeating: "b", count: FixedLineBuffer.capacity - 26 - 2 - 7)
        XCTAssertEqual(line(frame, name: fits, offset: 0x4f).0, frame + "  " + fits + " + 0x4f")
    }

    func testNamesAreCutOnACharacterBoundary() {
        // 27 bytes before the name leave 220 - 3 = 217 for it: inside an "é".
        let (text, truncated) = line(frame + " ", name: String(repeating: "é", count: 150), offset: 0x4f)
        XCTAssertFalse(truncated)
        XCTAssertTrue(text.hasSuffix("éé... + 0x4f"), text)
        XCTAssertFalse(text.contains("\u{FFFD}"), "cut inside a character")
        XCTAssertEqual(text.utf8.count, FixedLineBuffer.capacity - 1)
    }

    func testAFullLineGetsNoSuffix() {
        let full = String(repeating: "x", count: FixedLineBuffer.capacity - 10)
        let (text, truncated) = line(full, name: "name", offset: 0x1234)
        XCTAssertEqual(text, full, "no room for '  n... + 0x1234': nothing appended")
        XCTAssertFalse(truncated)
    }
}
