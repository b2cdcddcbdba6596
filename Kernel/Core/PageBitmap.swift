// PageBitmap: the physical page-frame allocator's bookkeeping.
//
// One bit per 4 KiB frame, 1 = used, over storage the caller provides (the kernel
// carves it out of RAM before any allocator exists, so this type must not allocate).
// Everything starts USED: the boot code then frees what the memory map calls
// available and re-reserves what it knows is taken (kernel image, low memory, the
// bitmap itself, multiboot data). Starting from "used" means a frame nobody
// mentioned can never be handed out by accident.
//
// Bits past frameCount in the last word stay 1 forever, so word scans need no
// special case for the tail.
//
// Not thread-safe: the caller (Kern/PhysicalMemory) holds a spinlock around every
// mutating call.

struct PageBitmap {
    static let frameSize = 4096
    static let frameShift = 12

    let words: UnsafeMutablePointer<UInt64>
    let frameCount: Int
    /// Exact number of free frames; every mutation adjusts it by a popcount.
    private(set) var freeCount: Int = 0
    /// Word index where the next single-frame search starts: no word below it has
    /// a free frame. Allocation moves it up past full words; free moves it down to
    /// the freed frame, so the lowest free frame is reused first. Reuse matters
    /// under (nested) KVM: the first touch of a never-used guest page costs a
    /// host-side fault measured at milliseconds, so cycling through all of RAM
    /// (next fit) made a heap churn test 1000x slower than under TCG.
    private var hint: Int = 0

    var usedCount: Int { frameCount - freeCount }
    var wordCount: Int { PageBitmap.wordsNeeded(frames: frameCount) }

    static func wordsNeeded(frames: Int) -> Int {
        frames <= 0 ? 0 : (frames - 1) / 64 + 1
    }

    static func bytesNeeded(frames: Int) -> Int {
        wordsNeeded(frames: frames) * 8
    }

    /// `storage` must hold `wordsNeeded(frames: frameCount)` words; its contents are
    /// overwritten (all frames become used).
    init(storage: UnsafeMutablePointer<UInt64>, frameCount: Int) {
        precondition(frameCount >= 0, "PageBitmap: negative frame count")
        words = storage
        self.frameCount = frameCount
        let n = PageBitmap.wordsNeeded(frames: frameCount)
        var i = 0
        while i < n {
            storage[i] = ~0
            i += 1
        }
    }

    // Bits [lo, hi) of one word, 0 <= lo < hi <= 64.
    private static func mask(_ lo: Int, _ hi: Int) -> UInt64 {
        let upper: UInt64 = hi >= 64 ? ~0 : (UInt64(1) << UInt64(hi)) &- 1
        return upper & ~((UInt64(1) << UInt64(lo)) &- 1)
    }

    /// Clamp (first, count) to [0, frameCount); nil if nothing is left. Used by the
    /// mark* calls, whose input comes from firmware tables that may describe memory
    /// beyond what the bitmap covers.
    private func clamp(_ first: Int, _ count: Int) -> (lo: Int, hi: Int)? {
        if count <= 0 { return nil }
        let (end, o) = first.addingReportingOverflow(count)
        let hi = o ? frameCount : min(end, frameCount)
        let lo = max(first, 0)
        return lo < hi ? (lo, hi) : nil
    }

    // Set (used = true) or clear the bits [lo, hi); returns how many bits changed.
    private mutating func set(_ lo: Int, _ hi: Int, used: Bool) -> Int {
        var changed = 0
        var f = lo
        while f < hi {
            let w = f >> 6
            let top = min(hi - (w << 6), 64)
            let m = PageBitmap.mask(f & 63, top)
            let old = words[w]
            if used {
                changed += (~old & m).nonzeroBitCount
                words[w] = old | m
            } else {
                changed += (old & m).nonzeroBitCount
                words[w] = old & ~m
            }
            f = (w + 1) << 6
        }
        freeCount += used ? -changed : changed
        return changed
    }

    /// Mark frames available (clamped to the bitmap). Returns frames that changed.
    @discardableResult
    mutating func markFree(first: Int, count: Int) -> Int {
        guard let r = clamp(first, count) else { return 0 }
        return set(r.lo, r.hi, used: false)
    }

    /// Reserve frames (clamped to the bitmap). Returns frames that changed.
    @discardableResult
    mutating func markUsed(first: Int, count: Int) -> Int {
        guard let r = clamp(first, count) else { return 0 }
        return set(r.lo, r.hi, used: true)
    }

    /// Byte-address form for memory-map entries. Available RAM is rounded INWARD
    /// (a partial frame is not usable), so [base, base+length) must cover a frame
    /// entirely for it to become free.
    @discardableResult
    mutating func markFree(physBase: UInt64, length: UInt64) -> Int {
        let (end, o) = physBase.addingReportingOverflow(length)
        let top = o ? UInt64.max : end
        let size = UInt64(PageBitmap.frameSize)
        if physBase > UInt64.max - (size - 1) { return 0 }
        let first = (physBase + size - 1) >> UInt64(PageBitmap.frameShift)
        let last = top >> UInt64(PageBitmap.frameShift)   // exclusive
        if last <= first { return 0 }
        return markFree(first: PageBitmap.toInt(first), count: PageBitmap.toInt(last - first))
    }

