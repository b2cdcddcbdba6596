import Synchronization

// The set-up wait-wakeup and wait-migrate share (docs/benchmarks.md, "Halting
// waits"): the suite's own wait kind switched to halting for the run (and back
// after it), the round counters reset, one waiter and one waker thread on
// their CPUs for `torture.seconds`, both joined. Each suite keeps its own
// choice of CPUs, its rounds and its checks.

enum HaltingWaitRounds {
    /// A waiter not woken within boundMs is late (reported); one still not
    /// woken after lostMs is lost (W1/W2 fail). With tick=0 on a loaded 2-core
    /// host a vCPU can be descheduled for more than 100 ms: late, not lost.
    static let boundMs: UInt64 = 100
    static let lostMs: UInt64 = 2000
    /// The waker stops after this many lost wake-ups: enough to prove a
    /// control, without 2 s each for the whole run.
    static let maxLost: UInt64 = 2

    /// The waker's wait for the waiter's ack of `round`: counts a late one in
    /// c[4] and keeps waiting up to lostMs. True if the ack came.
    static func awaitAck(_ ack: borrowing Atomic<UInt64>, round: UInt64, _ c: SharedCounters) -> Bool {
        let start = TSC.now
        while ack.load(ordering: .acquiring) < round && TSC.now &- start < TSC.ticksPerMs &* boundMs { CPU.pause() }
        guard ack.load(ordering: .acquiring) < round else { return true }
        c.values[4] &+= 1
        while ack.load(ordering: .acquiring) < round && TSC.now &- start < TSC.ticksPerMs &* lostMs { CPU.pause() }
        return ack.load(ordering: .acquiring) >= round
    }

    /// Returns the counters both threads wrote, nil if a thread could not be
    /// spawned (a failed check already recorded).
    static func run(_ t: inout TestContext, reset: () -> Void,
                    waiter waiterName: StaticString, on waiterCPU: Int, _ waiter: @escaping (SharedCounters) -> Void,
                    waker wakerName: StaticString, on wakerCPU: Int, _ waker: @escaping (UInt64, SharedCounters) -> Void) -> SharedCounters? {
        reset()
        let saved = HaltingWait.halting[WaitKind.torture.rawValue]
        HaltingWait.halting[WaitKind.torture.rawValue] = true
        defer { HaltingWait.halting[WaitKind.torture.rawValue] = saved }
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let c = SharedCounters()
        guard let w = Thread.spawn(waiterName, cpu: waiterCPU, { waiter(c) }),
              let k = Thread.spawn(wakerName, cpu: wakerCPU, { waker(seconds, c) }) else {
            t.expect("spawn", false, "spawn the waiter and the waker"); return nil
        }
        k.join()
        w.join()
        return c
    }
}
