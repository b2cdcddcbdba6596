// Iteration over a validated multiboot structure: the memory map, the modules,
// the command line, and the available RAM with reserved overlaps removed
// (Multiboot.swift explains the validation rules). Non-allocating.

extension MultibootInfo {

    /// The command line bytes (no NUL), for KernelCommandLine.parse.
    func cmdlineBytes<R: PhysicalMemoryReader>(_ reader: R) -> UnsafeRawBufferPointer? {
        guard let c = cmdline else { return nil }
        return reader.bytes(at: c.base, count: Int(c.length))
    }

    /// Every sanitised region of the validated memory map, in map order
    /// (dropped and zero-length entries are skipped).
    func forEachMemoryRegion<R: PhysicalMemoryReader>(_ reader: R, _ body: (MemoryRegion) -> Void) {
        guard let m = memoryMap, let map = reader.bytes(at: m.base, count: Int(m.length)) else { return }
        var walker = MapWalker(map: map)
        var n = 0
        while n < memoryMapEntries, case .entry(let b, let l, let t) = walker.next() {
            if let r = MultibootInfo.sanitize(base: b, length: l, type: t).0 { body(r) }
            n += 1
        }
    }

    /// Every module whose start <= end. A module whose string is missing or
    /// unterminated is still passed, with string == nil.
    func forEachModule<R: PhysicalMemoryReader>(_ reader: R, _ body: (MultibootModule) -> Void) {
        var i = 0
        while i < moduleCount {
            if let m = MultibootInfo.readModule(i, table: modulesAddress, reader).0 { body(m) }
            i += 1
        }
    }

    /// Module `i` of the table at `table` (whose extent parse() checked),
    /// nil when unusable, and at most one problem.
    static func readModule<R: PhysicalMemoryReader>(_ i: Int, table: UInt64, _ reader: R)
        -> (MultibootModule?, MultibootProblem?)
    {
        guard let e = reader.bytes(at: table + UInt64(i) * 16, count: 16) else {
            return (nil, MultibootProblem(severity: .error, reason: "module entry not readable", detail: UInt64(i)))
        }
        let start = UInt64(u32(e, 0)), end = UInt64(u32(e, 4))
        if start > end {
            return (nil, MultibootProblem(severity: .error, reason: "module start > end; skipped", detail: UInt64(i)))
        }
        var m = MultibootModule(start: start, end: end, string: nil)
        let s = UInt64(u32(e, 8))
        if s == 0 { return (m, nil) }
        switch stringLength(reader, at: s) {
        case .ok(let n):
            m.string = PhysRange(base: s, end: s + UInt64(n))
            return (m, nil)
        case .unreadable:
            return (m, MultibootProblem(severity: .error, reason: "module string not readable", detail: UInt64(i)))
        case .unterminated:
            return (m, MultibootProblem(severity: .error, reason: "module string not terminated", detail: UInt64(i)))
        }
    }

    // The regions the available ranges are computed from: the memory map,
    // or, when there is none, the BIOS totals (mem_lower below 640 KiB,
    // mem_upper from 1 MiB up to the first hole).
    func forEachSourceRegion<R: PhysicalMemoryReader>(_ reader: R, _ body: (MemoryRegion) -> Void) {
        if memoryMapEntries > 0 {
            forEachMemoryRegion(reader, body)
            return
        }
        if let lo = memLowerKiB, lo > 0 {
            body(MemoryRegion(base: 0, length: UInt64(lo) * 1024, type: .available))
        }
        if let hi = memUpperKiB, hi > 0 {
            body(MemoryRegion(base: 0x10_0000, length: UInt64(hi) * 1024, type: .available))
        }
    }

    /// Maximal runs of memory that some available region covers and no
    /// other region touches, ascending and disjoint, not page-aligned.
    ///
    /// A sweep over the region boundaries in increasing order: between two
    /// consecutive boundaries coverage cannot change, so testing the left
    /// end decides the whole piece. O(n^2) reads for n <= 128 entries, with
    /// no storage, which is what the kernel needs before it has a heap.
    func forEachAvailableRun<R: PhysicalMemoryReader>(_ reader: R, _ body: (PhysRange) -> Void) {
        var x: UInt64 = 0
        var runStart: UInt64? = nil
        while true {
            var next: UInt64? = nil
            var inAvailable = false, inOther = false
            forEachSourceRegion(reader) { r in
                if r.base > x && (next == nil || r.base < next!) { next = r.base }
                if r.end > x && (next == nil || r.end < next!) { next = r.end }
                if r.base <= x && x < r.end {
                    if r.type == .available { inAvailable = true } else { inOther = true }
                }
            }
            let ok = inAvailable && !inOther
            if ok && runStart == nil { runStart = x }
            if !ok, let s = runStart { body(PhysRange(base: s, end: x)); runStart = nil }
            guard let n = next else { break }
            x = n
        }
        // x is now the last boundary, an end; nothing is covered beyond it.
        if let s = runStart, s < x { body(PhysRange(base: s, end: x)) }
    }

    /// forEachAvailableRun with each run shrunk inward to whole pages; runs
    /// smaller than a page vanish. This is what the page allocator may use.
    func forEachAvailableRange<R: PhysicalMemoryReader>(_ reader: R, _ body: (PhysRange) -> Void) {
        let mask = MultibootInfo.pageSize - 1
        forEachAvailableRun(reader) { run in
            let (up, o) = run.base.addingReportingOverflow(mask)
            if o { return }
            let b = up & ~mask, e = run.end & ~mask
            if b < e { body(PhysRange(base: b, end: e)) }
        }
    }

    /// Fills `out` with the page-aligned available ranges, sorted and
    /// disjoint; returns how many were stored. Ranges beyond the capacity
    /// are dropped: memory left unused, never memory misused.
    func availableRanges<R: PhysicalMemoryReader>(_ reader: R, into out: UnsafeMutableBufferPointer<PhysRange>) -> Int {
        var n = 0
        forEachAvailableRange(reader) { r in
            if n < out.count { out[n] = r; n += 1 }
        }
        return n
    }

    /// Total page-aligned available bytes, and the end (exclusive) of the
    /// highest available range, 0 when there is none.
    func availableSummary<R: PhysicalMemoryReader>(_ reader: R) -> (totalBytes: UInt64, highestEnd: UInt64) {
        var total: UInt64 = 0, top: UInt64 = 0
        forEachAvailableRange(reader) { r in
            total += r.length
            top = r.end
        }
        return (total, top)
    }

    /// True only if every byte of [range.base, range.end) is available RAM
    /// that no other region touches. An empty or inverted range is false:
    /// the answer must never be "yes" by accident.
    func isAvailable<R: PhysicalMemoryReader>(_ reader: R, _ range: PhysRange) -> Bool {
        if range.base >= range.end { return false }
        var found = false
        // Runs are maximal and disjoint, so the range is available iff it
        // lies inside a single run.
        forEachAvailableRun(reader) { run in
            if run.base <= range.base && range.end <= run.end { found = true }
        }
        return found
    }
}
