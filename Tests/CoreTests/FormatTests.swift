import XCTest
@testable import QuartetCore

private struct ArraySink: TextOutput {
    var bytes: [UInt8] = []
    mutating func put(_ byte: UInt8) { bytes.append(byte) }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

private func fmt(_ body: (inout ArraySink) -> Void) -> String {
    var s = ArraySink()
    body(&s)
    return s.text
}

final class FormatTests: XCTestCase {
    func testWriteStaticStringStringAndBytes() {
        XCTAssertEqual(fmt { $0.write("abc") }, "abc")
        let dynamic = String(repeating: "é", count: 2)
        XCTAssertEqual(fmt { $0.write(dynamic) }, "éé")
        let raw: [UInt8] = [0x68, 0x69]
        XCTAssertEqual(fmt { s in raw.withUnsafeBytes { s.write(bytes: $0) } }, "hi")
        XCTAssertEqual(fmt { $0.write("") }, "")
    }

    func testUnsignedDecimal() {
        XCTAssertEqual(fmt { $0.dec(UInt64(0)) }, "0")
        XCTAssertEqual(fmt { $0.dec(UInt64(7)) }, "7")
        XCTAssertEqual(fmt { $0.dec(UInt64(10)) }, "10")
        XCTAssertEqual(fmt { $0.dec(UInt64(1_000_000)) }, "1000000")
        XCTAssertEqual(fmt { $0.dec(UInt64.max) }, "18446744073709551615")
        XCTAssertEqual(fmt { $0.dec(UInt64(10_000_000_000_000_000_000)) }, "10000000000000000000")
    }

    func testSignedDecimal() {
        XCTAssertEqual(fmt { $0.dec(0) }, "0")
        XCTAssertEqual(fmt { $0.dec(-1) }, "-1")
        XCTAssertEqual(fmt { $0.dec(42) }, "42")
        XCTAssertEqual(fmt { $0.dec(Int.max) }, "9223372036854775807")
        XCTAssertEqual(fmt { $0.dec(Int.min) }, "-9223372036854775808")
    }

    func testPaddedDecimal() {
        XCTAssertEqual(fmt { $0.dec(UInt64(42), width: 5) }, "   42")
        XCTAssertEqual(fmt { $0.dec(UInt64(42), width: 5, pad: 0x30) }, "00042")
        XCTAssertEqual(fmt { $0.dec(-42, width: 5) }, "  -42")
        XCTAssertEqual(fmt { $0.dec(-42, width: 5, pad: 0x30) }, "-0042")
        // Width smaller than the digits: never truncated.
        XCTAssertEqual(fmt { $0.dec(UInt64(123456), width: 2) }, "123456")
        XCTAssertEqual(fmt { $0.dec(-123, width: 3, pad: 0x30) }, "-123")
        XCTAssertEqual(fmt { $0.dec(Int.min, width: 0) }, "-9223372036854775808")
        XCTAssertEqual(fmt { $0.dec(0, width: -3) }, "0")
    }

    func testHex() {
        XCTAssertEqual(fmt { $0.hex(0) }, "0x0")
        XCTAssertEqual(fmt { $0.hex(0, prefix: false) }, "0")
        XCTAssertEqual(fmt { $0.hex(0xdeadBEEF) }, "0xdeadbeef")
        XCTAssertEqual(fmt { $0.hex(0x1f, width: 4) }, "0x001f")
        XCTAssertEqual(fmt { $0.hex(0x1f, width: 4, prefix: false) }, "001f")
        XCTAssertEqual(fmt { $0.hex(UInt64.max) }, "0xffffffffffffffff")
        XCTAssertEqual(fmt { $0.hex(0x123456, width: 2) }, "0x123456")
        XCTAssertEqual(fmt { $0.hex(0x8000_0000_0000_0000, width: 16) }, "0x8000000000000000")
        XCTAssertEqual(fmt { $0.hex(0x10) }, "0x10")
    }

    func testPadRight() {
        XCTAssertEqual(fmt { $0.padRight("cpu", width: 6); $0.write("|") }, "cpu   |")
        XCTAssertEqual(fmt { $0.padRight("toolong", width: 3); $0.write("|") }, "toolong|")
        let s = String("ab".reversed())
        XCTAssertEqual(fmt { $0.padRight(string: s, width: 4); $0.write("|") }, "ba  |")
    }

    func testPadRightCountsBytesNotCharacters() {
        // "é" is two UTF-8 bytes, so one space fills a width of 3.
        XCTAssertEqual(fmt { $0.padRight("é", width: 3); $0.write("|") }, "é |")
        XCTAssertEqual(fmt { $0.padRight(string: "é", width: 3); $0.write("|") }, "é |")
    }

    func testBytes() {
        XCTAssertEqual(fmt { $0.bytes(0) }, "0 B")
        XCTAssertEqual(fmt { $0.bytes(512) }, "512 B")
        XCTAssertEqual(fmt { $0.bytes(1023) }, "1023 B")
        XCTAssertEqual(fmt { $0.bytes(1024) }, "1 KiB")
        XCTAssertEqual(fmt { $0.bytes(4096) }, "4 KiB")
        XCTAssertEqual(fmt { $0.bytes(0x7fe0000) }, "127 MiB")   // 127.875 truncated
        XCTAssertEqual(fmt { $0.bytes(1 << 30) }, "1 GiB")
        XCTAssertEqual(fmt { $0.bytes(1 << 40) }, "1 TiB")
        XCTAssertEqual(fmt { $0.bytes(UInt64.max) }, "15 EiB")
    }

    func testLineBufferCollectsAndTruncates() {
        var line = FixedLineBuffer()
        line.write("cpu ")
        line.dec(3)
        XCTAssertEqual(line.count, 5)
        XCTAssertFalse(line.truncated)
        XCTAssertEqual(line.withBytes { String(decoding: $0, as: UTF8.self) }, "cpu 3")

        for _ in 0..<300 { line.put(0x78) }
        XCTAssertEqual(line.count, FixedLineBuffer.capacity)
        XCTAssertTrue(line.truncated)
        let bytes = line.withBytes { Array($0) }
        XCTAssertEqual(bytes.count, 256)
        XCTAssertEqual(Array(bytes.prefix(5)), Array("cpu 3".utf8))
        XCTAssertTrue(bytes.dropFirst(5).allSatisfy { $0 == 0x78 })

        line.reset()
        XCTAssertEqual(line.count, 0)
        XCTAssertFalse(line.truncated)
        XCTAssertEqual(line.withBytes { $0.count }, 0)
    }

    func testLineBufferExactlyFullIsNotTruncated() {
        var line = FixedLineBuffer()
        for _ in 0..<FixedLineBuffer.capacity { line.put(0x41) }
        XCTAssertFalse(line.truncated)
        line.put(0x42)
        XCTAssertTrue(line.truncated)
        XCTAssertEqual(line.withBytes { $0.last }, 0x41)
    }
}
