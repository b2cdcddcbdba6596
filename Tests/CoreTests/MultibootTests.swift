import XCTest
@testable import QuartetCore

/// Host memory posing as physical memory at a fake base address.
private struct FakeMemory: PhysicalMemoryReader {
    let base: UInt64
    let buf: UnsafeMutableRawBufferPointer

    init(base: UInt64, size: Int) {
        self.base = base
        buf = .allocate(byteCount: size, alignment: 16)
        buf.initializeMemory(as: UInt8.self, repeating: 0)
    }

    func free() { buf.deallocate() }

    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, address >= base else { return nil }
        let off = address - base
        guard off <= UInt64(buf.count), UInt64(count) <= UInt64(buf.count) - off else { return nil }
        return UnsafeRawBufferPointer(rebasing: buf[Int(off)..<(Int(off) + count)])
    }

    func w32(_ a: UInt64, _ v: UInt32) { buf.storeBytes(of: v.littleEndian, toByteOffset: Int(a - base), as: UInt32.self) }
    func w64(_ a: UInt64, _ v: UInt64) {
        w32(a, UInt32(truncatingIfNeeded: v)); w32(a + 4, UInt32(truncatingIfNeeded: v >> 32))
    }
    func w(_ a: UInt64, _ bytes: [UInt8]) {
        for (i, b) in bytes.enumerated() { buf[Int(a - base) + i] = b }
    }
    func string(_ a: UInt64, _ s: String) { w(a, Array(s.utf8) + [0]) }
}

private struct Entry {
    var base: UInt64, length: UInt64, type: UInt32, size: UInt32 = 20
}

private let qemuMap: [Entry] = [
    Entry(base: 0, length: 0x9fc00, type: 1),
    Entry(base: 0x9fc00, length: 0x400, type: 2),
    Entry(base: 0xf0000, length: 0x10000, type: 2),
    Entry(base: 0x100000, length: 0x7ee0000, type: 1),
    Entry(base: 0x7fe0000, length: 0x20000, type: 2),
    Entry(base: 0xfffc0000, length: 0x40000, type: 2),
]

private let magic: UInt32 = 0x2BAD_B002

final class MultibootTests: XCTestCase {
    // Layout inside the fake window.
    let base: UInt64 = 0x10000
    var info: UInt64 { base }
    var cmdAddr: UInt64 { base + 0x100 }
    var mapAddr: UInt64 { base + 0x1000 }
    var modAddr: UInt64 { base + 0x3000 }
    var modStr: UInt64 { base + 0x3800 }
    let size = 0x20000
    private var mem: FakeMemory!

    override func setUp() { mem = FakeMemory(base: base, size: size) }
    override func tearDown() { mem.free() }

    /// Writes the map at mapAddr; returns mmap_length.
    @discardableResult
    private func writeMap(_ entries: [Entry], at addr: UInt64? = nil) -> UInt32 {
        var a = addr ?? mapAddr
        let start = a
        for e in entries {
            mem.w32(a, e.size)
            mem.w64(a + 4, e.base)
            mem.w64(a + 12, e.length)
            mem.w32(a + 20, e.type)
            a += 4 + UInt64(min(e.size, 0x1000))   // a lying size field still gets its 24 bytes
        }
        return UInt32(a - start)
    }

    private func writeInfo(flags: UInt32, memLower: UInt32 = 639, memUpper: UInt32 = 0x1fb80,
                           cmdline: UInt64 = 0, modsCount: UInt32 = 0, modsAddr: UInt64 = 0,
                           mmapLength: UInt32 = 0, mmapAddr: UInt64 = 0) {
        mem.w32(info, flags)
        mem.w32(info + 4, memLower)
        mem.w32(info + 8, memUpper)
        mem.w32(info + 16, UInt32(cmdline))
        mem.w32(info + 20, modsCount)
        mem.w32(info + 24, UInt32(modsAddr))
        mem.w32(info + 44, mmapLength)
        mem.w32(info + 48, UInt32(mmapAddr))
    }

