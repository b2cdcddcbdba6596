// Multiboot.swift - the multiboot v1 information structure, checked.
//
// The boot loader leaves a structure in physical memory and its address in
// EBX. Everything in it is a 32-bit pointer or length written by software we
// do not control (QEMU, GRUB, a hand-made loader, a corrupted one), and the
// kernel builds its physical memory allocator from it: a bogus map entry
// that marks the kernel image, the page tables or MMIO as free RAM corrupts
// the kernel much later, far from the cause. So every field is treated as
// untrusted input:
//   - memory is read only through a PhysicalMemoryReader, which refuses any
//     range it cannot provide (outside the direct map, wrapping), so a wild
//     pointer yields a reported problem, not a fault;
//   - every length is bounded before it is used, every entry must lie wholly
//     inside the map, and the walk stops at the first malformed entry, since
//     after it the entry boundaries are guesses;
//   - regions are sanitised (empty ones skipped, wrapping ones clamped,
//     "available" clipped to the architectural physical address limit) and
//     where an available region overlaps any other kind, the other kind wins.
//
// Nothing here allocates: the kernel parses this before it has a heap. The
// result keeps only validated addresses and counts; the iteration helpers
// re-read the (validated) structures through the reader on each call.
//
// Layout (multiboot 0.6.96, section 3.3), little-endian u32 fields:
//   0 flags  4 mem_lower  8 mem_upper  12 boot_device  16 cmdline
//   20 mods_count  24 mods_addr  28..43 syms  44 mmap_length  48 mmap_addr
// Memory map entry: u32 size (of the rest of the entry), u64 base_addr,
// u64 length, u32 type; the next entry starts at entry + size + 4.
// Module: u32 mod_start, u32 mod_end (exclusive), u32 string, u32 reserved.

struct MultibootModule: Equatable {
    var start: UInt64
    var end: UInt64            // exclusive
    var string: PhysRange?     // the module's command line, NUL excluded
}

struct MultibootProblem {
    /// error: something was ignored, clipped or dropped. warning: odd but
    /// harmless.
    enum Severity { case warning, error }
    var severity: Severity
    var reason: StaticString
    var detail: UInt64
}

/// The first `capacity` problems; later ones are only counted, so a
/// pathological structure cannot flood the console or need a heap.
struct MultibootProblems {
    static let capacity = 16
    private var items = InlineArray<16, MultibootProblem>(
        repeating: MultibootProblem(severity: .warning, reason: "", detail: 0))
    private(set) var count = 0
    private(set) var dropped = 0
    /// Errors seen, dropped ones included.
    private(set) var errors = 0

    init() {}

    subscript(i: Int) -> MultibootProblem { items[i] }

    var hasErrors: Bool { errors > 0 }

    mutating func add(_ s: MultibootProblem.Severity, _ reason: StaticString, _ detail: UInt64 = 0) {
        if s == .error { errors += 1 }
        if count < MultibootProblems.capacity {
            items[count] = MultibootProblem(severity: s, reason: reason, detail: detail)
            count += 1
        } else {
            dropped += 1
        }
    }
}

struct MultibootInfo {
    static let bootloaderMagic: UInt32 = 0x2BAD_B002
    static let maxMapLength = 64 * 1024
    static let maxMapEntries = 128
    static let maxModules = 64
    static let maxStringLength = 4096          // NUL included
    // x86-64 physical addresses have at most 52 bits; RAM claimed above that
    // is a lie, and trusting it would let the allocator hand out addresses
    // the page tables cannot even express.
    static let physicalLimit: UInt64 = 1 << 52
    static let pageSize: UInt64 = 4096

    static let flagMem: UInt32 = 1 << 0
    static let flagCmdline: UInt32 = 1 << 2
    static let flagMods: UInt32 = 1 << 3
    static let flagAout: UInt32 = 1 << 4
    static let flagElf: UInt32 = 1 << 5
    static let flagMmap: UInt32 = 1 << 6

    /// Magic was right and the fixed part of the structure was readable.
    /// When false, no other field is meaningful.
    var valid = false
    var flags: UInt32 = 0
    var memLowerKiB: UInt32? = nil
    var memUpperKiB: UInt32? = nil
    /// The command line, NUL excluded; nil when absent or rejected.
    var cmdline: PhysRange? = nil
    /// The validated prefix of the memory map and its entry count (zero-length
    /// entries included). Entries after the first malformed one are not part
    /// of it.
    var memoryMap: PhysRange? = nil
    var memoryMapEntries = 0
    var modulesAddress: UInt64 = 0
    var moduleCount = 0
    var problems = MultibootProblems()

    // MARK: parsing

