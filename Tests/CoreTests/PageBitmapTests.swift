import XCTest
@testable import QuartetCore

final class PageBitmapTests: XCTestCase {
    // Owns the word storage for one bitmap, the way the kernel carves it from RAM.
    final class Storage {
        let words: UnsafeMutablePointer<UInt64>
        let count: Int
        init(frames: Int) {
            count = max(PageBitmap.wordsNeeded(frames: frames), 1)
            words = .allocate(capacity: count)
            words.initialize(repeating: 0x5A5A_5A5A_5A5A_5A5A, count: count)  // garbage
        }
        deinit { words.deallocate() }
    }

    private var keep: [Storage] = []

    private func make(_ frames: Int, free: Bool = true) -> PageBitmap {
        let s = Storage(frames: frames)
        keep.append(s)
        var b = PageBitmap(storage: s.words, frameCount: frames)
        if free { b.markFree(first: 0, count: frames) }
        return b
    }

    func testWordsNeededEdges() {
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 0), 0)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 1), 1)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 63), 1)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 64), 1)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 65), 2)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: 128), 2)
        XCTAssertEqual(PageBitmap.bytesNeeded(frames: 65), 16)
        XCTAssertEqual(PageBitmap.wordsNeeded(frames: -5), 0)
    }

    func testStartsAllUsedAndTailStaysUsed() {
        var b = make(70, free: false)
        XCTAssertEqual(b.freeCount, 0)
        XCTAssertEqual(b.usedCount, 70)
        XCTAssertNil(b.allocate())
        XCTAssertTrue(b.check())
        // Freeing beyond the end is clamped: the tail bits of word 1 never clear.
        XCTAssertEqual(b.markFree(first: 0, count: 1000), 70)
        XCTAssertEqual(b.freeCount, 70)
        XCTAssertEqual(b.words[1] >> 6, (UInt64(1) << 58) - 1)
        XCTAssertTrue(b.check())
    }

    func testZeroFrames() {
        var b = make(0)
        XCTAssertEqual(b.freeCount, 0)
        XCTAssertNil(b.allocate())
        XCTAssertFalse(b.free(first: 0, count: 1))
        XCTAssertFalse(b.isFree(0))
        XCTAssertTrue(b.check())
    }

    func testMarkFreeAndUsedCountExactly() {
        var b = make(200, free: false)
        XCTAssertEqual(b.markFree(first: 10, count: 100), 100)
        XCTAssertEqual(b.markFree(first: 50, count: 100), 40)      // overlap counted once
        XCTAssertEqual(b.freeCount, 140)
        XCTAssertEqual(b.markUsed(first: 0, count: 20), 10)
        XCTAssertEqual(b.markUsed(first: -5, count: 10), 0)        // clamped, already used
        XCTAssertEqual(b.freeCount, 130)
        XCTAssertFalse(b.isFree(19))
        XCTAssertTrue(b.isFree(20))
        XCTAssertTrue(b.isFree(149))
        XCTAssertFalse(b.isFree(150))
        XCTAssertEqual(b.markFree(first: Int.max - 1, count: 10), 0)  // overflow-safe
        XCTAssertTrue(b.check())
    }

    func testByteAddressRounding() {
        var b = make(64, free: false)
        // Available RAM rounds inward: 0x1800..<0x5800 covers frames 2, 3, 4 only.
        XCTAssertEqual(b.markFree(physBase: 0x1800, length: 0x4000), 3)
        XCTAssertFalse(b.isFree(1))
        XCTAssertTrue(b.isFree(2))
        XCTAssertTrue(b.isFree(4))
        XCTAssertFalse(b.isFree(5))
        // A sub-frame region frees nothing.
        XCTAssertEqual(b.markFree(physBase: 0x10100, length: 0x800), 0)
        // Reservations round outward: 0x2FFF..<0x4001 touches frames 2, 3, 4.
        XCTAssertEqual(b.markUsed(physBase: 0x2FFF, length: 0x1002), 3)
        XCTAssertEqual(b.freeCount, 0)
        // Huge/overflowing ranges clamp instead of trapping.
        XCTAssertEqual(b.markFree(physBase: 0, length: UInt64.max), 64)
        XCTAssertEqual(b.markUsed(physBase: UInt64.max - 10, length: 100), 0)
        XCTAssertEqual(b.markFree(physBase: UInt64.max - 10, length: 100), 0)
        XCTAssertEqual(b.freeCount, 64)
        XCTAssertTrue(b.check())
    }

    func testSingleAllocationsExhaustAndAreDistinct() {
        var b = make(300)
        var seen = Set<Int>()
        for _ in 0..<300 {
            guard let f = b.allocate() else { return XCTFail("ran out early") }
            XCTAssertTrue(f >= 0 && f < 300)
            XCTAssertTrue(seen.insert(f).inserted, "frame \(f) handed out twice")
            XCTAssertFalse(b.isFree(f))
        }
        XCTAssertEqual(b.freeCount, 0)
        XCTAssertEqual(b.usedCount, 300)
        XCTAssertNil(b.allocate())
        XCTAssertNil(b.allocate(count: 2))
        XCTAssertTrue(b.check())
        // Free one in the middle: the rotating hint must still find it.
        XCTAssertTrue(b.free(first: 77, count: 1))
        XCTAssertEqual(b.allocate(), 77)
        XCTAssertNil(b.allocate())
    }

    func testFreeRejectsDoubleFreeAndOutOfRangeWithoutChanges() {
        var b = make(128)
        guard let f = b.allocate(count: 8) else { return XCTFail() }
        let before = b.freeCount
        XCTAssertTrue(b.free(first: f + 2, count: 2))
        XCTAssertEqual(b.freeCount, before + 2)
        // Range overlapping an already free frame: rejected, nothing changes.
        XCTAssertFalse(b.free(first: f, count: 8))
        XCTAssertEqual(b.freeCount, before + 2)
        XCTAssertFalse(b.isFree(f))
        XCTAssertFalse(b.isFree(f + 7))
        XCTAssertFalse(b.free(first: f + 2, count: 1))
        XCTAssertFalse(b.free(first: -1, count: 1))
        XCTAssertFalse(b.free(first: 127, count: 2))
        XCTAssertFalse(b.free(first: 128, count: 1))
        XCTAssertFalse(b.free(first: 0, count: 0))
        XCTAssertFalse(b.free(first: 1, count: Int.max))
        XCTAssertEqual(b.freeCount, before + 2)
        XCTAssertTrue(b.free(first: f, count: 2))
        XCTAssertTrue(b.free(first: f + 4, count: 4))
        XCTAssertEqual(b.freeCount, 128)
        XCTAssertTrue(b.check())
    }

    func testContiguousAlignedRuns() {
        var b = make(1024)
        b.markUsed(first: 0, count: 3)
        // 16 frames aligned to 16: first fit skips [0,16) because 0..2 are used.
        XCTAssertEqual(b.allocate(count: 16, alignFrames: 16), 16)
        // A run that straddles words and must skip a used frame in the middle.
        b.markUsed(first: 40, count: 1)
        XCTAssertEqual(b.allocate(count: 20), 41)
        // 0 is blocked, the next 64-aligned start is free for 100 frames.
        XCTAssertEqual(b.allocate(count: 100, alignFrames: 64), 64)
        // The 13-frame hole 3..<16 fits a 13-run but not 14.
        XCTAssertEqual(b.allocate(count: 13), 3)
        XCTAssertEqual(b.allocate(count: 8), 32)
        XCTAssertEqual(b.allocate(count: 3), 61)
        XCTAssertEqual(b.freeCount, 1024 - 3 - 16 - 1 - 20 - 100 - 13 - 8 - 3)
        XCTAssertTrue(b.check())
    }

    func testRunAlignmentProperty() {
        var b = make(4096)
        // Scatter some used frames, then check every run obeys its alignment and
        // lands entirely on frames that were free.
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<200 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            b.markUsed(first: Int(x % 4096), count: 1)
        }
        for align in [1, 2, 4, 8, 32, 128] {
            for count in [2, 3, 7, 16] {
                let freeBefore = b.freeCount
                guard let f = b.allocate(count: count, alignFrames: align) else { continue }
                XCTAssertEqual(f % align, 0)
                XCTAssertEqual(b.freeCount, freeBefore - count)
                for i in f..<(f + count) { XCTAssertFalse(b.isFree(i)) }
                XCTAssertTrue(b.free(first: f, count: count))
                // First fit: no earlier aligned start has `count` free frames.
                var s = 0
                while s < f {
                    XCTAssertFalse((s..<(s + count)).allSatisfy { b.isFree($0) },
                                   "earlier run at \(s) for count \(count) align \(align)")
                    s += align
                }
            }
        }
        XCTAssertTrue(b.check())
    }

    func testBelowLimit() {
        var b = make(256)
        b.markUsed(first: 0, count: 16)
        // Only frames 16..<20 qualify below 20.
        var got: [Int] = []
        while let f = b.allocate(below: 20) { got.append(f) }
        XCTAssertEqual(got.sorted(), [16, 17, 18, 19])
        XCTAssertNil(b.allocate(count: 2, below: 40 - 20))
        XCTAssertEqual(b.allocate(count: 4, alignFrames: 4, below: 40), 20)
        XCTAssertEqual(b.allocate(count: 16, below: 40), 24)
        XCTAssertNil(b.allocate(count: 1, below: 40))
        XCTAssertNil(b.allocate(below: 0))
        XCTAssertNil(b.allocate(below: -3))
        // A limit past the end is just the end.
        XCTAssertNotNil(b.allocate(below: 1_000_000))
        // The hint may sit above the limit after a high allocation; a low-limited
        // request must still search from the bottom.
        XCTAssertTrue(b.free(first: 18, count: 1))
        XCTAssertEqual(b.allocate(count: 1, below: 64), 18)
        XCTAssertTrue(b.check())
    }

    func testBelowLimitMidWord() {
        var b = make(128)
        b.markUsed(first: 0, count: 70)
        XCTAssertNil(b.allocate(below: 70))
        XCTAssertEqual(b.allocate(below: 71), 70)
        XCTAssertNil(b.allocate(below: 71))
    }

    func testInvalidArguments() {
        var b = make(64)
        XCTAssertNil(b.allocate(count: 0))
        XCTAssertNil(b.allocate(count: -1))
        XCTAssertNil(b.allocate(count: 2, alignFrames: 3))
        XCTAssertNil(b.allocate(count: 1, alignFrames: 0))
        XCTAssertNil(b.allocate(count: 65))
        XCTAssertEqual(b.freeCount, 64)
        XCTAssertEqual(b.allocate(count: 64), 0)
        XCTAssertEqual(b.freeCount, 0)
    }

    func testRandomizedAgainstModel() {
        let frames = 1000
        var b = make(frames)
        var model = [Bool](repeating: false, count: frames)   // true = used
        var live: [(Int, Int)] = []
        var x: UInt64 = 12345
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        for _ in 0..<5000 {
            if next() % 3 != 0 || live.isEmpty {
                let count = Int(next() % 4 == 0 ? next() % 9 + 1 : 1)
                let align = 1 << Int(next() % 3)
                if let f = b.allocate(count: count, alignFrames: align) {
                    XCTAssertEqual(f % align, 0)
                    for i in f..<(f + count) {
                        XCTAssertFalse(model[i]); model[i] = true
                    }
                    live.append((f, count))
                }
            } else {
                let i = Int(next() % UInt64(live.count))
                let (f, c) = live.remove(at: i)
                XCTAssertTrue(b.free(first: f, count: c))
                for j in f..<(f + c) { model[j] = false }
            }
            XCTAssertEqual(b.freeCount, model.filter { !$0 }.count)
        }
        for i in 0..<frames { XCTAssertEqual(b.isFree(i), !model[i]) }
        XCTAssertTrue(b.check())
    }
}
