// Priority run queues: `levels` FIFO lists of intrusively linked nodes plus a
// bitmap with bit p set exactly when level p is non-empty. Insert at the tail,
// take from the head of the highest non-empty level; O(1) everywhere. Used by the
// LWKT per-CPU scheduler (higher level = more important) and the bsd4 queues.
// No locking: the owner serialises access (LWKT: only the owning CPU, with
// interrupts off).

protocol RunQueueNode: AnyObject {
    var rqNext: Self? { get set }
    var rqPrev: Self? { get set }
    /// The level the node is queued at, or -1 when it is not queued.
    var rqLevel: Int { get set }
}

struct RunQueue<Node: RunQueueNode> {
    static var levels: Int { 32 }
    private var heads = InlineArray<32, Node?>(repeating: nil)
    private var tails = InlineArray<32, Node?>(repeating: nil)
    /// Bit p set <=> level p non-empty (invariant A2-style, checked by `check`).
    private(set) var mask: UInt32 = 0
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { mask == 0 }
    /// The highest non-empty level, or nil.
    var highestLevel: Int? { mask == 0 ? nil : 31 - mask.leadingZeroBitCount }

    mutating func enqueue(_ n: Node, level: Int) {
        precondition(level >= 0 && level < Self.levels, "run-queue level out of range")
        precondition(n.rqLevel == -1, "node already queued")
        n.rqLevel = level
        n.rqNext = nil
        n.rqPrev = tails[level]
        if let tail = tails[level] { tail.rqNext = n } else { heads[level] = n }
        tails[level] = n
        mask |= 1 << UInt32(level)
        count += 1
    }

    mutating func remove(_ n: Node) {
        let level = n.rqLevel
        precondition(level >= 0 && level < Self.levels, "node is not queued")
        if let p = n.rqPrev { p.rqNext = n.rqNext } else { heads[level] = n.rqNext }
        if let x = n.rqNext { x.rqPrev = n.rqPrev } else { tails[level] = n.rqPrev }
        n.rqNext = nil
        n.rqPrev = nil
        n.rqLevel = -1
        if heads[level] == nil { mask &= ~(1 << UInt32(level)) }
        count -= 1
    }

    /// The head of the highest non-empty level, without removing it.
    func peekHighest() -> Node? {
        guard let level = highestLevel else { return nil }
        return heads[level]
    }

    mutating func popHighest() -> Node? {
        guard let level = highestLevel, let n = headInPlace(level: level) else { return nil }
        remove(n)
        return n
    }

    func head(level: Int) -> Node? { heads[level] }

    /// The same, for hot paths that hold the queue in place (inout): reading a
    /// slot of a borrowed InlineArray makes the compiler copy the whole array
    /// first (seen in the kernel's code: 256 bytes per lookup); through inout
    /// it is one load.
    mutating func headInPlace(level: Int) -> Node? { heads[level] }

    /// Recounts every list: bits match emptiness, links are consistent, levels are
    /// recorded, and the total matches `count`.
    func check() -> Bool {
        var total = 0
        for level in 0..<Self.levels {
            let empty = heads[level] == nil
            if empty != (mask & (1 << UInt32(level)) == 0) { return false }
            if empty != (tails[level] == nil) { return false }
            var prev: Node? = nil
            var n = heads[level]
            while let node = n {
                if node.rqLevel != level || node.rqPrev !== prev { return false }
                total += 1
                if total > count { return false }
                prev = node
                n = node.rqNext
            }
            if tails[level] !== prev { return false }
        }
        return total == count
    }
}
