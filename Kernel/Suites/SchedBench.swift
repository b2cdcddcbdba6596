import Synchronization

// Scheduler benchmarks (part of `run=bench`): a thread switch on one CPU (two
// threads yielding to each other), a remote wake-up (a thread on one CPU wakes a
// sleeper on another: time until the sleeper runs, and the round trip when the
// sleeper wakes the first one back, as a futex ping-pong does on Linux), and a
// thread's whole life (create, run, exit, join).

/// Samples filled by one thread and read by the suite after join.
final class SampleBox {
    var samples = BenchSamples()
}

/// The wake-up ping-pong's state; `lock` is the sleep interlock of `turn`
/// (Sleep's lost-wakeup rule: the condition changes under it).
final class WakeState {
    let lock = SpinLock("bench wake")
    var turn = 0                     // 0: A's turn, 1: B's (under lock)
    var stop = false                 // under lock
    var wokenAt: UInt64 = 0          // TSC when A woke B (under lock)
    let oneWay = SampleBox()         // B: wake-up to running, only when B really slept
    let roundTrip = SampleBox()      // A
}

enum SchedBench {
    static func run(_ t: inout TestContext, _ ms: UInt64) {
        yieldSwitch(&t, ms)
        wakeups(&t, ms)
        let life = Benchmarks.timed(ms, limit: 2_000) { Thread.spawn("bench", { })?.join() }
        Benchmarks.report(&t, "thread.lifecycle", "thread create + run + exit + join (same CPU)", life)
        life.emit("thread.lifecycle", .cycles, "thread create + run + exit + join, same CPU")
    }

    /// Two threads on this CPU yielding to each other: each yield of the
    /// measuring thread is two switches.
    static func yieldSwitch(_ t: inout TestContext, _ ms: UInt64) {
        let samples = yieldSamples(ms)
        Benchmarks.report(&t, "switch.yield", "thread switch (yield between two threads)", samples)
        samples.emit("switch.yield", .cycles, "thread switch on one CPU (two threads yielding)")
    }

    static func yieldSamples(_ ms: UInt64) -> BenchSamples {
        let box = SampleBox()
        let end = TSC.now &+ TSC.ticksPerMs &* ms
        var threads: [Thread] = []
        for k in 0..<2 {
            if let td = Thread.create("switcher", priority: Thread.highPriority, cpu: PerCPU.currentNumber, {
                while TSC.now < end {
                    let t0 = TSC.now
                    for _ in 0..<50 { Scheduler.yield() }
                    if k == 0 { box.samples.add((TSC.now &- t0) / 100) }
                }
            }) { threads.append(td) }
        }
        for td in threads { Scheduler.schedule(td) }
        for td in threads { td.join() }
        return box.samples
    }

    static func wakeups(_ t: inout TestContext, _ ms: UInt64) {
        guard let (a, b) = Benchmarks.pair() else { t.skip("wakeup", reason: .needs2CPUs, "remote wake-up needs 2 CPUs"); return }
        let w = WakeState()
        let chanA = Sleep.channel(w.roundTrip), chanB = Sleep.channel(w.oneWay)
        let sleeper = Thread.create("wakee", priority: Thread.highPriority, cpu: b, {
            w.lock.lock()
            while true {
                var slept = false
                while w.turn != 1 && !w.stop { _ = Sleep.sleep(on: chanB, releasing: w.lock); slept = true }
                if w.stop { break }
                let now = TSC.now
                // Only a real wake-up counts, and only if the two TSCs agree.
                if slept && now >= w.wokenAt { w.oneWay.samples.add(now &- w.wokenAt) }
                w.turn = 0
                Sleep.wakeup(chanA)
            }
            w.lock.unlock()
        })
        let waker = Thread.create("waker", priority: Thread.highPriority, cpu: a, {
            let budget = TimeBudget(milliseconds: ms)
            w.lock.lock()
            while !budget.expired && w.roundTrip.samples.count < 20_000 {
                let t0 = TSC.now
                w.turn = 1
                w.wokenAt = TSC.now
                Sleep.wakeup(chanB)
                while w.turn != 0 { _ = Sleep.sleep(on: chanA, releasing: w.lock) }
                w.roundTrip.samples.add(TSC.now &- t0)
            }
            w.stop = true
            Sleep.wakeup(chanB)
            w.lock.unlock()
        })
        guard let sleeper, let waker else { t.expect("wakeup-threads", false, "remote wake-up: no memory for its threads"); return }
        Scheduler.schedule(sleeper)
        Scheduler.schedule(waker)
        waker.join()
        sleeper.join()
        Benchmarks.report(&t, "wakeup.remote", "remote wake-up: sleeper runs after", w.oneWay.samples)
        Benchmarks.report(&t, "wakeup.roundtrip", "remote wake-up round trip (wake, be woken back)", w.roundTrip.samples)
        w.oneWay.samples.emit("wakeup.remote", .cycles, floor: "ipi.roundtrip",
                              "remote wake-up: a sleeper on another CPU runs after")
        w.roundTrip.samples.emit("wakeup.roundtrip", .cycles, floor: "ipi.roundtrip",
                                 "wake a thread on another CPU and be woken back")
    }
}