    /// Byte-address form for reservations. Rounded OUTWARD: any frame touched by
    /// [base, base+length) becomes used.
    @discardableResult
    mutating func markUsed(physBase: UInt64, length: UInt64) -> Int {
        if length == 0 { return 0 }
        let (end, o) = physBase.addingReportingOverflow(length)
        let top = o ? UInt64.max : end
        let first = physBase >> UInt64(PageBitmap.frameShift)
        let last = (top - 1) >> UInt64(PageBitmap.frameShift) + 1   // exclusive
        return markUsed(first: PageBitmap.toInt(first), count: PageBitmap.toInt(last - first))
    }

    private static func toInt(_ v: UInt64) -> Int {
        v > UInt64(Int.max) ? Int.max : Int(v)
    }

    func isFree(_ frame: Int) -> Bool {
        if frame < 0 || frame >= frameCount { return false }
        return words[frame >> 6] & (UInt64(1) << UInt64(frame & 63)) == 0
    }

    /// Allocate `count` contiguous frames whose first frame is a multiple of
    /// `alignFrames` (a power of two) and which all lie below frame `below`
    /// (first + count <= below). Returns the first frame, or nil.
    mutating func allocate(count: Int = 1, alignFrames: Int = 1, below: Int? = nil) -> Int? {
        if count <= 0 || alignFrames <= 0 || alignFrames & (alignFrames - 1) != 0 { return nil }
        if count > freeCount { return nil }
        let limit = min(frameCount, below ?? frameCount)
        if limit < count { return nil }
        if count == 1 && alignFrames == 1 { return allocateOne(limit: limit) }
        return allocateRun(count: count, align: alignFrames, limit: limit)
    }

    // Fast path: find any zero bit, one 64-frame word at a time, starting at the hint.
    private mutating func allocateOne(limit: Int) -> Int? {
        let nwords = (limit + 63) >> 6
        // Bits at or past `limit` in the last word count as used for this search.
        let tail: UInt64 = limit & 63 == 0 ? 0 : ~PageBitmap.mask(0, limit & 63)
        var w = hint < nwords ? hint : 0
        var scanned = 0
        while scanned < nwords {
            var word = words[w]
            if w == nwords - 1 { word |= tail }
            if word != ~0 {
                let bit = (~word).trailingZeroBitCount
                words[w] |= UInt64(1) << UInt64(bit)
                freeCount -= 1
                hint = w
                return w << 6 + bit
            }
            w += 1
            if w == nwords { w = 0 }
            scanned += 1
        }
        return nil
    }

    // First fit for a run. On a conflict, jump past the highest used frame in the
    // window: no start at or below it can succeed.
    private mutating func allocateRun(count: Int, align: Int, limit: Int) -> Int? {
        var start = 0
        while start <= limit - count {
            guard let used = highestUsed(start, start + count) else {
                _ = set(start, start + count, used: true)
                return start
            }
            let next = used + 1
            let r = next & (align - 1)
            if r == 0 {
                start = next
            } else {
                let (s, o) = next.addingReportingOverflow(align - r)
                if o { return nil }
                start = s
            }
        }
        return nil
    }

    // Highest used frame in [lo, hi), scanning words from the top down.
    private func highestUsed(_ lo: Int, _ hi: Int) -> Int? {
        var w = (hi - 1) >> 6
        let firstWord = lo >> 6
        while w >= firstWord {
            let from = w == firstWord ? lo & 63 : 0
            let to = min(hi - (w << 6), 64)
            let bits = words[w] & PageBitmap.mask(from, to)
            if bits != 0 {
                return w << 6 + 63 - bits.leadingZeroBitCount
            }
            w -= 1
        }
        return nil
    }

    /// Return frames. Fails without changing anything if the range is out of
    /// bounds or any frame in it is already free (double free); the kernel turns a
    /// false into a panic naming the frame.
    mutating func free(first: Int, count: Int) -> Bool {
        if first < 0 || count <= 0 { return false }
        let (end, o) = first.addingReportingOverflow(count)
        if o || end > frameCount { return false }
        var f = first
        while f < end {
            let w = f >> 6
            let m = PageBitmap.mask(f & 63, min(end - (w << 6), 64))
            if words[w] & m != m { return false }
            f = (w + 1) << 6
        }
        _ = set(first, end, used: false)
        hint = min(hint, first >> 6)
        return true
    }

    /// Recount from the bits: freeCount must match and the tail past frameCount must
    /// still be marked used. For test suites, O(frames).
    func check() -> Bool {
        let n = wordCount
        var free = 0
        var i = 0
        while i < n {
            free += (~words[i]).nonzeroBitCount
            i += 1
        }
        if frameCount & 63 != 0 {
            let tail = ~PageBitmap.mask(0, frameCount & 63)
            if words[n - 1] & tail != tail { return false }
        }
        return free == freeCount
    }
}
