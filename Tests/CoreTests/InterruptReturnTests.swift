import XCTest
@testable import QuartetCore

/// When the way out of an interrupt may take an owed preemption (C1).
final class InterruptReturnTests: XCTestCase {
    let ifSet: UInt64 = 0x202, ifClear: UInt64 = 0x002

    func testOrdinaryVectorsMayPreemptWhenInterruptsWereOn() {
        for vector: UInt64 in [0, 3, 13, 14, 32, 0xE0, 0xE1, 0xEF, 0xFF] {
            XCTAssertTrue(InterruptReturn.mayPreempt(vector: vector, interruptedFlags: ifSet), "vector \(vector)")
        }
    }

    func testNeverIntoCodeThatHadInterruptsOff() {
        for vector: UInt64 in [0, 3, 14, 0xE0, 0xEF] {
            XCTAssertFalse(InterruptReturn.mayPreempt(vector: vector, interruptedFlags: ifClear), "vector \(vector)")
        }
    }

    func testNeverOutOfAnISTVector() {
        for vector: UInt64 in [2, 8, 18] {
            XCTAssertFalse(InterruptReturn.mayPreempt(vector: vector, interruptedFlags: ifSet), "vector \(vector)")
            XCTAssertFalse(InterruptReturn.mayPreempt(vector: vector, interruptedFlags: ifClear), "vector \(vector)")
        }
    }

    /// Every vector and both IF states: true exactly for non-IST vectors with IF set.
    func testExhaustively() {
        for vector: UInt64 in 0..<256 {
            for flags in [ifSet, ifClear, UInt64.max, 0] {
                let expected = ![2, 8, 18].contains(vector) && flags & (1 << 9) != 0
                XCTAssertEqual(InterruptReturn.mayPreempt(vector: vector, interruptedFlags: flags), expected)
            }
        }
    }
}
