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
}
