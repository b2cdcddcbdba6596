// SymbolTable.swift - names for kernel code addresses, from a table in the image.
//
// Fault and panic backtraces name their own frames: after the link,
// scripts/symbols.sh lists the kernel's text symbols, demangles them
// (swift-demangle --simplified) and writes this table into the zero-filled
// .ksymtab section that Boot/symtab.asm reserves. The reader runs inside fault
// and panic reports, so it never allocates, never locks and never traps on bad
// input. The table is treated as untrusted, as Multiboot.swift treats the boot
// loader's structure: a section the build never filled (all zeros), a truncated
// or corrupted table is refused as a whole, and the reports print bare
// addresses. Validation costs one pass over the entries (not over the names),
// once, at boot; a lookup is a binary search.
//
// Format, version 1. Little-endian; nothing is assumed aligned.
//   0   4 bytes  magic "QSYM"
//   4   u32      version (1)
//   8   u32      count: number of entries
//   12  u32      stringBytes: size of the string area
//   16  count entries of 16 bytes, sorted by start:
//         u64  start       the symbol's first byte
//         u32  size        bytes it covers, at least 1
//         u32  nameOffset  where its name starts in the string area
//   16 + 16 * count: the string area, stringBytes long. A name is one length
//       byte (1...255) and that many bytes of UTF-8; entries may share a name.
//   Whatever follows the string area is padding (the reserved section is larger
//   than the table) and is ignored.
// Every entry must end at or before the next one starts (start + size, without
// wrapping past 2^64), so an address belongs to at most one entry; an address
// between two entries (alignment padding) belongs to none.

struct SymbolTable {
    static let magic: UInt32 = 0x4D59_5351      // "QSYM" read as a little-endian u32
    static let version: UInt32 = 1
    static let headerSize = 16
    static let entrySize = 16

    /// The verdict on a blob: its entry count and how many bytes the table
    /// proper uses (header, entries, strings), or why it was refused.
    enum Check {
        case valid(count: Int, usedBytes: Int)
        case invalid(StaticString)
    }

    /// Number of entries (symbols).
    let count: Int
    /// Bytes used by the header, the entries and the string area.
    let usedBytes: Int
    private let bytes: UnsafeRawBufferPointer
    private let stringsStart: Int

    /// nil when `bytes` is not a well-formed table (see `check` for why).
    init?(bytes: UnsafeRawBufferPointer) {
        guard case .valid(let count, let used) = SymbolTable.check(bytes) else { return nil }
        self.bytes = bytes
        self.count = count
        self.usedBytes = used
        self.stringsStart = SymbolTable.headerSize + count * SymbolTable.entrySize
    }

    static func check(_ bytes: UnsafeRawBufferPointer) -> Check {
        guard bytes.baseAddress != nil, bytes.count >= headerSize else { return .invalid("shorter than its header") }
        if u32(bytes, 0) != magic {
            var zero = true
            for i in 0..<headerSize where bytes[i] != 0 { zero = false }
            return .invalid(zero ? "empty section: the build did not write the table" : "bad magic")
        }
        guard u32(bytes, 4) == version else { return .invalid("unknown version") }
        let count = Int(u32(bytes, 8))
        let stringBytes = Int(u32(bytes, 12))
        // u32 fields and a 64-bit Int cannot wrap here; the checks make that a
        // property of the code rather than an assumption about the target.
        let (entryBytes, o1) = count.multipliedReportingOverflow(by: entrySize)
        let (stringsStart, o2) = headerSize.addingReportingOverflow(entryBytes)
        guard !o1, !o2, stringsStart <= bytes.count else { return .invalid("entries run past the end") }
        let (used, o3) = stringsStart.addingReportingOverflow(stringBytes)
        guard !o3, used <= bytes.count else { return .invalid("string area runs past the end") }

        var previousEnd: UInt64 = 0
        var i = 0
        while i < count {
            let at = headerSize + i * entrySize
            let start = u64(bytes, at)
            let size = u32(bytes, at + 8)
            let nameOffset = Int(u32(bytes, at + 12))
            guard size > 0 else { return .invalid("an entry of size 0") }
            let (end, wraps) = start.addingReportingOverflow(UInt64(size))
            guard !wraps else { return .invalid("an entry wraps past the top of memory") }
            guard start >= previousEnd else { return .invalid("entries not sorted or overlapping") }
            guard nameOffset < stringBytes else { return .invalid("a name offset outside the string area") }
            let length = Int(bytes[stringsStart + nameOffset])
            guard length > 0 else { return .invalid("an empty name") }
            guard nameOffset + 1 + length <= stringBytes else { return .invalid("a name runs past the string area") }
            previousEnd = end
            i += 1
        }
        return .valid(count: count, usedBytes: used)
    }

    /// The symbol `address` lies in: its name (UTF-8, no terminator) and the
    /// distance from its start. nil before the first symbol, after the last,
    /// and in a gap between two.
    func lookup(_ address: UInt64) -> (name: UnsafeRawBufferPointer, offset: UInt64)? {
        // The first entry that starts after `address`; the one before it is the
        // only candidate.
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if start(mid) <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let i = lo - 1
        let offset = address - start(i)
        guard offset < UInt64(SymbolTable.u32(bytes, SymbolTable.headerSize + i * SymbolTable.entrySize + 8)) else {
            return nil
        }
        let nameAt = stringsStart + Int(SymbolTable.u32(bytes, SymbolTable.headerSize + i * SymbolTable.entrySize + 12))
        let length = Int(bytes[nameAt])
        return (UnsafeRawBufferPointer(rebasing: bytes[(nameAt + 1)..<(nameAt + 1 + length)]), offset)
    }

    private func start(_ i: Int) -> UInt64 {
        SymbolTable.u64(bytes, SymbolTable.headerSize + i * SymbolTable.entrySize)
    }

    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    private static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

extension FixedLineBuffer {
    /// Appends "  NAME + 0xOFFSET", a backtrace frame's symbol. The offset is
    /// always printed: a name too long for the rest of the line is cut (on a
    /// UTF-8 boundary) and ends in "...", and when not even that fits nothing
    /// is appended, so the line never ends in half a suffix.
    mutating func writeSymbol(name: UnsafeRawBufferPointer, offset: UInt64) {
        let digits = offset == 0 ? 1 : (64 - offset.leadingZeroBitCount + 3) / 4
        let room = FixedLineBuffer.capacity - count - 2 - 5 - digits   // "  " NAME " + 0x" digits
        var keep = name.count
        var cut = false
        if keep > room {
            guard room >= 4 else { return }                 // one byte of name and "..."
            keep = room - 3
            while keep > 0 && name[keep] & 0xC0 == 0x80 { keep -= 1 }   // not inside a character
            cut = true
        }
        write("  ")
        write(bytes: UnsafeRawBufferPointer(rebasing: name[0..<keep]))
        if cut { write("...") }
        write(" + ")
        hex(offset)
    }
}
