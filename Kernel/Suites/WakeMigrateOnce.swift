import Synchronization

// wake-migrate, second part: one wake per round, so that a lost wake shows.
// In the first part every CPU's waker wakes the sleepers without pause, and a
// wake lost by the kernel is repaired by the next one within microseconds.
// Here one waker on a fixed CPU waits until the sleeper is queued asleep, wakes
// it once, and waits for the sleeper's next round, at most 5 s: a round not
// seen by then is a lost wake (counted; the waker wakes again to go on). The
// sleeper keeps both window hooks and moves to the next CPU after each round,
// so the wake is mostly a message to another CPU and sometimes a stale one.
// Fails on a kernel whose owner CPU drops or never queues a wake message for a
// thread it owns, or forwards one to a CPU that does not own the thread.

extension WakeMigrate {
    /// Counters of this part: [16] rounds, [17] runs on a CPU that did not own
    /// the sleeper, [18] the round the sleeper is about to sleep for (+1).
    static func onceSleeper(_ c: SharedCounters) {
        let me = Thread.current
        var rng = XorShift(seed: 0x5EED_0001 &+ TSC.now)
        let window = TSC.ticksPerMs / 10                                   // up to 100 us
        while !stop.load(ordering: .relaxed) {
            me.wakeSendDelayCycles = 1 + UInt64(rng.below(Int(max(1, window))))
            me.sleepSwitchDelayCycles = window / 5
            c.values[18] = c.values[16] &+ 1
            _ = Sleep.sleep(on: UInt(bitPattern: c.values + 16))
            let flags = CPU.saveFlagsAndDisableInterrupts()
            if me.cpu != PerCPU.currentNumber { c.values[17] &+= 1 }
            let here = PerCPU.currentNumber
            CPU.restoreFlags(flags)
            c.values[16] &+= 1
            WakeMigrate.moveOn(me, from: here, &rng)
        }
        me.wakeSendDelayCycles = 0
        me.sleepSwitchDelayCycles = 0
        exited.wrappingAdd(1, ordering: .releasing)
    }

    /// Records its own checks (the suite's verdict is derived from them) and
    /// returns the sleeper's window counts (the continuous part's window check adds them).
    static func singleWakes(_ t: inout TestContext, _ cpus: CPUMask, milliseconds: UInt64) -> (inSwitch: UInt64, stale: UInt64) {
        stop.store(false, ordering: .relaxed)
        exited.store(0, ordering: .relaxed)
        let c = SharedCounters()
        let chan = UInt(bitPattern: c.values + 16)
        guard let sleeper = Thread.spawn("wake once sleeper", priority: Thread.normalPriority + 1, cpu: cpus.nth(1) ?? 0,
                                         { WakeMigrate.onceSleeper(c) }) else {
            t.expect("spawn", false, "spawn the single-wake sleeper"); return (0, 0)
        }
        let limit = TSC.ticksPerMs &* 5000          // late is not lost: the nested KVM's vCPUs can pause for seconds
        var lost: UInt64 = 0, wakes: UInt64 = 0
        let start = TSC.now
        var last: UInt64 = 0
        while TSC.now &- start < TSC.ticksPerMs &* milliseconds {
            // Queued asleep for the next round (a wake before that is not owed).
            let r = last &+ 1
            let asleep = spinUntil(milliseconds: 2000) { BindRules.peek(c.values + 18) == r && sleeper.state == .sleeping }
            if !asleep { break }
            Sleep.wakeup(chan)
            wakes &+= 1
            let t0 = TSC.now
            while BindRules.peek(c.values + 16) < r {
                if TSC.now &- t0 > limit {
                    lost &+= 1
                    Sleep.wakeup(chan)                       // go on
                    break
                }
                CPU.pause()
            }
            _ = spinUntil(milliseconds: 2000) { BindRules.peek(c.values + 16) >= r }
            last = BindRules.peek(c.values + 16)
        }
        stop.store(true, ordering: .relaxed)
        let t1 = TSC.now
        while exited.load(ordering: .acquiring) == 0 && TSC.now &- t1 < limit {
            Sleep.wakeup(chan)                               // it may be about to sleep again
            Scheduler.yield()
        }
        let out = exited.load(ordering: .acquiring) == 1
        if out { sleeper.join() }                            // else it was never queued again: lost
        let rounds = c.values[16], foreign = c.values[17]
        Console.line { l in
            l.write("wake-migrate: single wakes: "); l.dec(wakes); l.write(" wakes, "); l.dec(rounds); l.write(" rounds, lost ")
            l.dec(lost); l.write("; woken during its own switch "); l.dec(sleeper.wokenInSwitch.load(ordering: .relaxed))
            l.write(", stale wakes "); l.dec(sleeper.staleWakes.load(ordering: .relaxed))
        }
        t.expect("once-rounds", min(rounds, wakes), .atLeast(10)) { l in
            l.write("single wakes: the sleeper made "); l.dec(rounds); l.write(" rounds on "); l.dec(wakes); l.write(" wakes (at least 10)")
        }
        t.expect("once-lost", lost, .equals(0)) { l in
            l.write("single wakes: every wake woke the sleeper within 5 s ("); l.dec(lost); l.write(" lost)")
        }
        t.expect("once-owner", inv: "B5", foreign, .equals(0)) { l in
            l.write("single wakes: the sleeper always ran on the CPU that owned it ("); l.dec(foreign); l.write(" runs elsewhere)")
        }
        t.expect("once-out", out, "single wakes: the sleeper came out after the stop (not left runnable and never queued)")
        return (sleeper.wokenInSwitch.load(ordering: .relaxed), sleeper.staleWakes.load(ordering: .relaxed))
    }
}
