// The set-up wait-wakeup and wait-migrate share (docs/benchmarks.md, "Halting
// waits"): the suite's own wait kind switched to halting for the run (and back
// after it), the round counters reset, one waiter and one waker thread on
// their CPUs for `torture.seconds`, both joined. Each suite keeps its own
// choice of CPUs, its rounds and its checks.

enum HaltingWaitRounds {
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
