// SlabHeap: the kernel heap behind posix_memalign/free, which Embedded Swift uses
// for every class instance and array. It cannot allocate itself: all its state is
// this struct plus headers written into the pages it gets from a PageSource.
//
// Small requests (<= 2048 bytes, alignment <= 2048) come from slabs: one 4 KiB page
// per slab, holding objects of one size class (16 .. 2048, powers of two). The
// slab's header sits at the start of the page and objects sit at offsets that are
// multiples of the class size after it, so every object is aligned to its class
// and no object starts at page offset 0. That gives free() a one-bit test:
//   - pointer not page-aligned: a slab object; its header is at ptr & ~4095.
//   - pointer page-aligned: a large allocation; its header is the page before.
//
// The header keeps an allocation bitmap (one bit per slot). It is the only record
// of which slots are free: allocation scans it (at most 4 words) instead of
// following a free list threaded through the objects. That is a deliberate change
// from a classic intrusive free list: a stray write into a freed object (use after
// free) cannot redirect the allocator to hand out arbitrary memory, a double free
// is caught exactly by a clear bit, and the whole freed object can be poisoned and
// verified.
//
// Each class keeps its slabs on two lists: partial (some slots free) and full.
// A slab that becomes empty goes back to the page source, except that one empty
// slab per class is cached: a hot alloc/free pair at a slab boundary would
// otherwise get and return a page on every call.
//
// Large requests take N+1 contiguous pages (more for alignment > 4096): a header
// page, then the data. Live large allocations are linked so check() can account
// for every page the heap holds.
//
// Not thread-safe: the kernel wraps every call in a spinlock (Kern/Heap).

protocol PageSource {
    /// `count` contiguous 4096-byte-aligned pages, or nil.
    mutating func allocatePages(_ count: Int) -> UnsafeMutableRawPointer?
    mutating func freePages(_ p: UnsafeMutableRawPointer, _ count: Int)
}

enum FreeResult: Equatable {
    case freed
    case ignoredNil
    case badMagic      // not a heap pointer, or its header was overwritten
    case misaligned    // inside a slab but not at the start of an object
    case doubleFree    // the object's bitmap bit is already clear
    case corrupt       // header magic fine but its fields are impossible

    var isError: Bool { self != .freed && self != .ignoredNil }

    var message: StaticString {
        switch self {
        case .freed: return "freed"
        case .ignoredNil: return "free(nil)"
        case .badMagic: return "free: bad magic (foreign pointer or corrupted header)"
        case .misaligned: return "free: pointer is not the start of a heap object"
        case .doubleFree: return "free: double free"
        case .corrupt: return "free: corrupted slab header"
        }
    }
}

// Lives at the start of every slab page; the allocation bitmap follows it at
// SlabHeap.bitmapOffset. 32 bytes.
struct SlabHeader {
    var magic: UInt32
    var classIndex: UInt8
    var list: UInt8          // which class list holds it (SlabHeap.onPartial ...)
    var inUse: UInt16
    var freeCount: UInt16
    var prev: UnsafeMutablePointer<SlabHeader>?
    var next: UnsafeMutablePointer<SlabHeader>?
}

// Lives at the start of a large allocation's header page.
struct LargeHeader {
    var magic: UInt32
    var totalPages: Int                  // pages obtained from the source, from `base`
    var size: Int                        // bytes requested
    var base: UnsafeMutableRawPointer    // what to hand back to the source
    var data: UnsafeMutableRawPointer    // the pointer given to the caller
    var prev: UnsafeMutablePointer<LargeHeader>?
    var next: UnsafeMutablePointer<LargeHeader>?
}

struct SlabClass {
    var partial: UnsafeMutablePointer<SlabHeader>? = nil
    var full: UnsafeMutablePointer<SlabHeader>? = nil
    var empty: UnsafeMutablePointer<SlabHeader>? = nil   // the one cached empty slab
    var slabs = 0        // pages this class holds, cached empty included
    var objects = 0      // live objects
}