    static func parse<R: PhysicalMemoryReader>(magic: UInt32, infoAddress: UInt64, reader: R) -> MultibootInfo {
        var info = MultibootInfo()
        // Checked first: with the wrong magic we were not loaded by a
        // multiboot loader and EBX is not a pointer at all.
        if magic != bootloaderMagic {
            info.problems.add(.error, "bad multiboot magic", UInt64(magic))
            return info
        }
        guard let head = reader.bytes(at: infoAddress, count: 4) else {
            info.problems.add(.error, "info structure not readable", infoAddress)
            return info
        }
        let flags = u32(head, 0)
        // Read only as much as the flags say is present, so that a minimal
        // structure at the very end of readable memory is still accepted.
        var need = 4
        if flags & flagMem != 0 { need = 12 }
        if flags & 0x2 != 0 { need = 16 }
        if flags & flagCmdline != 0 { need = 20 }
        if flags & flagMods != 0 { need = 28 }
        if flags & (flagAout | flagElf) != 0 { need = 44 }
        if flags & flagMmap != 0 { need = 52 }
        guard let raw = reader.bytes(at: infoAddress, count: need) else {
            info.problems.add(.error, "info structure not readable", infoAddress)
            return info
        }
        info.valid = true
        info.flags = flags
        if flags & (flagAout | flagElf) == flagAout | flagElf {
            info.problems.add(.warning, "both a.out and ELF symbol flags set", UInt64(flags))
        }

        if flags & flagMem != 0 {
            let lower = u32(raw, 4)
            // Conventional memory ends at 640 KiB; more is corruption.
            if lower > 640 {
                info.problems.add(.error, "mem_lower above 640 KiB; ignored", UInt64(lower))
            } else {
                info.memLowerKiB = lower
            }
            info.memUpperKiB = u32(raw, 8)
        }

        if flags & flagCmdline != 0 {
            let addr = UInt64(u32(raw, 16))
            if addr == 0 {
                info.problems.add(.error, "command line pointer is null", 0)
            } else {
                switch stringLength(reader, at: addr) {
                case .ok(let n): info.cmdline = PhysRange(base: addr, end: addr + UInt64(n))
                case .unreadable: info.problems.add(.error, "command line not readable", addr)
                case .unterminated: info.problems.add(.error, "command line not terminated", addr)
                }
            }
        }

        if flags & flagMods != 0 {
            info.parseModules(count: u32(raw, 20), address: UInt64(u32(raw, 24)), reader)
        }

        if flags & flagMmap != 0 {
            info.parseMemoryMap(length: u32(raw, 44), address: UInt64(u32(raw, 48)), reader)
        }
        if info.memoryMapEntries == 0 {
            if info.memLowerKiB != nil || info.memUpperKiB != nil {
                info.problems.add(.warning, "no memory map; using mem_lower/mem_upper", 0)
            } else {
                info.problems.add(.error, "no memory information at all", UInt64(flags))
            }
        }
        return info
    }

    private mutating func parseModules<R: PhysicalMemoryReader>(count: UInt32, address: UInt64, _ reader: R) {
        if count == 0 { return }
        // A huge count is a corrupt field, not 10^9 modules; refuse all of
        // them rather than trust a table whose size we already know is wrong.
        if count > UInt32(MultibootInfo.maxModules) {
            problems.add(.error, "too many modules; all ignored", UInt64(count))
            return
        }
        guard reader.bytes(at: address, count: Int(count) * 16) != nil else {
            problems.add(.error, "module table not readable", address)
            return
        }
        modulesAddress = address
        moduleCount = Int(count)
        var i = 0
        while i < moduleCount {
            if let p = MultibootInfo.readModule(i, table: address, reader).1 {
                problems.add(p.severity, p.reason, p.detail)
            }
            i += 1
        }
    }

    private mutating func parseMemoryMap<R: PhysicalMemoryReader>(length: UInt32, address: UInt64, _ reader: R) {
        if length == 0 {
            problems.add(.error, "memory map empty", address)
            return
        }
        // 128 entries of 24 bytes need 3 KiB; 64 KiB is generous, and the
        // bound keeps a corrupt length from making us scan megabytes.
        if length > UInt32(MultibootInfo.maxMapLength) {
            problems.add(.error, "memory map length > 64 KiB; ignored", UInt64(length))
            return
        }
        guard let map = reader.bytes(at: address, count: Int(length)) else {
            problems.add(.error, "memory map not readable", address)
            return
        }
        var walker = MapWalker(map: map)
        var good = 0
        var count = 0
        var available = 0
        loop: while true {
            switch walker.next() {
            case .end:
                break loop
            case .malformed(let reason, let detail):
                problems.add(.error, reason, detail)
                break loop
            case .entry(let base, let len, let type):
                if count == MultibootInfo.maxMapEntries {
                    problems.add(.error, "more than 128 map entries; rest ignored", UInt64(count))
                    break loop
                }
                let (region, problem) = MultibootInfo.sanitize(base: base, length: len, type: type)
                if let p = problem { problems.add(p.severity, p.reason, p.detail) }
                if let r = region {
                    if r.type == .available { available += 1 }
                    checkOverlaps(r, previous: UnsafeRawBufferPointer(rebasing: map[0..<good]))
                }
                count += 1
                good = walker.offset
            }
        }
        if count > 0 {
            memoryMap = PhysRange(base: address, end: address + UInt64(good))
            memoryMapEntries = count
            if available == 0 { problems.add(.error, "memory map lists no available RAM", address) }
        }
    }