    private func parseMap(_ entries: [Entry]) -> MultibootInfo {
        let len = writeMap(entries)
        writeInfo(flags: 1 << 6, mmapLength: len, mmapAddr: mapAddr)
        return MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
    }

    private func reasons(_ i: MultibootInfo) -> [String] {
        (0..<i.problems.count).map { i.problems[$0].reason.description }
    }

    private func regions(_ i: MultibootInfo) -> [MemoryRegion] {
        var out: [MemoryRegion] = []
        i.forEachMemoryRegion(mem) { out.append($0) }
        return out
    }

    private func ranges(_ i: MultibootInfo, capacity: Int = 128) -> [PhysRange] {
        let store = UnsafeMutableBufferPointer<PhysRange>.allocate(capacity: capacity)
        defer { store.deallocate() }
        let n = i.availableRanges(mem, into: store)
        return Array(store.prefix(n))
    }

    private func modules(_ i: MultibootInfo) -> [MultibootModule] {
        var out: [MultibootModule] = []
        i.forEachModule(mem) { out.append($0) }
        return out
    }

    private func r(_ b: UInt64, _ e: UInt64) -> PhysRange { PhysRange(base: b, end: e) }

    // MARK: well-formed

    func testQemuLikeInfo() {
        mem.string(cmdAddr, "build/kernel.elf run=all smp=4")
        let len = writeMap(qemuMap)
        for (k, (s, e, name)) in [(0x200000, 0x210000, "initrd"), (0x300000, 0x300000, "")].enumerated() {
            let m = modAddr + UInt64(k) * 16
            mem.w32(m, UInt32(s)); mem.w32(m + 4, UInt32(e)); mem.w32(m + 8, UInt32(modStr + UInt64(k) * 64))
            mem.string(modStr + UInt64(k) * 64, name)
        }
        writeInfo(flags: 1 | 1 << 2 | 1 << 3 | 1 << 6, cmdline: cmdAddr, modsCount: 2, modsAddr: modAddr,
                  mmapLength: len, mmapAddr: mapAddr)

        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertTrue(i.valid)
        XCTAssertEqual(i.problems.count, 0, "\(reasons(i))")
        XCTAssertFalse(i.problems.hasErrors)
        XCTAssertEqual(i.memLowerKiB, 639)
        XCTAssertEqual(i.memUpperKiB, 0x1fb80)
        XCTAssertEqual(i.memoryMapEntries, 6)
        XCTAssertEqual(i.memoryMap, r(mapAddr, mapAddr + 6 * 24))

        let cmd = i.cmdlineBytes(mem).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(cmd, "build/kernel.elf run=all smp=4")
        let parsed = KernelCommandLine.parse(i.cmdlineBytes(mem)!)
        XCTAssertEqual(parsed.value(for: "smp"), "4")

        let regs = regions(i)
        XCTAssertEqual(regs.count, 6)
        XCTAssertEqual(regs[0], MemoryRegion(base: 0, length: 0x9fc00, type: .available))
        XCTAssertEqual(regs[1].type, .reserved(2))
        XCTAssertEqual(regs[5].end, 0x1_0000_0000)

        XCTAssertEqual(ranges(i), [r(0, 0x9f000), r(0x100000, 0x7fe0000)])
        let sum = i.availableSummary(mem)
        XCTAssertEqual(sum.totalBytes, 0x9f000 + 0x7ee0000)
        XCTAssertEqual(sum.highestEnd, 0x7fe0000)

        XCTAssertTrue(i.isAvailable(mem, r(0x200000, 0x300000)))
        XCTAssertTrue(i.isAvailable(mem, r(0x9f000, 0x9fc00)))    // sub-page tail, unaligned
        XCTAssertFalse(i.isAvailable(mem, r(0x9f000, 0x9fc01)))
        XCTAssertFalse(i.isAvailable(mem, r(0x7fd0000, 0x7fe1000)))
        XCTAssertFalse(i.isAvailable(mem, r(0x90000, 0x110000)))  // spans the hole
        XCTAssertFalse(i.isAvailable(mem, r(0x200000, 0x200000))) // empty
        XCTAssertFalse(i.isAvailable(mem, r(0x9000_0000, 0x9000_1000)))

        let mods = modules(i)
        XCTAssertEqual(mods.count, 2)
        XCTAssertEqual(mods[0].start, 0x200000)
        XCTAssertEqual(mods[0].end, 0x210000)
        XCTAssertEqual(mods[0].string, r(modStr, modStr + 6))
        XCTAssertEqual(mods[1].string?.length, 0)
    }