struct SlabHeap<Source: PageSource> {
    static var pageSize: Int { 4096 }
    static var classCount: Int { 8 }
    static var minClassShift: Int { 4 }          // 16 bytes
    static var maxSmall: Int { 2048 }
    static var headerBytes: Int { 64 }           // SlabHeader + 4-word bitmap
    static var bitmapOffset: Int { 32 }
    static var slabMagic: UInt32 { 0x51AB_C0DE }
    static var largeMagic: UInt32 { 0x1A26_EB0C }
    static var poisonByte: UInt8 { 0xDB }
    static var poisonWord: UInt64 { 0xDBDB_DBDB_DBDB_DBDB }
    static var onPartial: UInt8 { 1 }
    static var onFull: UInt8 { 2 }
    static var onEmpty: UInt8 { 3 }

    var source: Source
    /// Fill freed small objects with 0xDB and verify the fill when they are handed
    /// out again, catching writes after free. Fixed at init: toggling it later would
    /// make unpoisoned free objects look damaged.
    let poison: Bool

    private var classes = InlineArray<8, SlabClass>(repeating: SlabClass())
    private var large: UnsafeMutablePointer<LargeHeader>? = nil

    /// Bytes reserved for live allocations: the class size of each small object,
    /// the data pages (x 4096) of each large one.
    private(set) var bytesInUse = 0
    private(set) var allocationsInUse = 0
    /// Pages obtained from the source and not yet returned.
    private(set) var pagesHeld = 0
    private(set) var largeAllocations = 0
    /// Objects found with a damaged poison fill at allocation time, and the last one.
    private(set) var poisonViolations = 0
    private(set) var lastPoisonViolation: UnsafeMutableRawPointer? = nil

    init(source: Source, poison: Bool = false) {
        self.source = source
        self.poison = poison
    }

    // MARK: size classes

    static func classSize(_ index: Int) -> Int { 1 << (index + minClassShift) }

    /// First slot index usable for objects: slots overlapping the header are skipped.
    static func firstSlot(_ index: Int) -> Int {
        (headerBytes + classSize(index) - 1) / classSize(index)
    }

    static func slotsPerPage(_ index: Int) -> Int { pageSize / classSize(index) }

    static func capacity(_ index: Int) -> Int { slotsPerPage(index) - firstSlot(index) }

    /// The class for a small request, or nil if it must go the large path.
    static func classIndex(size: Int, alignment: Int) -> Int? {
        let need = max(max(size, alignment), 1)
        if need > maxSmall { return nil }
        // Smallest power of two >= need, at least 16.
        let shift = Int.bitWidth - (need - 1).leadingZeroBitCount
        return max(shift, minClassShift) - minClassShift
    }

    func slabCount(classIndex: Int) -> Int { classes[classIndex].slabs }
    func objectCount(classIndex: Int) -> Int { classes[classIndex].objects }
    func hasCachedEmpty(classIndex: Int) -> Bool { classes[classIndex].empty != nil }

    // MARK: bitmap helpers