    // Reports overlaps between `r` and the entries before it. Overlaps that
    // involve no available region are harmless and not reported.
    private mutating func checkOverlaps(_ r: MemoryRegion, previous: UnsafeRawBufferPointer) {
        var walker = MapWalker(map: previous)
        while case .entry(let b, let l, let t) = walker.next() {
            guard let q = MultibootInfo.sanitize(base: b, length: l, type: t).0 else { continue }
            if q.base >= r.end || r.base >= q.end { continue }
            let ra = r.type == .available, qa = q.type == .available
            if ra && qa {
                problems.add(.warning, "available regions overlap", r.base)
            } else if ra || qa {
                problems.add(.error, "available region overlaps reserved; reserved wins", r.base)
            }
        }
    }

    /// Makes an entry safe to compute with, or drops it. Returns the region
    /// (nil when dropped) and at most one problem.
    static func sanitize(base: UInt64, length: UInt64, type raw: UInt32)
        -> (MemoryRegion?, MultibootProblem?)
    {
        let type = MemoryType(raw: raw)
        if length == 0 {
            return (nil, MultibootProblem(severity: .warning, reason: "zero-length region skipped", detail: base))
        }
        let (end, wraps) = base.addingReportingOverflow(length)
        if type == .available && (wraps || end > physicalLimit) {
            if base >= physicalLimit {
                return (nil, MultibootProblem(severity: .error,
                    reason: "available region above 2^52; dropped", detail: base))
            }
            return (MemoryRegion(base: base, length: physicalLimit - base, type: type),
                    MultibootProblem(severity: .error,
                        reason: "available region past 2^52; clipped", detail: base))
        }
        if wraps {
            // Clamped to end at 2^64 - 1: the last byte is lost, which no
            // physical address can name anyway.
            return (MemoryRegion(base: base, length: UInt64.max - base, type: type),
                    MultibootProblem(severity: .error, reason: "region wraps past 2^64; clamped", detail: base))
        }
        return (MemoryRegion(base: base, length: length, type: type), nil)
    }

    // MARK: low level

    static func u32(_ b: UnsafeRawBufferPointer, _ off: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: off, as: UInt32.self))
    }

    static func u64(_ b: UnsafeRawBufferPointer, _ off: Int) -> UInt64 {
        UInt64(littleEndian: b.loadUnaligned(fromByteOffset: off, as: UInt64.self))
    }

    enum StringScan: Equatable { case ok(Int), unreadable, unterminated }

    /// Length (NUL excluded) of the string at `address`, which must end
    /// within maxStringLength bytes, NUL included.
    static func stringLength<R: PhysicalMemoryReader>(_ reader: R, at address: UInt64) -> StringScan {
        // Fast path: the whole window readable at once. Otherwise go byte by
        // byte, since a short string may legitimately sit at the very end of
        // readable memory.
        if let b = reader.bytes(at: address, count: maxStringLength) {
            var i = 0
            while i < b.count { if b[i] == 0 { return .ok(i) }; i += 1 }
            return .unterminated
        }
        var i = 0
        while i < maxStringLength {
            guard let b = reader.bytes(at: address &+ UInt64(i), count: 1) else { return .unreadable }
            if b[0] == 0 { return .ok(i) }
            i += 1
        }
        return .unterminated
    }

    /// Steps through memory map entries, checking each entry's extent
    /// before reading it.
    struct MapWalker {
        enum Step {
            case entry(base: UInt64, length: UInt64, type: UInt32)
            case end
            case malformed(StaticString, UInt64)
        }
        let map: UnsafeRawBufferPointer
        var offset = 0

        init(map: UnsafeRawBufferPointer) { self.map = map }

        mutating func next() -> Step {
            let left = map.count - offset
            if left == 0 { return .end }
            if left < 4 { return .malformed("truncated map entry", UInt64(offset)) }
            let size = Int(u32(map, offset))
            // size counts the bytes after the size field; anything smaller
            // than base + length + type would make us read the next entry
            // (or past the map) as this one's fields.
            if size < 20 { return .malformed("map entry size < 20", UInt64(size)) }
            if size > left - 4 { return .malformed("map entry runs past end of map", UInt64(offset)) }
            let step = Step.entry(base: u64(map, offset + 4), length: u64(map, offset + 12),
                                  type: u32(map, offset + 20))
            offset += 4 + size
            return step
        }
    }
}
