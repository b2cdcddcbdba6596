import Foundation
import XCTest
@testable import QuartetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Host page source: posix_memalign(4096) runs, tracked so the tests can see how
// many pages the heap holds and that every run comes back with its own count.
final class PageLedger {
    var outstanding = 0          // pages
    var runs: [UnsafeMutableRawPointer: Int] = [:]
    var limit = Int.max          // refuse requests past this many outstanding pages
    var badFrees = 0
}

struct HostPages: PageSource {
    let ledger: PageLedger
    mutating func allocatePages(_ count: Int) -> UnsafeMutableRawPointer? {
        if count <= 0 || ledger.outstanding + count > ledger.limit { return nil }
        var p: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&p, 4096, count * 4096) == 0, let page = p else { return nil }
        memset(page, 0x77, count * 4096)   // garbage, as real frames would hold
        ledger.outstanding += count
        ledger.runs[page] = count
        return page
    }
    mutating func freePages(_ p: UnsafeMutableRawPointer, _ count: Int) {
        guard ledger.runs[p] == count else { ledger.badFrees += 1; return }
        ledger.runs[p] = nil
        ledger.outstanding -= count
        Foundation.free(p)
    }
}

final class SlabHeapTests: XCTestCase {
    typealias Heap = SlabHeap<HostPages>

    private func makeHeap(poison: Bool = false) -> (Heap, PageLedger) {
        let l = PageLedger()
        return (Heap(source: HostPages(ledger: l), poison: poison), l)
    }

    // Deterministic xorshift64 so a failing stress run is reproducible.
    struct Rng {
        var x: UInt64
        mutating func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    func testLayoutFacts() {
        XCTAssertLessThanOrEqual(MemoryLayout<SlabHeader>.size, Heap.bitmapOffset)
        XCTAssertLessThanOrEqual(MemoryLayout<LargeHeader>.size, Heap.pageSize)
        // Header (64 bytes) costs 4, 2, 1, 1 ... slots; the bitmap holds 256 slots.
        let caps = (0..<Heap.classCount).map { Heap.capacity($0) }
        XCTAssertEqual(caps, [252, 126, 63, 31, 15, 7, 3, 1])
        XCTAssertEqual(Heap.classIndex(size: 0, alignment: 1), 0)
        XCTAssertEqual(Heap.classIndex(size: 16, alignment: 8), 0)
        XCTAssertEqual(Heap.classIndex(size: 17, alignment: 8), 1)
        XCTAssertEqual(Heap.classIndex(size: 8, alignment: 256), 4)
        XCTAssertEqual(Heap.classIndex(size: 2048, alignment: 16), 7)
        XCTAssertNil(Heap.classIndex(size: 2049, alignment: 16))
        XCTAssertNil(Heap.classIndex(size: 8, alignment: 4096))
    }

    func testAlignmentForEveryClassAndLargeSizes() {
        var (h, _) = makeHeap()
        var ptrs: [UnsafeMutableRawPointer] = []
        for shift in 0...13 {
            let align = 1 << shift
            for size in [0, 1, 15, 16, 17, 100, 1000, 2048, 2049, 4096, 5000, 20000] {
                guard let p = h.allocate(size: size, alignment: align) else {
                    return XCTFail("size \(size) align \(align)")
                }
                let a = Int(bitPattern: p)
                XCTAssertEqual(a % align, 0, "size \(size) align \(align)")
                let isLarge = size > 2048 || align > 2048
                // Small objects never sit at a page start; large ones always do.
                XCTAssertEqual(a % 4096 == 0, isLarge, "size \(size) align \(align)")
                if !isLarge {
                    // Aligned to their class size too.
                    let cls = Heap.classSize(Heap.classIndex(size: size, alignment: align)!)
                    XCTAssertEqual(a % cls, 0)
                }
                ptrs.append(p)
            }
        }
        XCTAssertTrue(h.check())
        for p in ptrs { XCTAssertEqual(h.free(p), .freed) }
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.allocationsInUse, 0)
    }