    func testEntriesWithLargerSizeFieldAreStepped() {
        // Some loaders add fields after type; size tells us where the next
        // entry is.
        let i = parseMap([Entry(base: 0x100000, length: 0x100000, type: 1, size: 28),
                          Entry(base: 0x180000, length: 0x1000, type: 2)])
        XCTAssertEqual(i.memoryMapEntries, 2)
        XCTAssertEqual(regions(i).map(\.type), [.available, .reserved(2)])
        XCTAssertEqual(ranges(i), [r(0x100000, 0x180000), r(0x181000, 0x200000)])
    }

    func testUnsortedMapGivesSortedRangesAndAcpiIsNotAvailable() {
        let i = parseMap([Entry(base: 0x400000, length: 0x100000, type: 1),
                          Entry(base: 0x100000, length: 0x100000, type: 1),
                          Entry(base: 0x200000, length: 0x1000, type: 3),
                          Entry(base: 0x201000, length: 0x1000, type: 4),
                          Entry(base: 0x300000, length: 0x1000, type: 5)])
        XCTAssertEqual(ranges(i), [r(0x100000, 0x200000), r(0x400000, 0x500000)])
        XCTAssertEqual(regions(i).map(\.type), [.available, .available, .acpiReclaimable, .acpiNVS, .bad])
    }

    func testAdjacentAvailableRegionsMerge() {
        let i = parseMap([Entry(base: 0x100000, length: 0x100800, type: 1),
                          Entry(base: 0x200800, length: 0x100000, type: 1)])
        // Merged before page alignment: the seam at 0x200800 loses nothing.
        XCTAssertEqual(ranges(i), [r(0x100000, 0x300000)])
        XCTAssertEqual(i.problems.count, 0)
    }

    // MARK: magic and the info structure

    func testBadMagicStopsEverything() {
        writeInfo(flags: 1 << 6, mmapLength: writeMap(qemuMap), mmapAddr: mapAddr)
        let i = MultibootInfo.parse(magic: 0x36D7_6289, infoAddress: info, reader: mem)  // multiboot2's
        XCTAssertFalse(i.valid)
        XCTAssertEqual(reasons(i), ["bad multiboot magic"])
        XCTAssertEqual(i.problems[0].detail, 0x36D7_6289)
        XCTAssertEqual(i.memoryMapEntries, 0)
        XCTAssertEqual(ranges(i), [])
    }

    func testInfoNotReadable() {
        let i = MultibootInfo.parse(magic: magic, infoAddress: 0x1234_5678, reader: mem)
        XCTAssertFalse(i.valid)
        XCTAssertEqual(reasons(i), ["info structure not readable"])
        XCTAssertEqual(i.problems[0].detail, 0x1234_5678)
    }

    func testInfoSizeFollowsFlags() {
        // Only mem fields: 12 bytes at the very end of readable memory is fine.
        let end = base + UInt64(size)
        mem.w32(end - 12, 1)
        mem.w32(end - 8, 639)
        mem.w32(end - 4, 1024)
        let a = MultibootInfo.parse(magic: magic, infoAddress: end - 12, reader: mem)
        XCTAssertTrue(a.valid)
        XCTAssertEqual(a.memUpperKiB, 1024)
        // The mmap flag needs 52 bytes, which are not there.
        mem.w32(end - 12, 1 << 6 | 1)
        let b = MultibootInfo.parse(magic: magic, infoAddress: end - 12, reader: mem)
        XCTAssertFalse(b.valid)
        XCTAssertEqual(reasons(b), ["info structure not readable"])
    }