    private static func bitmap(_ h: UnsafeMutablePointer<SlabHeader>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(h) + bitmapOffset).assumingMemoryBound(to: UInt64.self)
    }

    // Bits that are permanently set in every slab of a class: the header's slots and
    // any slots past the end of the page. Popcount of the bitmap is then always
    // inUse + reservedCount.
    private static func reservedMask(_ index: Int, word: Int) -> UInt64 {
        var m: UInt64 = 0
        let lo = word * 64
        let first = firstSlot(index), end = slotsPerPage(index)
        var s = 0
        while s < 64 {
            let slot = lo + s
            if slot < first || slot >= end { m |= UInt64(1) << UInt64(s) }
            s += 1
        }
        return m
    }

    private static func reservedCount(_ index: Int) -> Int {
        256 - capacity(index)
    }

    // MARK: lists

    private static func push(_ h: UnsafeMutablePointer<SlabHeader>,
                             _ head: inout UnsafeMutablePointer<SlabHeader>?, _ list: UInt8) {
        h.pointee.prev = nil
        h.pointee.next = head
        head?.pointee.prev = h
        head = h
        h.pointee.list = list
    }

    private static func unlink(_ h: UnsafeMutablePointer<SlabHeader>,
                               _ head: inout UnsafeMutablePointer<SlabHeader>?) {
        if let p = h.pointee.prev { p.pointee.next = h.pointee.next } else { head = h.pointee.next }
        h.pointee.next?.pointee.prev = h.pointee.prev
        h.pointee.prev = nil
        h.pointee.next = nil
        h.pointee.list = 0
    }

    // MARK: allocate

    /// `alignment` must be a power of two. Size 0 yields a unique minimum-size object.
    /// nil on bad alignment, negative or overflowing size, or when the source is dry.
    mutating func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        if size < 0 || alignment <= 0 || alignment & (alignment - 1) != 0 { return nil }
        if let ci = SlabHeap.classIndex(size: size, alignment: alignment) {
            return allocateSmall(ci)
        }
        return allocateLarge(size: size, alignment: alignment)
    }

    private mutating func allocateSmall(_ ci: Int) -> UnsafeMutableRawPointer? {
        var slab = classes[ci].partial
        if slab == nil {
            if let e = classes[ci].empty {
                classes[ci].empty = nil
                SlabHeap.push(e, &classes[ci].partial, SlabHeap.onPartial)
                slab = e
            } else if let page = source.allocatePages(1) {
                let h = formatSlab(page, ci)
                SlabHeap.push(h, &classes[ci].partial, SlabHeap.onPartial)
                pagesHeld += 1
                classes[ci].slabs += 1
                slab = h
            } else {
                return nil
            }
        }
        let h = slab!
        let bits = SlabHeap.bitmap(h)
        // A partial slab has a clear bit; header.freeCount > 0 guarantees it.
        var w = 0
        while w < 4 && bits[w] == ~0 { w += 1 }
        precondition(w < 4, "SlabHeap: partial slab without a free slot")
        let bit = (~bits[w]).trailingZeroBitCount
        bits[w] |= UInt64(1) << UInt64(bit)
        h.pointee.inUse += 1
        h.pointee.freeCount -= 1
        if h.pointee.freeCount == 0 {
            SlabHeap.unlink(h, &classes[ci].partial)
            SlabHeap.push(h, &classes[ci].full, SlabHeap.onFull)
        }
        let size = SlabHeap.classSize(ci)
        classes[ci].objects += 1
        allocationsInUse += 1
        bytesInUse += size
        let p = UnsafeMutableRawPointer(h) + (w * 64 + bit) * size
        if poison && !SlabHeap.poisonIntact(p, size) {
            poisonViolations += 1
            lastPoisonViolation = p
        }
        return p
    }

    private func formatSlab(_ page: UnsafeMutableRawPointer, _ ci: Int) -> UnsafeMutablePointer<SlabHeader> {
        let h = page.bindMemory(to: SlabHeader.self, capacity: 1)
        h.initialize(to: SlabHeader(magic: SlabHeap.slabMagic, classIndex: UInt8(ci), list: 0,
                                    inUse: 0, freeCount: UInt16(SlabHeap.capacity(ci)),
                                    prev: nil, next: nil))
        let bits = (page + SlabHeap.bitmapOffset).bindMemory(to: UInt64.self, capacity: 4)
        var w = 0
        while w < 4 {
            bits[w] = SlabHeap.reservedMask(ci, word: w)
            w += 1
        }
        if poison {
            // Fresh objects count as "free" for the poison check too.
            (page + SlabHeap.headerBytes).initializeMemory(
                as: UInt8.self, repeating: SlabHeap.poisonByte,
                count: SlabHeap.pageSize - SlabHeap.headerBytes)
        }
        return h
    }

    private static func poisonIntact(_ p: UnsafeMutableRawPointer, _ size: Int) -> Bool {
        let words = p.assumingMemoryBound(to: UInt64.self)
        var i = 0
        while i < size / 8 {
            if words[i] != poisonWord { return false }
            i += 1
        }
        return true
    }

    // Data pages of a large allocation (size already known not to overflow).
    private static func dataPages(_ size: Int) -> Int {
        max((size + pageSize - 1) / pageSize, 1)
    }

    private mutating func allocateLarge(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        let ps = SlabHeap.pageSize
        let (rounded, o1) = size.addingReportingOverflow(ps - 1)
        if o1 { return nil }
        let dataPages = max(rounded / ps, 1)
        // Alignment above a page: over-allocate so an aligned data start with a
        // whole header page before it fits anywhere the source puts the run.
        let slack = alignment > ps ? alignment / ps - 1 : 0
        let (t1, o2) = dataPages.addingReportingOverflow(1)
        let (total, o3) = t1.addingReportingOverflow(slack)
        if o2 || o3 || total > Int.max / ps { return nil }
        guard let base = source.allocatePages(total) else { return nil }
        var data = base + ps
        if alignment > ps {
            let a = UInt(bitPattern: data)
            let mis = a & UInt(alignment - 1)
            if mis != 0 { data += alignment - Int(mis) }
        }
        let h = (data - ps).bindMemory(to: LargeHeader.self, capacity: 1)
        h.initialize(to: LargeHeader(magic: SlabHeap.largeMagic, totalPages: total, size: size,
                                     base: base, data: data, prev: nil, next: large))
        large?.pointee.prev = h
        large = h
        pagesHeld += total
        largeAllocations += 1
        allocationsInUse += 1
        bytesInUse += dataPages * ps
        return data
    }

    // MARK: free

    mutating func free(_ p: UnsafeMutableRawPointer?) -> FreeResult {
        guard let p = p else { return .ignoredNil }
        let addr = UInt(bitPattern: p)
        if addr & UInt(SlabHeap.pageSize - 1) == 0 { return freeLarge(p) }
        let page = UnsafeMutableRawPointer(bitPattern: addr & ~UInt(SlabHeap.pageSize - 1))!
        if page.load(as: UInt32.self) != SlabHeap.slabMagic { return .badMagic }
        let h = page.assumingMemoryBound(to: SlabHeader.self)
        let ci = Int(h.pointee.classIndex)
        if ci >= SlabHeap.classCount { return .corrupt }
        let size = SlabHeap.classSize(ci)
        let offset = p - page
        if offset % size != 0 || offset / size < SlabHeap.firstSlot(ci) { return .misaligned }
        let slot = offset / size
        let bits = SlabHeap.bitmap(h)
        let m = UInt64(1) << UInt64(slot & 63)
        if bits[slot >> 6] & m == 0 { return .doubleFree }
        let list = h.pointee.list
        let inList = (h.pointee.freeCount == 0 && list == SlabHeap.onFull)
            || (h.pointee.freeCount > 0 && list == SlabHeap.onPartial)
        if h.pointee.inUse == 0 || !inList { return .corrupt }

        bits[slot >> 6] &= ~m
        if poison {
            p.initializeMemory(as: UInt8.self, repeating: SlabHeap.poisonByte, count: size)
        }
        let wasFull = h.pointee.freeCount == 0
        h.pointee.inUse -= 1
        h.pointee.freeCount += 1
        classes[ci].objects -= 1
        allocationsInUse -= 1
        bytesInUse -= size
        if wasFull {
            SlabHeap.unlink(h, &classes[ci].full)
            SlabHeap.push(h, &classes[ci].partial, SlabHeap.onPartial)
        }
        if h.pointee.inUse == 0 {
            SlabHeap.unlink(h, &classes[ci].partial)
            if classes[ci].empty == nil {
                SlabHeap.push(h, &classes[ci].empty, SlabHeap.onEmpty)
            } else {
                h.pointee.magic = 0   // a stale pointer into this page now reads badMagic
                classes[ci].slabs -= 1
                pagesHeld -= 1
                source.freePages(page, 1)
            }
        }
        return .freed
    }

    private mutating func freeLarge(_ p: UnsafeMutableRawPointer) -> FreeResult {
        let hp = p - SlabHeap.pageSize
        if hp.load(as: UInt32.self) != SlabHeap.largeMagic { return .badMagic }
        let h = hp.assumingMemoryBound(to: LargeHeader.self)
        if h.pointee.data != p || h.pointee.totalPages < 2 { return .corrupt }
        if let prev = h.pointee.prev { prev.pointee.next = h.pointee.next } else { large = h.pointee.next }
        h.pointee.next?.pointee.prev = h.pointee.prev
        let total = h.pointee.totalPages
        let dataPages = SlabHeap.dataPages(h.pointee.size)
        let base = h.pointee.base
        // Clearing the magic makes a second free of the same pointer report badMagic,
        // as long as the pages have not been reused yet.
        h.pointee.magic = 0
        pagesHeld -= total
        largeAllocations -= 1
        allocationsInUse -= 1
        bytesInUse -= dataPages * SlabHeap.pageSize
        source.freePages(base, total)
        return .freed
    }

    // MARK: validation

    /// Walk every list and recount: each slab's free + in-use == capacity, its bitmap
    /// popcount == in-use + reserved, it is on the right list, links are consistent,
    /// free slots still hold the poison fill (if poisoning), and the totals match the
    /// statistics. For test suites; O(pages held).
    func check() -> Bool {
        var pages = 0, objects = 0, bytes = 0
        var ci = 0
        while ci < SlabHeap.classCount {
            let c = classes[ci]
            var slabs = 0, live = 0
            guard walk(c.partial, ci, SlabHeap.onPartial, &slabs, &live),
                  walk(c.full, ci, SlabHeap.onFull, &slabs, &live),
                  walk(c.empty, ci, SlabHeap.onEmpty, &slabs, &live) else { return false }
            if let e = c.empty, e.pointee.next != nil { return false }   // at most one
            if slabs != c.slabs || live != c.objects { return false }
            pages += slabs
            objects += live
            bytes += live * SlabHeap.classSize(ci)
            ci += 1
        }
        var n = 0
        var prev: UnsafeMutablePointer<LargeHeader>? = nil
        var l = large
        while let h = l {
            if n > pagesHeld { return false }   // a cycle
            if h.pointee.magic != SlabHeap.largeMagic || h.pointee.prev != prev { return false }
            if h.pointee.data - SlabHeap.pageSize != UnsafeMutableRawPointer(h) { return false }
            pages += h.pointee.totalPages
            bytes += SlabHeap.dataPages(h.pointee.size) * SlabHeap.pageSize
            n += 1
            prev = h
            l = h.pointee.next
        }
        return n == largeAllocations && pages == pagesHeld
            && objects + n == allocationsInUse && bytes == bytesInUse
    }

    private func walk(_ head: UnsafeMutablePointer<SlabHeader>?, _ ci: Int, _ list: UInt8,
                      _ slabs: inout Int, _ live: inout Int) -> Bool {
        let cap = SlabHeap.capacity(ci)
        let size = SlabHeap.classSize(ci)
        var prev: UnsafeMutablePointer<SlabHeader>? = nil
        var s = head
        while let h = s {
            if slabs > pagesHeld { return false }   // a cycle
            let hd = h.pointee
            if hd.magic != SlabHeap.slabMagic || Int(hd.classIndex) != ci || hd.list != list { return false }
            if hd.prev != prev { return false }
            let used = Int(hd.inUse), free = Int(hd.freeCount)
            if used + free != cap { return false }
            if list == SlabHeap.onPartial && (used == 0 || free == 0) { return false }
            if list == SlabHeap.onFull && free != 0 { return false }
            if list == SlabHeap.onEmpty && used != 0 { return false }
            let bits = SlabHeap.bitmap(h)
            var pop = 0
            var w = 0
            while w < 4 {
                let r = SlabHeap.reservedMask(ci, word: w)
                if bits[w] & r != r { return false }
                pop += bits[w].nonzeroBitCount
                if poison {
                    var freeBits = ~bits[w]
                    while freeBits != 0 {
                        let b = freeBits.trailingZeroBitCount
                        freeBits &= freeBits - 1
                        let obj = UnsafeMutableRawPointer(h) + (w * 64 + b) * size
                        if !SlabHeap.poisonIntact(obj, size) { return false }
                    }
                }
                w += 1
            }
            if pop != used + SlabHeap.reservedCount(ci) { return false }
            slabs += 1
            live += used
            prev = h
            s = hd.next
        }
        return true
    }
}