    func testInvalidRequests() {
        var (h, l) = makeHeap()
        XCTAssertNil(h.allocate(size: 16, alignment: 0))
        XCTAssertNil(h.allocate(size: 16, alignment: 3))
        XCTAssertNil(h.allocate(size: 16, alignment: -8))
        XCTAssertNil(h.allocate(size: -1, alignment: 8))
        XCTAssertNil(h.allocate(size: Int.max, alignment: 8))
        XCTAssertNil(h.allocate(size: Int.max - 4096 * 3, alignment: 8))
        XCTAssertNil(h.allocate(size: 4096, alignment: 1 << 62))
        XCTAssertEqual(l.outstanding, 0)
        XCTAssertEqual(h.pagesHeld, 0)
        XCTAssertEqual(h.free(nil), .ignoredNil)
        XCTAssertTrue(h.check())
    }

    func testZeroSizeGivesUniqueObjects() {
        var (h, _) = makeHeap()
        let a = h.allocate(size: 0, alignment: 1)
        let b = h.allocate(size: 0, alignment: 1)
        XCTAssertNotNil(a)
        XCTAssertNotNil(b)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(h.bytesInUse, 32)
        XCTAssertEqual(h.free(a), .freed)
        XCTAssertEqual(h.free(b), .freed)
    }