    func testMemLowerAbove640IsIgnored() {
        writeInfo(flags: 1, memLower: 4096, memUpper: 2048)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertNil(i.memLowerKiB)
        XCTAssertEqual(i.memUpperKiB, 2048)
        XCTAssertEqual(reasons(i), ["mem_lower above 640 KiB; ignored", "no memory map; using mem_lower/mem_upper"])
        XCTAssertEqual(ranges(i), [r(0x100000, 0x300000)])
    }

    // MARK: memory map structure

    func testTruncatedEntryRunsPastEnd() {
        let len = writeMap(qemuMap)
        writeInfo(flags: 1 << 6, mmapLength: 2 * 24 + 10, mmapAddr: mapAddr)
        XCTAssertGreaterThan(len, 58)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.memoryMapEntries, 2)
        XCTAssertEqual(i.memoryMap, r(mapAddr, mapAddr + 48))
        XCTAssertEqual(reasons(i), ["map entry runs past end of map"])
        XCTAssertEqual(i.problems[0].detail, 48)
        XCTAssertEqual(regions(i).count, 2)
        XCTAssertEqual(ranges(i), [r(0, 0x9f000)])
    }

    func testTruncatedSizeField() {
        writeMap(qemuMap)
        writeInfo(flags: 1 << 6, mmapLength: 24 + 2, mmapAddr: mapAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.memoryMapEntries, 1)
        XCTAssertEqual(reasons(i), ["truncated map entry"])
    }

    func testEntrySizeBelow20StopsTheWalk() {
        let i = parseMap([Entry(base: 0x100000, length: 0x100000, type: 1),
                          Entry(base: 0x200000, length: 0x100000, type: 1, size: 16),
                          Entry(base: 0x300000, length: 0x100000, type: 1)])
        XCTAssertEqual(i.memoryMapEntries, 1)
        XCTAssertEqual(reasons(i), ["map entry size < 20"])
        XCTAssertEqual(i.problems[0].detail, 16)
        XCTAssertEqual(ranges(i), [r(0x100000, 0x200000)])
    }

    func testHugeEntrySizeIsRejected() {
        let i = parseMap([Entry(base: 0x100000, length: 0x100000, type: 1, size: 0xFFFF_FFFF),
                          Entry(base: 0x200000, length: 0x100000, type: 1)])
        XCTAssertEqual(i.memoryMapEntries, 0)
        XCTAssertNil(i.memoryMap)
        XCTAssertEqual(reasons(i), ["map entry runs past end of map", "no memory information at all"])
    }

    func testHugeMapLength() {
        writeMap(qemuMap)
        writeInfo(flags: 1 | 1 << 6, mmapLength: 0x10001, mmapAddr: mapAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertTrue(i.valid)
        XCTAssertNil(i.memoryMap)
        XCTAssertEqual(reasons(i), ["memory map length > 64 KiB; ignored", "no memory map; using mem_lower/mem_upper"])
        XCTAssertEqual(i.problems[0].detail, 0x10001)
        // Falls back to the BIOS totals.
        XCTAssertEqual(ranges(i), [r(0, 0x9f000), r(0x100000, 0x100000 + 0x1fb80 * 1024)])
    }

    func testEmptyMap() {
        writeInfo(flags: 1 << 6, mmapLength: 0, mmapAddr: mapAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(reasons(i), ["memory map empty", "no memory information at all"])
        XCTAssertEqual(ranges(i), [])
    }

    func testMapOutsideReadableMemory() {
        writeInfo(flags: 1 << 6, mmapLength: 144, mmapAddr: 0x9000_0000)
        let a = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(reasons(a), ["memory map not readable", "no memory information at all"])
        XCTAssertEqual(a.problems[0].detail, 0x9000_0000)

        // Starts inside the window but runs off its end.
        let last = base + UInt64(size) - 24
        writeMap([Entry(base: 0x100000, length: 0x1000, type: 1)], at: last)
        writeInfo(flags: 1 << 6, mmapLength: 48, mmapAddr: last)
        let b = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(reasons(b).first, "memory map not readable")
        XCTAssertEqual(b.memoryMapEntries, 0)
    }

    func testTooManyEntries() {
        let many = (0..<130).map { Entry(base: UInt64($0) * 0x10000, length: 0x1000, type: 1) }
        let i = parseMap(many)
        XCTAssertEqual(i.memoryMapEntries, 128)
        XCTAssertEqual(reasons(i), ["more than 128 map entries; rest ignored"])
        XCTAssertEqual(regions(i).count, 128)
        XCTAssertEqual(ranges(i).count, 128)
        XCTAssertEqual(ranges(i, capacity: 10).count, 10)
        XCTAssertEqual(ranges(i, capacity: 10).last, r(9 * 0x10000, 9 * 0x10000 + 0x1000))
    }

    // MARK: region contents

    func testZeroLengthEntriesAreSkipped() {
        let i = parseMap([Entry(base: 0x100000, length: 0, type: 1),
                          Entry(base: 0x200000, length: 0x1000, type: 1),
                          Entry(base: 0x300000, length: 0, type: 2)])
        XCTAssertEqual(i.memoryMapEntries, 3)
        XCTAssertEqual(reasons(i), ["zero-length region skipped", "zero-length region skipped"])
        XCTAssertEqual(i.problems[0].severity, .warning)
        XCTAssertFalse(i.problems.hasErrors)
        XCTAssertEqual(regions(i), [MemoryRegion(base: 0x200000, length: 0x1000, type: .available)])
    }

    func testOverlapReservedWins() {
        let i = parseMap([Entry(base: 0x100000, length: 0x700000, type: 1),
                          Entry(base: 0x400000, length: 0x1000, type: 2),
                          Entry(base: 0x7ff800, length: 0x1000, type: 2)])
        XCTAssertEqual(reasons(i), ["available region overlaps reserved; reserved wins",
                                    "available region overlaps reserved; reserved wins"])
        XCTAssertEqual(i.problems[0].detail, 0x400000)
        XCTAssertEqual(ranges(i), [r(0x100000, 0x400000), r(0x401000, 0x7ff000)])
        XCTAssertFalse(i.isAvailable(mem, r(0x3ff000, 0x402000)))
        XCTAssertTrue(i.isAvailable(mem, r(0x401000, 0x402000)))
        XCTAssertFalse(i.isAvailable(mem, r(0x7ff000, 0x800000)))
    }

    func testReservedListedFirstStillWins() {
        let i = parseMap([Entry(base: 0x400000, length: 0x1000, type: 4),
                          Entry(base: 0x100000, length: 0x700000, type: 1)])
        XCTAssertEqual(reasons(i), ["available region overlaps reserved; reserved wins"])
        XCTAssertEqual(ranges(i), [r(0x100000, 0x400000), r(0x401000, 0x800000)])
    }

    func testOverlappingAvailableRegionsAreUnited() {
        let i = parseMap([Entry(base: 0x100000, length: 0x200000, type: 1),
                          Entry(base: 0x200000, length: 0x200000, type: 1)])
        XCTAssertEqual(reasons(i), ["available regions overlap"])
        XCTAssertEqual(i.problems[0].severity, .warning)
        XCTAssertEqual(ranges(i), [r(0x100000, 0x400000)])
    }

    func testWrappingRegionsAreClampedOrClipped() {
        let i = parseMap([Entry(base: 0xFFFF_FFFF_FFFF_0000, length: 0x20000, type: 2),
                          Entry(base: (1 << 52) - 0x2000, length: UInt64.max, type: 1),
                          Entry(base: 1 << 52, length: 0x1000, type: 1),
                          Entry(base: 0x100000, length: 0x1000, type: 1)])
        XCTAssertEqual(reasons(i), ["region wraps past 2^64; clamped",
                                    "available region past 2^52; clipped",
                                    "available region above 2^52; dropped"])
        let regs = regions(i)
        XCTAssertEqual(regs.count, 3)
        XCTAssertEqual(regs[0].end, UInt64.max)
        XCTAssertEqual(regs[1], MemoryRegion(base: (1 << 52) - 0x2000, length: 0x2000, type: .available))
        XCTAssertEqual(ranges(i), [r(0x100000, 0x101000), r((1 << 52) - 0x2000, 1 << 52)])
        XCTAssertEqual(i.availableSummary(mem).highestEnd, 1 << 52)
        XCTAssertEqual(i.availableSummary(mem).totalBytes, 0x3000)
    }

    func testProblemListOverflowIsCounted() {
        let zeros = (0..<40).map { Entry(base: UInt64($0) * 0x1000, length: 0, type: 1) }
        let i = parseMap(zeros)
        XCTAssertEqual(i.problems.count, MultibootProblems.capacity)
        // 40 zero-length warnings + "memory map lists no available RAM".
        XCTAssertEqual(i.problems.dropped, 40 + 1 - MultibootProblems.capacity)
        XCTAssertEqual(ranges(i), [])
        // The error was dropped from the list but still counts.
        XCTAssertTrue(i.problems.hasErrors)
        XCTAssertEqual(i.problems.errors, 1)
    }

    func testMapWithoutAvailableRAMIsAnError() {
        let i = parseMap([Entry(base: 0x100000, length: 0x1000, type: 2)])
        XCTAssertEqual(reasons(i), ["memory map lists no available RAM"])
        XCTAssertEqual(i.availableSummary(mem).totalBytes, 0)
    }

    // MARK: command line

    func testUnterminatedCmdline() {
        mem.w(cmdAddr, Array(repeating: 0x61, count: 4096))
        mem.w(cmdAddr + 4096, [0])   // a NUL just too late
        writeInfo(flags: 1 | 1 << 2, cmdline: cmdAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertNil(i.cmdline)
        XCTAssertNil(i.cmdlineBytes(mem))
        XCTAssertEqual(reasons(i).first, "command line not terminated")

        // 4095 bytes + NUL fits exactly.
        mem.w(cmdAddr + 4095, [0])
        let j = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(j.cmdline?.length, 4095)
    }

    func testCmdlineAtEndOfReadableMemoryAndUnreadable() {
        let end = base + UInt64(size)
        mem.string(end - 4, "a=1")
        writeInfo(flags: 1 | 1 << 2, cmdline: end - 4)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.cmdlineBytes(mem).map { Array($0) }, Array("a=1".utf8))

        mem.w(end - 4, [0x61, 0x62, 0x63, 0x64])   // no NUL before the window ends
        let j = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(reasons(j).first, "command line not readable")

        writeInfo(flags: 1 | 1 << 2, cmdline: 0)
        let k = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(reasons(k).first, "command line pointer is null")
    }

    // MARK: modules

    func testHugeModsCount() {
        writeInfo(flags: 1 | 1 << 3, modsCount: 0xFFFF_FFFF, modsAddr: modAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.moduleCount, 0)
        XCTAssertEqual(reasons(i).first, "too many modules; all ignored")
        XCTAssertEqual(modules(i), [])

        writeInfo(flags: 1 | 1 << 3, modsCount: 65, modsAddr: modAddr)
        XCTAssertEqual(MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem).moduleCount, 0)
    }

    func testModuleTableUnreadable() {
        writeInfo(flags: 1 | 1 << 3, modsCount: 4, modsAddr: base + UInt64(size) - 32)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.moduleCount, 0)
        XCTAssertEqual(reasons(i).first, "module table not readable")
    }

    func testBadModulesAreReportedAndSkipped() {
        // 0: fine. 1: start > end. 2: unterminated string. 3: no string.
        let mods: [(UInt32, UInt32, UInt64)] = [(0x200000, 0x201000, modStr), (0x300000, 0x2FFFFF, 0),
                                                (0x400000, 0x400010, modStr + 0x100), (0x500000, 0x500000, 0)]
        for (k, m) in mods.enumerated() {
            let a = modAddr + UInt64(k) * 16
            mem.w32(a, m.0); mem.w32(a + 4, m.1); mem.w32(a + 8, UInt32(m.2))
        }
        mem.string(modStr, "fine")
        mem.w(modStr + 0x100, Array(repeating: 0x7A, count: 0x20000 - 0x3900))  // to the window's end
        writeInfo(flags: 1 | 1 << 3, modsCount: 4, modsAddr: modAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertEqual(i.moduleCount, 4)
        XCTAssertEqual(reasons(i), ["module start > end; skipped", "module string not terminated",
                                    "no memory map; using mem_lower/mem_upper"])
        XCTAssertEqual(i.problems[0].detail, 1)
        XCTAssertEqual(i.problems[1].detail, 2)
        let got = modules(i)
        XCTAssertEqual(got.map(\.start), [0x200000, 0x400000, 0x500000])
        XCTAssertEqual(got[0].string?.length, 4)
        XCTAssertNil(got[1].string)
        XCTAssertNil(got[2].string)
    }

    // MARK: no memory map

    func testFlagsWithoutMmapBitUseBiosTotals() {
        // mmap fields hold a valid map, but the flag says they are not valid.
        writeInfo(flags: 1, memLower: 639, memUpper: 0x1fb80, mmapLength: writeMap(qemuMap), mmapAddr: mapAddr)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertNil(i.memoryMap)
        XCTAssertEqual(regions(i), [])
        XCTAssertEqual(reasons(i), ["no memory map; using mem_lower/mem_upper"])
        XCTAssertFalse(i.problems.hasErrors)
        XCTAssertEqual(ranges(i), [r(0, 0x9f000), r(0x100000, 0x100000 + 0x1fb80 * 1024)])
        XCTAssertEqual(i.availableSummary(mem).highestEnd, 0x7fe0000)
    }

    func testNoMemoryInformationAtAll() {
        writeInfo(flags: 0)
        let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
        XCTAssertTrue(i.valid)
        XCTAssertTrue(i.problems.hasErrors)
        XCTAssertEqual(reasons(i), ["no memory information at all"])
        XCTAssertEqual(i.availableSummary(mem).totalBytes, 0)
        XCTAssertFalse(i.isAvailable(mem, r(0x100000, 0x101000)))
    }

    // MARK: random input

    func testRandomStructuresNeverTrapAndRangesStayNormalised() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {   // SplitMix64: deterministic, reproducible failures
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var total = 0
        for _ in 0..<300 {
            // Random entries with small, plausible fields, random types and
            // sizes, occasionally garbage lengths.
            let n = Int(next() % 24)
            let entries = (0..<n).map { _ -> Entry in
                let b = (next() % 0x4000) << 12 | (next() % 2 == 0 ? 0 : next() % 0x1000)
                let l = next() % 8 == 0 ? next() : (next() % 0x800) << 12
                return Entry(base: next() % 16 == 0 ? next() : b, length: l, type: UInt32(next() % 6),
                             size: next() % 10 == 0 ? UInt32(next() % 40) : 20)
            }
            let len = writeMap(entries)
            let lie = next() % 5 == 0 ? UInt32(next() % 0x1000) : len
            writeInfo(flags: UInt32(truncatingIfNeeded: next()) | 1 << 6, cmdline: base + next() % UInt64(size),
                      modsCount: UInt32(next() % 70), modsAddr: base + next() % UInt64(size),
                      mmapLength: lie, mmapAddr: mapAddr)
            let i = MultibootInfo.parse(magic: magic, infoAddress: info, reader: mem)
            XCTAssertTrue(i.valid)
            XCTAssertLessThanOrEqual(i.memoryMapEntries, 128)
            let rs = ranges(i)
            for (k, x) in rs.enumerated() {
                XCTAssertLessThan(x.base, x.end)
                XCTAssertEqual(x.base % 4096, 0)
                XCTAssertEqual(x.end % 4096, 0)
                XCTAssertLessThanOrEqual(x.end, 1 << 52)
                if k > 0 { XCTAssertLessThan(rs[k - 1].end, x.base) }   // disjoint and not adjacent
                XCTAssertTrue(i.isAvailable(mem, x))
                // Nothing in a range is covered by a non-available region.
                i.forEachMemoryRegion(mem) { reg in
                    if reg.type != .available {
                        XCTAssertTrue(reg.end <= x.base || reg.base >= x.end)
                    }
                }
            }
            _ = modules(i); total += rs.count
            mem.buf.initializeMemory(as: UInt8.self, repeating: 0)
        }
        XCTAssertGreaterThan(total, 150)   // the inputs did produce ranges to check
    }
}
