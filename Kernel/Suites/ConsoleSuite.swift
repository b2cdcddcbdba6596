// console: the formatter behind every line the kernel prints, checked inside the
// kernel (the host tests check the same code; this proves the embedded build).

enum ConsoleSuite {
    static let suite = TestSuite(name: "console", kind: .normal,
                                 summary: "formatting: decimal, hex, padding, truncation", body: run)

    private static func formats(_ expected: StaticString, _ body: (inout FixedLineBuffer) -> Void) -> Bool {
        var b = FixedLineBuffer()
        body(&b)
        return b.withBytes { got in
            expected.withUTF8Buffer { want in
                got.count == want.count && zip(got, want).allSatisfy { $0 == $1 }
            }
        }
    }

    static func run(_ t: inout TestContext) {
        t.expect("dec-zero", formats("0") { $0.dec(0) }, "decimal zero")
        t.expect("int-min", formats("-9223372036854775808") { $0.dec(Int.min) }, "Int.min")
        t.expect("uint64-max", formats("18446744073709551615") { $0.dec(UInt64.max) }, "UInt64.max")
        t.expect("hex-width", formats("0x00ff") { $0.hex(0xff, width: 4) }, "hex zero-padded to width")
        t.expect("hex-noprefix", formats("deadbeef") { $0.hex(0xdead_beef, prefix: false) }, "hex without prefix")
        t.expect("dec-right", formats("   42") { $0.dec(42, width: 5) }, "decimal right-aligned")
        t.expect("dec-zero-pad", formats("-0042") { $0.dec(-42, width: 5, pad: 0x30) }, "zero padding keeps the sign first")
        t.expect("pad-right", formats("ab   |") { $0.padRight("ab", width: 5); $0.write("|") }, "left-aligned text")
        t.expect("bytes", formats("127 MiB") { $0.bytes(127 << 20) }, "byte sizes")
        var long = FixedLineBuffer()
        for _ in 0..<(FixedLineBuffer.capacity + 10) { long.put(0x78) }
        t.expect("truncates", long.count == FixedLineBuffer.capacity && long.truncated, "line buffer truncates and says so")
        t.expect("utf8", formats("héllo") { $0.write("héllo" as String) }, "UTF-8 String bytes")
    }
}