    func testNoOverlapAmongManyLiveAllocations() {
        var (h, _) = makeHeap()
        var rng = Rng(x: 0xC0FFEE)
        var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        for i in 0..<3000 {
            let size = rng.below(8) == 0 ? rng.below(12000) : rng.below(300)
            let align = 1 << rng.below(7)
            guard let p = h.allocate(size: size, alignment: align) else { return XCTFail() }
            let tag = UInt8(truncatingIfNeeded: i &* 31 &+ 7)
            memset(p, Int32(tag), size)
            live.append((p, size, tag))
        }
        // Every byte still carries its owner's pattern: nothing was shared.
        for (p, size, tag) in live {
            let b = p.assumingMemoryBound(to: UInt8.self)
            for j in 0..<size where b[j] != tag {
                return XCTFail("allocation \(p) byte \(j) overwritten")
            }
        }
        // And the address ranges are pairwise disjoint.
        let sorted = live.map { (Int(bitPattern: $0.0), max($0.1, 1)) }.sorted { $0.0 < $1.0 }
        for k in 1..<sorted.count {
            XCTAssertLessThanOrEqual(sorted[k - 1].0 + sorted[k - 1].1, sorted[k].0)
        }
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.allocationsInUse, 3000)
        for (p, _, _) in live { XCTAssertEqual(h.free(p), .freed) }
        XCTAssertTrue(h.check())
    }

    func testFreeThenReuse() {
        var (h, l) = makeHeap()
        let a = h.allocate(size: 64, alignment: 8)!
        let b = h.allocate(size: 64, alignment: 8)!
        XCTAssertEqual(h.free(a), .freed)
        // The freed slot is the lowest free slot in the only slab, so it comes back.
        XCTAssertEqual(h.allocate(size: 50, alignment: 8), a)
        XCTAssertEqual(l.outstanding, 1)
        XCTAssertEqual(h.free(b), .freed)
        XCTAssertEqual(h.free(a), .freed)
        // Large: the same run may not come back, but the page count must.
        let big = h.allocate(size: 3 * 4096, alignment: 8)!
        XCTAssertEqual(h.pagesHeld, 1 + 4)
        XCTAssertEqual(h.free(big), .freed)
        XCTAssertEqual(h.pagesHeld, 1)
        XCTAssertNotNil(h.allocate(size: 3 * 4096, alignment: 8))
        XCTAssertEqual(l.badFrees, 0)
    }

    func testAllPagesReturnedExceptOneCachedEmptyPerClass() {
        var (h, l) = makeHeap()
        var ptrs: [UnsafeMutableRawPointer] = []
        // Several slabs' worth in every class, plus large blocks.
        for ci in 0..<Heap.classCount {
            for _ in 0..<(Heap.capacity(ci) * 3 + 1) {
                ptrs.append(h.allocate(size: Heap.classSize(ci), alignment: 1)!)
            }
            XCTAssertEqual(h.slabCount(classIndex: ci), 4)
        }
        for s in [4096, 8192, 9000, 100_000] { ptrs.append(h.allocate(size: s, alignment: 16)!) }
        ptrs.append(h.allocate(size: 10, alignment: 16384)!)
        XCTAssertEqual(l.outstanding, h.pagesHeld)
        XCTAssertTrue(h.check())
        var rng = Rng(x: 99)
        ptrs.shuffle(using: &rng)
        for p in ptrs { XCTAssertEqual(h.free(p), .freed) }
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.allocationsInUse, 0)
        XCTAssertEqual(h.bytesInUse, 0)
        XCTAssertEqual(h.largeAllocations, 0)
        // Exactly one cached empty slab per class that was used, nothing else.
        XCTAssertEqual(h.pagesHeld, Heap.classCount)
        XCTAssertEqual(l.outstanding, Heap.classCount)
        for ci in 0..<Heap.classCount {
            XCTAssertEqual(h.slabCount(classIndex: ci), 1)
            XCTAssertTrue(h.hasCachedEmpty(classIndex: ci))
        }
        XCTAssertEqual(l.badFrees, 0)
        // The cached slab is reused without asking the source.
        let p = h.allocate(size: 100, alignment: 1)!
        XCTAssertEqual(l.outstanding, Heap.classCount)
        XCTAssertFalse(h.hasCachedEmpty(classIndex: 3))
        XCTAssertEqual(h.free(p), .freed)
        XCTAssertTrue(h.hasCachedEmpty(classIndex: 3))
    }

    func testNoThrashAtSlabBoundary() {
        var (h, l) = makeHeap()
        // Fill one 2048-byte slab (capacity 1); alloc/free the next object repeatedly.
        let keep = h.allocate(size: 2048, alignment: 1)!
        for _ in 0..<100 {
            let p = h.allocate(size: 2048, alignment: 1)!
            XCTAssertEqual(h.free(p), .freed)
        }
        XCTAssertEqual(l.runs.count, 2)   // the full slab and the cached empty one
        XCTAssertEqual(h.free(keep), .freed)
        XCTAssertEqual(l.outstanding, 1)
    }

    func testDoubleFreeDetected() {
        var (h, _) = makeHeap()
        let keep = h.allocate(size: 32, alignment: 1)!   // keeps the slab alive
        let a = h.allocate(size: 32, alignment: 1)!
        XCTAssertEqual(h.free(a), .freed)
        XCTAssertEqual(h.free(a), .doubleFree)
        XCTAssertEqual(h.allocationsInUse, 1)
        // Also when the slab went empty and sits in the cache.
        XCTAssertEqual(h.free(keep), .freed)
        XCTAssertEqual(h.free(keep), .doubleFree)
        // A one-object slab (2048 class) that went straight from full to cached empty.
        let c = h.allocate(size: 2048, alignment: 1)!
        XCTAssertEqual(h.free(c), .freed)
        XCTAssertEqual(h.free(c), .doubleFree)
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.allocationsInUse, 0)
    }

    func testLargeDoubleFreeReportsBadMagic() {
        // Keep the released run readable by a ledger that never really frees.
        struct KeepPages: PageSource {
            var outstanding = 0
            mutating func allocatePages(_ count: Int) -> UnsafeMutableRawPointer? {
                var p: UnsafeMutableRawPointer? = nil
                guard posix_memalign(&p, 4096, count * 4096) == 0 else { return nil }
                outstanding += count
                return p
            }
            mutating func freePages(_ p: UnsafeMutableRawPointer, _ count: Int) { outstanding -= count }
        }
        var h = SlabHeap(source: KeepPages())
        let big = h.allocate(size: 10_000, alignment: 8)!
        XCTAssertEqual(h.source.outstanding, 4)
        XCTAssertEqual(h.free(big), .freed)
        XCTAssertEqual(h.source.outstanding, 0)
        XCTAssertEqual(h.free(big), .badMagic)
        XCTAssertEqual(h.source.outstanding, 0)
    }

    func testForeignAndMisalignedPointersDetected() {
        var (h, l) = makeHeap()
        let a = h.allocate(size: 128, alignment: 1)!
        let big = h.allocate(size: 5000, alignment: 1)!
        // Two host pages the heap never saw, zero filled.
        var raw: UnsafeMutableRawPointer? = nil
        XCTAssertEqual(posix_memalign(&raw, 4096, 8192), 0)
        memset(raw!, 0, 8192)
        defer { Foundation.free(raw) }
        XCTAssertEqual(h.free(raw! + 48), .badMagic)      // not page aligned
        XCTAssertEqual(h.free(raw! + 4096), .badMagic)    // page aligned, header page before it
        // Inside our slab but not at an object start, or inside the header.
        XCTAssertEqual(h.free(a + 8), .misaligned)
        let page = UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: a) & ~4095)!
        XCTAssertEqual(h.free(page + 16), .misaligned)
        // Inside a large block's data (not page aligned): the page start holds no magic.
        XCTAssertEqual(h.free(big + 100), .badMagic)
        // Inside a large block at a page boundary that is not its start.
        XCTAssertEqual(h.free(big + 4096), .badMagic)
        // A smashed slab header is reported, not trusted.
        page.storeBytes(of: UInt8(200), toByteOffset: 4, as: UInt8.self)   // class index
        XCTAssertEqual(h.free(a), .corrupt)
        page.storeBytes(of: UInt8(3), toByteOffset: 4, as: UInt8.self)
        XCTAssertEqual(h.allocationsInUse, 2)
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.free(a), .freed)
        XCTAssertEqual(h.free(big), .freed)
        XCTAssertEqual(l.outstanding, 1)
        XCTAssertTrue(FreeResult.doubleFree.isError)
        XCTAssertFalse(FreeResult.ignoredNil.isError)
    }

    func testSourceExhaustionReturnsNil() {
        var (h, l) = makeHeap()
        l.limit = 3
        XCTAssertNil(h.allocate(size: 3 * 4096, alignment: 8))   // needs 4
        let big = h.allocate(size: 2 * 4096, alignment: 8)!     // 3
        XCTAssertNil(h.allocate(size: 8, alignment: 8))
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.free(big), .freed)
        XCTAssertNotNil(h.allocate(size: 8, alignment: 8))
        XCTAssertEqual(h.pagesHeld, 1)
    }

    func testStatistics() {
        var (h, _) = makeHeap()
        let a = h.allocate(size: 20, alignment: 8)!    // 32
        let b = h.allocate(size: 700, alignment: 8)!   // 1024
        let c = h.allocate(size: 5000, alignment: 8)!  // 2 data pages + header
        XCTAssertEqual(h.allocationsInUse, 3)
        XCTAssertEqual(h.bytesInUse, 32 + 1024 + 8192)
        XCTAssertEqual(h.pagesHeld, 1 + 1 + 3)
        XCTAssertEqual(h.largeAllocations, 1)
        XCTAssertEqual(h.objectCount(classIndex: 1), 1)
        XCTAssertEqual(h.slabCount(classIndex: 6), 1)
        XCTAssertEqual(h.free(c), .freed)
        XCTAssertEqual(h.free(b), .freed)
        XCTAssertEqual(h.free(a), .freed)
        XCTAssertEqual(h.bytesInUse, 0)
        XCTAssertEqual(h.pagesHeld, 2)
    }

    func testPoisonFillAndUseAfterFreeDetection() {
        var (h, _) = makeHeap(poison: true)
        let keep = h.allocate(size: 64, alignment: 1)!
        let a = h.allocate(size: 64, alignment: 1)!
        memset(a, 0x11, 64)
        XCTAssertEqual(h.free(a), .freed)
        let bytes = a.assumingMemoryBound(to: UInt8.self)
        XCTAssertTrue((0..<64).allSatisfy { bytes[$0] == 0xDB })
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.poisonViolations, 0)
        // A write after free breaks the fill: check() fails and the next allocation
        // of that slot records the violation.
        bytes[40] = 0
        XCTAssertFalse(h.check())
        let again = h.allocate(size: 64, alignment: 1)!
        XCTAssertEqual(again, a)
        XCTAssertEqual(h.poisonViolations, 1)
        XCTAssertEqual(h.lastPoisonViolation, a)
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.free(again), .freed)
        XCTAssertEqual(h.free(keep), .freed)
        XCTAssertTrue(h.check())
    }

    func testCheckCatchesCorruptedHeader() {
        var (h, _) = makeHeap()
        let a = h.allocate(size: 16, alignment: 1)!
        XCTAssertTrue(h.check())
        let page = UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: a) & ~4095)!
        let bitmap = (page + Heap.bitmapOffset).assumingMemoryBound(to: UInt64.self)
        let saved = bitmap[2]
        bitmap[2] |= 1 << 9          // a phantom allocation
        XCTAssertFalse(h.check())
        bitmap[2] = saved
        XCTAssertTrue(h.check())
        XCTAssertEqual(h.free(a), .freed)
    }

    func testRandomizedStress() {
        for poison in [false, true] {
            var (h, l) = makeHeap(poison: poison)
            var rng = Rng(x: 0x5EED_1234_ABCD)
            var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
            for phase in 0..<6 {
                // Alternate growth-biased and shrink-biased phases.
                let allocBias = phase % 2 == 0 ? 7 : 3
                for _ in 0..<4000 {
                    if live.isEmpty || rng.below(10) < allocBias {
                        let r = rng.below(100)
                        let size = r < 80 ? rng.below(257) : (r < 97 ? rng.below(2049) : rng.below(20000))
                        let align = 1 << rng.below(r == 0 ? 14 : 6)
                        guard let p = h.allocate(size: size, alignment: align) else {
                            return XCTFail("allocation failed")
                        }
                        XCTAssertEqual(Int(bitPattern: p) % align, 0)
                        let tag = UInt8(truncatingIfNeeded: rng.next())
                        memset(p, Int32(tag), size)
                        live.append((p, size, tag))
                    } else {
                        let i = rng.below(live.count)
                        live.swapAt(i, live.count - 1)
                        let (p, size, tag) = live.removeLast()
                        let b = p.assumingMemoryBound(to: UInt8.self)
                        if size > 0 && (b[0] != tag || b[size - 1] != tag) {
                            return XCTFail("contents of \(p) changed while live")
                        }
                        XCTAssertEqual(h.free(p), .freed)
                    }
                }
                XCTAssertTrue(h.check(), "phase \(phase) poison \(poison)")
                XCTAssertEqual(h.allocationsInUse, live.count)
                XCTAssertEqual(l.outstanding, h.pagesHeld)
            }
            for (p, _, _) in live { XCTAssertEqual(h.free(p), .freed) }
            XCTAssertTrue(h.check())
            XCTAssertEqual(h.allocationsInUse, 0)
            XCTAssertEqual(h.poisonViolations, 0)
            XCTAssertLessThanOrEqual(h.pagesHeld, Heap.classCount)
            XCTAssertEqual(h.pagesHeld,
                           (0..<Heap.classCount).filter { h.hasCachedEmpty(classIndex: $0) }.count)
            XCTAssertEqual(l.badFrees, 0)
        }
    }
}

extension SlabHeapTests.Rng: RandomNumberGenerator {}

