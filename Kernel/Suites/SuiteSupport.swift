import Synchronization

// Small tools the suites share: counters in raw memory, per-pair tables, a
// random generator, and snapshots of the IPI statistics.

/// 64 plain counters in raw heap memory shared by a suite's threads (not a Swift
/// Array: concurrent mutation of an Array may copy its buffer). Each suite says
/// which lock or which single writer protects each slot.
final class SharedCounters {
    let values = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
    init() { values.initialize(repeating: 0, count: 64) }
    deinit { values.deallocate() }
}

/// Per-CPU counters of a few kinds ([kind][cpu], room for every possible CPU),
/// in raw memory for the same reason. Each suite says who writes each kind.
final class CPUCounters {
    let kinds: Int
    let cells: UnsafeMutablePointer<UInt64>
    init(kinds: Int) {
        self.kinds = kinds
        cells = .allocate(capacity: kinds * PerCPU.maxCPUs)
        cells.initialize(repeating: 0, count: kinds * PerCPU.maxCPUs)
    }
    deinit { cells.deallocate() }
    subscript(_ kind: Int, _ cpu: Int) -> UInt64 {
        get { cells[kind * PerCPU.maxCPUs + cpu] }
        set { cells[kind * PerCPU.maxCPUs + cpu] = newValue }
    }
    func sum(_ kind: Int, over cpus: CPUMask) -> UInt64 {
        var total: UInt64 = 0
        cpus.forEach { total &+= self[kind, $0] }
        return total
    }
}

/// Counters indexed by an ordered CPU pair and a kind (0 or 1), in raw memory.
/// Each suite says which side writes each table.
final class PairTable {
    let n: Int
    let cells: UnsafeMutablePointer<UInt64>
    init(_ n: Int) { self.n = n; cells = .allocate(capacity: n * n * 2); cells.initialize(repeating: 0, count: n * n * 2) }
    deinit { cells.deallocate() }
    subscript(_ a: Int, _ b: Int, kind kind: Int = 0) -> UInt64 {
        get { cells[(a * n + b) * 2 + kind] }
        set { cells[(a * n + b) * 2 + kind] = newValue }
    }
    /// Both kinds of one pair.
    func both(_ a: Int, _ b: Int) -> UInt64 { self[a, b, kind: 0] &+ self[a, b, kind: 1] }
}

/// xorshift64: cheap, deterministic per seed, good enough to pick targets.
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed &* 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    /// Uniform-enough in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// IPI statistics summed over CPUs, and deltas between two snapshots. Global
/// counters: suites report them as figures, never check their own traffic with them.
struct IPIStats {
    var sent: UInt64 = 0, received: UInt64 = 0, ipis: UInt64 = 0, avoided: UInt64 = 0, fullWaits: UInt64 = 0
    static func now(_ cpus: CPUMask = CPUMask(bits: UInt64.max)) -> IPIStats {
        var s = IPIStats()
        for (i, t) in IPIQueue.targets.enumerated() where cpus.contains(i) {
            s.sent += t.sent.load(ordering: .relaxed); s.received += t.received.load(ordering: .relaxed)
            s.ipis += t.ipisSent.load(ordering: .relaxed); s.avoided += t.ipisAvoided.load(ordering: .relaxed)
            s.fullWaits += t.fifoFullWaits.load(ordering: .relaxed)
        }
        return s
    }
    func minus(_ o: IPIStats) -> IPIStats {
        IPIStats(sent: sent &- o.sent, received: received &- o.received, ipis: ipis &- o.ipis,
                 avoided: avoided &- o.avoided, fullWaits: fullWaits &- o.fullWaits)
    }
    func write(_ l: inout FixedLineBuffer) {
        l.write("messages sent "); l.dec(sent); l.write(", received "); l.dec(received)
        l.write(", hardware IPIs "); l.dec(ipis); l.write(", IPIs avoided "); l.dec(avoided)
        l.write(", full-FIFO waits "); l.dec(fullWaits)
    }
}

/// Polls `done` until it holds or `ms` pass; returns it. With `processing`, this
/// CPU's IPI messages are processed while it waits (never inside a handler that
/// must not nest).
func spinUntil(milliseconds ms: UInt64, processing: Bool = true, _ done: () -> Bool) -> Bool {
    let budget = TimeBudget(milliseconds: ms)
    while !done() {
        if budget.expired { return done() }
        if processing { IPIQueue.process() }
        Rendezvous.servicePending()        // a waiter with interrupts off still joins
        CPU.pause()
    }
    return true
}
