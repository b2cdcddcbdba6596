import XCTest
@testable import QuartetCore

private final class Item: RunQueueNode {
    let id: Int
    var rqNext: Item?
    var rqPrev: Item?
    var rqLevel = -1
    init(_ id: Int) { self.id = id }
}

final class RunQueueTests: XCTestCase {
    func testHighestLevelFirstAndFIFOWithinLevel() {
        var q = RunQueue<Item>()
        let a = Item(1), b = Item(2), c = Item(3), d = Item(4)
        q.enqueue(a, level: 5); q.enqueue(b, level: 20); q.enqueue(c, level: 5); q.enqueue(d, level: 20)
        XCTAssertEqual(q.highestLevel, 20)
        XCTAssertEqual(q.mask, 1 << 5 | 1 << 20)
        XCTAssertEqual([q.popHighest(), q.popHighest(), q.popHighest(), q.popHighest()].map { $0?.id },
                       [2, 4, 1, 3])
        XCTAssertNil(q.popHighest())
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.mask, 0)
        XCTAssertTrue(q.check())
    }

    func testRemoveFromMiddleKeepsLinksAndMask() {
        var q = RunQueue<Item>()
        let items = (0..<5).map(Item.init)
        for i in items { q.enqueue(i, level: 7) }
        q.remove(items[2])
        XCTAssertEqual(items[2].rqLevel, -1)
        XCTAssertTrue(q.check())
        q.remove(items[0]); q.remove(items[4])
        XCTAssertTrue(q.check())
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(q.head(level: 7)?.id, 1)
        q.remove(items[1]); q.remove(items[3])
        XCTAssertEqual(q.mask, 0, "the bit clears when the level empties")
        XCTAssertTrue(q.check())
    }

    func testLevelBoundariesAndRequeue() {
        var q = RunQueue<Item>()
        let lo = Item(0), hi = Item(31)
        q.enqueue(lo, level: 0); q.enqueue(hi, level: 31)
        XCTAssertEqual(q.highestLevel, 31)
        XCTAssertTrue(q.popHighest() === hi)
        // A popped node can be queued again (round robin: back to the tail).
        q.enqueue(hi, level: 0)
        XCTAssertEqual(q.popHighest()?.id, 0)
        XCTAssertEqual(q.popHighest()?.id, 31)
    }

    func testRandomisedAgainstModel() {
        var q = RunQueue<Item>()
        var model: [[Item]] = Array(repeating: [], count: 32)
        let items = (0..<200).map(Item.init)
        var state: UInt64 = 0xC0FFEE
        func next() -> Int { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return Int(state % 1_000_000) }
        for _ in 0..<20_000 {
            let item = items[next() % items.count]
            switch next() % 3 {
            case 0 where item.rqLevel == -1:
                let level = next() % 32
                q.enqueue(item, level: level); model[level].append(item)
            case 1 where item.rqLevel != -1:
                model[item.rqLevel].removeAll { $0 === item }; q.remove(item)
            default:
                let expected = model.lastIndex { !$0.isEmpty }.map { model[$0].removeFirst() }
                XCTAssertTrue(q.popHighest() === expected)
            }
        }
        XCTAssertTrue(q.check())
        XCTAssertEqual(q.count, model.reduce(0) { $0 + $1.count })
    }
}
