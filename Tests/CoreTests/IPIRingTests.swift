import XCTest
@testable import QuartetCore

final class IPIRingTests: XCTestCase {
    let ring = IPIRing(capacity: 16)

    func testOccupancyAcrossTheWrap() {
        XCTAssertEqual(ring.occupancy(windex: 5, rindex: 5), 0)
        XCTAssertEqual(ring.occupancy(windex: 3, rindex: UInt32.max - 2), 6)
        XCTAssertEqual(ring.occupancy(windex: 0, rindex: UInt32.max), 1)
    }

    func testSlotsWrapWithTheCounter() {
        XCTAssertEqual(ring.slot(UInt32.max), 15)
        XCTAssertEqual(ring.slot(UInt32.max &+ 1), 0)
        XCTAssertEqual(ring.slot(17), 1)
    }

    func testThresholds() {
        XCTAssertFalse(ring.isNearlyFull(8))
        XCTAssertTrue(ring.isNearlyFull(9))
        XCTAssertTrue(ring.hasDrained(4))
        XCTAssertFalse(ring.hasDrained(5))
        XCTAssertFalse(ring.refusesNowait(9))
        XCTAssertTrue(ring.refusesNowait(10))
        let big = IPIRing(capacity: 32)
        XCTAssertTrue(big.refusesNowait(21))
        XCTAssertFalse(big.refusesNowait(20))
    }

    func testReachedIsWrapSafe() {
        XCTAssertTrue(IPIRing.reached(10, 10))
        XCTAssertTrue(IPIRing.reached(11, 10))
        XCTAssertFalse(IPIRing.reached(9, 10))
        XCTAssertTrue(IPIRing.reached(2, UInt32.max - 1), "2 is 4 past max-1 after the wrap")
        XCTAssertFalse(IPIRing.reached(UInt32.max - 1, 2))
    }

    func testOrderedSnapshots() {
        XCTAssertTrue(ring.ordered(windex: 10, rindex: 8, xindex: 7))
        XCTAssertTrue(ring.ordered(windex: 1, rindex: UInt32.max, xindex: UInt32.max - 3))
        XCTAssertFalse(ring.ordered(windex: 8, rindex: 10, xindex: 7), "rindex past windex")
        XCTAssertFalse(ring.ordered(windex: 10, rindex: 8, xindex: 9), "xindex past rindex")
    }

    /// A model producer/consumer run through the wrap: the thresholds never let
    /// the occupancy reach the capacity (D3).
    func testSimulatedFloodNeverFillsTheRing() {
        var w: UInt32 = UInt32.max - 100, r = w
        var maxOccupancy: UInt32 = 0
        var state: UInt64 = 42
        for _ in 0..<100_000 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            if state % 3 != 0 {
                if ring.isNearlyFull(ring.occupancy(windex: w, rindex: r)) {
                    while !ring.hasDrained(ring.occupancy(windex: w, rindex: r)) { r &+= 1 }
                }
                w &+= 1
            } else if r != w {
                r &+= 1
            }
            maxOccupancy = max(maxOccupancy, ring.occupancy(windex: w, rindex: r))
        }
        XCTAssertLessThan(maxOccupancy, ring.capacity)
        XCTAssertLessThanOrEqual(maxOccupancy, ring.capacity / 2 + 1)
    }
}
