// The physical page allocator: Core's PageBitmap over the RAM the multiboot memory
// map says is available, minus everything already in use (low memory, the kernel
// image, the multiboot structures and modules, the bitmap itself). One lock
// serialises all callers; interrupts are off while it is held, so an interrupt
// handler on the same CPU can never wait for it.

/// Reads physical memory through the boot identity map, refusing anything outside
/// it (the Core parsers validate every pointer through this). Page 0 is unmapped
/// to catch null pointers, so reads there (the BIOS data area: the EBDA segment
/// at 0x40E) are served from a copy taken at boot.
struct DirectMapReader: PhysicalMemoryReader {
    /// A copy of page 0, kept in the heap-free boot area (Boot/bootdata.asm).
    static var pageZeroCopy: UnsafeMutableRawPointer { LinkerSymbols.pageZeroCopy }

    static func snapshotPageZero() { CPU.copyFromAddressZero(to: pageZeroCopy, count: 4096) }

    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, address < AddressSpace.directMapSize,
              UInt64(count) <= AddressSpace.directMapSize - address else { return nil }
        if address < 4096 {
            guard address + UInt64(count) <= 4096 else { return nil }
            return UnsafeRawBufferPointer(start: DirectMapReader.pageZeroCopy + Int(address), count: count)
        }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count)
    }
}

enum PhysicalMemory {
    static let pageSize: UInt64 = 4096
    /// Below 1 MiB: BIOS data, EBDA, the AP trampoline page. Never handed out.
    static let lowMemoryEnd: UInt64 = 0x10_0000
    static let lock = SpinLock("physical pages")
    nonisolated(unsafe) static var bitmap: PageBitmap? = nil
    nonisolated(unsafe) static var totalUsableBytes: UInt64 = 0
    nonisolated(unsafe) static var ignoredAbove4GiB: UInt64 = 0

    static var kernelImage: PhysRange {
        PhysRange(base: LinkerSymbols.kernelStart, end: LinkerSymbols.kernelEnd)
    }

    /// Builds the allocator from the parsed multiboot information. Returns false
    /// (after printing why) when no usable memory map exists.
    static func initialize(_ info: MultibootInfo, infoAddress: UInt64) -> Bool {
        let reader = DirectMapReader()
        var reserved = ReservedRanges()
        reserved.add(PhysRange(base: 0, end: lowMemoryEnd))
        reserved.add(kernelImage)
        reserved.addMultiboot(info, infoAddress: infoAddress, reader)

        // Highest usable frame inside the direct map decides the bitmap size.
        var top: UInt64 = 0
        info.forEachAvailableRun(reader) { run in
            let end = min(run.end, AddressSpace.directMapSize)
            if run.end > AddressSpace.directMapSize {
                ignoredAbove4GiB += run.end - max(run.base, AddressSpace.directMapSize)
            }
            if end > run.base { top = max(top, end) }
        }
        guard top > lowMemoryEnd else {
            Console.print("memory: no usable RAM above 1 MiB in the memory map")
            return false
        }
        let frames = Int(top / pageSize)
        let bitmapBytes = UInt64(PageBitmap.bytesNeeded(frames: frames))
        guard let place = reserved.firstFit(bytes: bitmapBytes, info: info, reader: reader) else {
            Console.print("memory: no room for the page bitmap")
            return false
        }
        let storage = AddressSpace.virtual(place).assumingMemoryBound(to: UInt64.self)
        var map = PageBitmap(storage: storage, frameCount: frames)
        info.forEachAvailableRun(reader) { run in
            map.markFree(physBase: run.base, length: min(run.end, top) > run.base ? min(run.end, top) - run.base : 0)
        }
        reserved.add(PhysRange(base: place, end: place + bitmapBytes))
        reserved.forEach { map.markUsed(physBase: $0.base, length: $0.length) }
        totalUsableBytes = UInt64(map.freeCount) * pageSize
        bitmap = map
        return true
    }

    /// One page (contents undefined), or nil when memory is exhausted.
    static func allocatePage() -> UInt64? { allocate(pages: 1) }

    static func allocate(pages: Int, alignPages: Int = 1, below: UInt64? = nil) -> UInt64? {
        lock.lock()
        let limit = below.map { Int($0 / pageSize) }
        let frame = bitmap?.allocate(count: pages, alignFrames: alignPages, below: limit)
        lock.unlock()
        return frame.map { UInt64($0) * pageSize }
    }

    static func freePage(_ physical: UInt64) { free(physical, pages: 1) }

    static func free(_ physical: UInt64, pages: Int) {
        if !tryFree(physical, pages: pages) {
            panic("physical page freed twice or out of range") { $0.hex(physical); $0.write(" x"); $0.dec(pages) }
        }
    }

    /// Frees a run; false (and nothing changed) when any page of it is already
    /// free or out of range. `free` turns that into a panic.
    static func tryFree(_ physical: UInt64, pages: Int) -> Bool {
        lock.lock()
        let ok = bitmap?.free(first: Int(physical / pageSize), count: pages) ?? false
        lock.unlock()
        return ok
    }

    /// A zero-filled page for page tables.
    static func allocateZeroedPage() -> UInt64? {
        guard let p = allocatePage() else { return nil }
        AddressSpace.virtual(p).initializeMemory(as: UInt8.self, repeating: 0, count: Int(pageSize))
        return p
    }

    static var freePages: Int { bitmap?.freeCount ?? 0 }
    static var totalPages: Int { Int(totalUsableBytes / pageSize) }
}

/// A small fixed list of physical ranges that must not be handed out.
struct ReservedRanges {
    private var ranges = InlineArray<80, PhysRange>(repeating: PhysRange(base: 0, end: 0))
    private(set) var count = 0

    mutating func add(_ r: PhysRange) {
        guard r.end > r.base else { return }
        precondition(count < 80, "too many reserved physical ranges")
        ranges[count] = r
        count += 1
    }

    mutating func addMultiboot(_ info: MultibootInfo, infoAddress: UInt64, _ reader: DirectMapReader) {
        add(PhysRange(base: infoAddress, end: infoAddress + 120))
        if let m = info.memoryMap { add(m) }
        if let c = info.cmdline { add(PhysRange(base: c.base, end: c.end + 1)) }
        if info.moduleCount > 0 {
            add(PhysRange(base: info.modulesAddress, end: info.modulesAddress + UInt64(info.moduleCount) * 16))
        }
        info.forEachModule(reader) { m in
            add(PhysRange(base: m.start, end: m.end))
            if let s = m.string { add(PhysRange(base: s.base, end: s.end + 1)) }
        }
    }

    func forEach(_ body: (PhysRange) -> Void) {
        for i in 0..<count { body(ranges[i]) }
    }

    /// The lowest page-aligned address of `bytes` bytes inside available RAM that
    /// overlaps no reserved range.
    func firstFit(bytes: UInt64, info: MultibootInfo, reader: DirectMapReader) -> UInt64? {
        var found: UInt64? = nil
        info.forEachAvailableRun(reader) { run in
            guard found == nil else { return }
            var candidate = (max(run.base, PhysicalMemory.lowMemoryEnd) + 4095) & ~4095
            var moved = true
            while moved {
                moved = false
                for i in 0..<count {
                    let r = ranges[i]
                    if candidate < r.end && candidate + bytes > r.base {
                        candidate = (r.end + 4095) & ~4095
                        moved = true
                    }
                }
            }
            if candidate + bytes <= min(run.end, AddressSpace.directMapSize) { found = candidate }
        }
        return found
    }
}
