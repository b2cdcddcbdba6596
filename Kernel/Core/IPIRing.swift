// Index arithmetic of the LWKT IPI rings (docs/ipi-queues.md). Indices are
// free-running UInt32 counters that wrap: windex (written by the source), rindex
// and xindex (written by the target). Everything is computed modulo 2^32, so the
// rings keep working when the counters wrap at UInt32.max.
//
// Invariants: D3 occupancy (windex - rindex) never reaches the capacity;
//             D4 xindex <= rindex <= windex in ring order, each monotonic.

struct IPIRing {
    /// Slots per ring; a power of two (MAXCPUFIFO).
    let capacity: UInt32

    init(capacity: UInt32) {
        precondition(capacity >= 4 && capacity & (capacity - 1) == 0, "IPI ring capacity must be a power of two >= 4")
        self.capacity = capacity
    }

    /// Messages written and not yet taken: windex - rindex (wrap-safe).
    func occupancy(windex: UInt32, rindex: UInt32) -> UInt32 { windex &- rindex }

    /// The slot an index lands in.
    func slot(_ index: UInt32) -> Int { Int(index & (capacity - 1)) }

    /// Send must stop and drain once the ring is more than half full...
    func isNearlyFull(_ occupancy: UInt32) -> Bool { occupancy > capacity / 2 }
    /// ...and may write again once it is back to a quarter (hysteresis).
    func hasDrained(_ occupancy: UInt32) -> Bool { occupancy <= capacity / 4 }
    /// The nowait variant fails at two thirds instead of waiting.
    func refusesNowait(_ occupancy: UInt32) -> Bool { occupancy >= capacity * 2 / 3 }

    /// True when `index` has reached `sequence`, i.e. index - sequence >= 0 as a
    /// signed 32-bit distance (wait_ipiq's completion test).
    static func reached(_ index: UInt32, _ sequence: UInt32) -> Bool {
        Int32(bitPattern: index &- sequence) >= 0
    }

    /// D4 for one snapshot: xindex <= rindex <= windex in ring order.
    func ordered(windex: UInt32, rindex: UInt32, xindex: UInt32) -> Bool {
        let taken = windex &- rindex, done = rindex &- xindex
        return taken <= capacity && done <= capacity
    }
}
