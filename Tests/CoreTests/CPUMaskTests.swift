import XCTest
@testable import QuartetCore

final class CPUMaskTests: XCTestCase {
    func testInsertRemoveContains() {
        var m = CPUMask()
        XCTAssertTrue(m.isEmpty)
        m.insert(0); m.insert(5); m.insert(63)
        XCTAssertEqual(m.count, 3)
        XCTAssertTrue(m.contains(63))
        XCTAssertFalse(m.contains(1))
        XCTAssertFalse(m.contains(64))
        XCTAssertFalse(m.contains(-1))
        m.remove(5)
        XCTAssertEqual(m.bits, 1 | 1 << 63)
    }

    func testFirstN() {
        XCTAssertEqual(CPUMask.first(0).bits, 0)
        XCTAssertEqual(CPUMask.first(4).bits, 0xF)
        XCTAssertEqual(CPUMask.first(64).bits, UInt64.max)
        XCTAssertEqual(CPUMask.first(100).bits, UInt64.max)
    }

    func testRotorScanWraps() {
        let m = CPUMask(bits: 0b1001_0010)   // CPUs 1, 4, 7
        XCTAssertEqual(m.next(atOrAfter: 0), 1)
        XCTAssertEqual(m.next(atOrAfter: 2), 4)
        XCTAssertEqual(m.next(atOrAfter: 7), 7)
        XCTAssertEqual(m.next(atOrAfter: 8), 1)
        XCTAssertEqual(m.next(atOrAfter: 64 + 5), 7)
        XCTAssertNil(CPUMask().next(atOrAfter: 3))
    }

    func testSetAlgebraAndIteration() {
        let a = CPUMask(bits: 0b1100), b = CPUMask(bits: 0b1010)
        XCTAssertEqual(a.union(b).bits, 0b1110)
        XCTAssertEqual(a.intersection(b).bits, 0b1000)
        XCTAssertEqual(a.subtracting(b).bits, 0b0100)
        var seen: [Int] = []
        CPUMask(bits: 1 | 1 << 9 | 1 << 63).forEach { seen.append($0) }
        XCTAssertEqual(seen, [0, 9, 63])
        XCTAssertEqual(CPUMask(bits: 0b1000).first, 3)
        XCTAssertNil(CPUMask().first)
    }

    func testNthWalksTheSetInOrder() {
        let m = CPUMask(bits: 1 << 1 | 1 << 4 | 1 << 9 | 1 << 63)
        XCTAssertEqual((0..<4).map { m.nth($0) }, [1, 4, 9, 63])
        XCTAssertNil(m.nth(4))
        XCTAssertNil(m.nth(-1))
        XCTAssertNil(CPUMask().nth(0))
        XCTAssertEqual([1, 4, 9, 63].map { m.rank(of: $0) }, [0, 1, 2, 3])
        XCTAssertNil(m.rank(of: 2))
    }

    /// The ipiq-torture bug this replaces: `next(atOrAfter: r % 64)` over CPUs
    /// {0,1,2,3} lands on CPU 0 for 61 of 64 values; nth(r % count) is uniform.
    func testNthIsUniformWhereTheRotorIsNot() {
        let m = CPUMask.first(4)
        var rotor = [Int](repeating: 0, count: 4), uniform = [Int](repeating: 0, count: 4)
        for r in 0..<64 {
            rotor[m.next(atOrAfter: r)!] += 1
            uniform[m.nth(r % m.count)!] += 1
        }
        XCTAssertEqual(rotor, [61, 1, 1, 1])
        XCTAssertEqual(uniform, [16, 16, 16, 16])
    }
}
