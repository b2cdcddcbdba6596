// A set of CPU numbers (0..63) as one 64-bit word: cpumask_t / cpuset_t. Pure
// value type; the kernel shares masks between CPUs through Atomic<UInt64>.

struct CPUMask: Equatable {
    static let capacity = 64
    var bits: UInt64

    init(bits: UInt64 = 0) { self.bits = bits }
    init(_ cpu: Int) { bits = CPUMask.bit(cpu) }
    /// CPUs 0..<count.
    static func first(_ count: Int) -> CPUMask {
        CPUMask(bits: count >= 64 ? UInt64.max : (UInt64(1) << UInt64(max(0, count))) &- 1)
    }

    static func bit(_ cpu: Int) -> UInt64 {
        precondition(cpu >= 0 && cpu < capacity, "CPU number out of range")
        return UInt64(1) << UInt64(cpu)
    }

    var isEmpty: Bool { bits == 0 }
    var count: Int { bits.nonzeroBitCount }
    func contains(_ cpu: Int) -> Bool { cpu >= 0 && cpu < 64 && bits & CPUMask.bit(cpu) != 0 }
    mutating func insert(_ cpu: Int) { bits |= CPUMask.bit(cpu) }
    mutating func remove(_ cpu: Int) { bits &= ~CPUMask.bit(cpu) }
    func union(_ o: CPUMask) -> CPUMask { CPUMask(bits: bits | o.bits) }
    func intersection(_ o: CPUMask) -> CPUMask { CPUMask(bits: bits & o.bits) }
    func subtracting(_ o: CPUMask) -> CPUMask { CPUMask(bits: bits & ~o.bits) }
    /// The lowest CPU in the set, or nil.
    var first: Int? { bits == 0 ? nil : bits.trailingZeroBitCount }

    /// The first CPU >= `start` in the set, wrapping around (a rotor scan).
    func next(atOrAfter start: Int) -> Int? {
        guard bits != 0 else { return nil }
        let s = ((start % 64) + 64) % 64
        let high = bits & (UInt64.max << UInt64(s))
        return high != 0 ? high.trailingZeroBitCount : bits.trailingZeroBitCount
    }

    /// The k-th CPU of the set in ascending order (k from 0), or nil when the set
    /// has k or fewer CPUs. With k uniform in 0..<count this is a uniform choice
    /// (a rotor like `next(atOrAfter:)` is not: it favours CPUs after gaps).
    func nth(_ k: Int) -> Int? {
        guard k >= 0 && k < count else { return nil }
        var b = bits
        for _ in 0..<k { b &= b &- 1 }
        return b.trailingZeroBitCount
    }

    /// The position of `cpu` in the set in ascending order (the inverse of nth),
    /// or nil when it is not in the set.
    func rank(of cpu: Int) -> Int? {
        guard contains(cpu) else { return nil }
        return (bits & (CPUMask.bit(cpu) &- 1)).nonzeroBitCount
    }

    /// Calls `body` for every CPU in ascending order.
    func forEach(_ body: (Int) -> Void) {
        var b = bits
        while b != 0 {
            let cpu = b.trailingZeroBitCount
            body(cpu)
            b &= b &- 1
        }
    }
}
