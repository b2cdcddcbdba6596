import Synchronization

// wake-migrate: wake-ups that race with moves (docs/binding-and-psref.md,
// "Wake-ups and moves"). Sleepers loop: sleep, check they run on the CPU that
// owns them, then move on - half the time by `migrate(to:)`, half by a target
// and a yield (the switch path's hand-off). Wakers on every CPU wake them
// without pause; each sleeper holds its own switch into the sleep back a little
// (a test hook) so that wakers get in before it, and holds the window between
// a waker reading its CPU and sending the wake open for a random while (another
// test hook), so that a
// sleeper woken during its own switch (the switch queues it itself) has moved
// on before the waker's now stale message arrives. Such a message must not
// queue the thread on the CPU it left, nor end a hand-off that is under way:
// the receiver forwards it to the owner. Counted on our own threads: sleeps
// woken during their own switch and stale wakes (both > 0: the window was
// hit), runs on a CPU that did not own the thread (must be 0) and hand-offs
// that found the switch-out stamp behind (D6, must be 0). A second part wakes
// one sleeper once per round and counts lost wakes (WakeMigrateOnce.swift).
// With bug.wake_as_handoff=1 a stale wake is handled as a hand-off and queues
// the thread on a CPU that does not own it: the B5 check panics.

enum WakeMigrate {
    static let suite = TestSuite(name: "wake-migrate", kind: .normal,
                                 summary: "a stale wake-up for a thread that moved is forwarded, never queues it on the CPU it left",
                                 torture: true, body: run)

    static let stop = Atomic<Bool>(false)
    static let exited = Atomic<Int>(0)
    /// The wakers give up: a sleeper did not come out (its wake was lost).
    static let abandon = Atomic<Bool>(false)

    /// [0 + i] rounds of sleeper i, [8 + i] runs on a CPU that did not own it.
    static func sleeper(_ i: Int, _ counters: SharedCounters) {
        let me = Thread.current
        let chan = UInt(bitPattern: counters.values + i)
        var rng = XorShift(seed: UInt64(i + 1) &* 0x2545_F491 &+ TSC.now)
        let window = TSC.ticksPerMs / 10                                   // up to 100 us
        while !stop.load(ordering: .relaxed) {
            me.wakeSendDelayCycles = 1 + UInt64(rng.below(Int(max(1, window))))
            me.sleepSwitchDelayCycles = window / 5                         // 20 us: a waker gets in
            _ = Sleep.sleep(on: chan)
            let flags = CPU.saveFlagsAndDisableInterrupts()
            if me.cpu != PerCPU.currentNumber { counters.values[8 + i] &+= 1 }
            let here = PerCPU.currentNumber
            CPU.restoreFlags(flags)
            counters.values[i] &+= 1
            moveOn(me, from: here, &rng)
        }
        me.wakeSendDelayCycles = 0
        me.sleepSwitchDelayCycles = 0
        exited.wrappingAdd(1, ordering: .releasing)
    }

    /// A sleeper's move after a round: to the next online CPU, half the time by
    /// migrate(to:) (a hand-off), half by a target taken at the next switch.
    static func moveOn(_ me: Thread, from here: Int, _ rng: inout XorShift) {
        let cpus = SMP.online
        guard let to = cpus.nth(((cpus.rank(of: here) ?? 0) + 1) % cpus.count) else { return }
        if rng.below(2) == 0 { Scheduler.migrate(to: to) }
        else { me.migrateTarget.store(to, ordering: .relaxed); Scheduler.yield() }
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "wake-migrate needs a second CPU to move to"); return }
        // Single wakes first: a lost wake is a counted FAIL there; in the
        // continuous part below it leaves a sleeper out for good.
        let once = singleWakes(&t, cpus, milliseconds: 1000)
        abandon.store(false, ordering: .relaxed)
        stop.store(false, ordering: .relaxed)
        exited.store(0, ordering: .relaxed)
        let counters = SharedCounters()
        let n = 2
        var sleepers: [Thread] = []
        for i in 0..<n {
            // Above the wakers: a woken sleeper runs at once.
            if let td = Thread.spawn("wake sleeper", priority: Thread.normalPriority + 1, cpu: cpus.nth(i % cpus.count) ?? 0,
                                     { WakeMigrate.sleeper(i, counters) }) { sleepers.append(td) }
        }
        var wakers: [Thread] = []
        cpus.forEach { c in
            if let td = Thread.spawn("wake waker", cpu: c, {
                var rng = XorShift(seed: UInt64(c + 7) &* 0x9E37_79B9 &+ TSC.now)
                while WakeMigrate.exited.load(ordering: .acquiring) < n && !WakeMigrate.abandon.load(ordering: .relaxed) {
                    for i in 0..<n { Sleep.wakeup(UInt(bitPattern: counters.values + i)) }
                    TSC.spin(cycles: UInt64(rng.below(2000)))
                    if rng.below(64) == 0 { Scheduler.yield() }
                }
            }) { wakers.append(td) }
        }
        t.expect("started", sleepers.count == n && wakers.count == cpus.count) { l in
            l.write("started "); l.dec(sleepers.count); l.write(" sleepers and "); l.dec(wakers.count); l.write(" wakers")
        }
        func totals() -> (inSwitch: UInt64, stale: UInt64, dropped: UInt64, behind: UInt64) {
            var r: (inSwitch: UInt64, stale: UInt64, dropped: UInt64, behind: UInt64) = (0, 0, 0, 0)
            for td in sleepers {
                r.inSwitch &+= td.wokenInSwitch.load(ordering: .relaxed)
                r.stale &+= td.staleWakes.load(ordering: .relaxed)
                r.dropped &+= td.wakeForwardsDropped.load(ordering: .relaxed)
                r.behind &+= td.handoffStampBehind.load(ordering: .relaxed)
            }
            return r
        }
        // At least 1 s, on (up to 20 s) until a stale wake was seen. Under the
        // nested KVM the vCPUs rarely run at the same moment (a sleeper makes a
        // round or two a second there): 3 s, and the window is reported, not
        // required - the ownership and D6 checks still apply.
        var isKVM = false
        if case .kvm = Hypervisor.current { isKVM = true }
        let capMs: UInt64 = isKVM ? 3_000 : 20_000
        let start = TSC.now
        while true {
            _ = spinUntil(milliseconds: 50) { false }
            Scheduler.yield()
            let ms = (TSC.now &- start) / TSC.ticksPerMs
            if ms >= capMs || (ms >= 1000 && totals().stale &+ once.stale > 0) { break }
        }
        let elapsedMs = (TSC.now &- start) / TSC.ticksPerMs
        stop.store(true, ordering: .relaxed)
        // A woken sleeper checks `stop` at once. One still out after the wakers
        // stopped, while this thread alone wakes both channels for 5 s more,
        // was made runnable and never queued (a wake message lost: it is off
        // the sleep queue, so no later wake finds it). Late is not lost: under
        // the nested KVM the wakers' own flood of messages once kept both
        // sleepers from running for over 15 s; both came out once it stopped.
        var allOut = spinUntil(milliseconds: 3000) { exited.load(ordering: .acquiring) >= n }
        abandon.store(true, ordering: .relaxed)
        for td in wakers { td.join() }
        if !allOut {
            let grace = TimeBudget(milliseconds: 5000)
            while exited.load(ordering: .acquiring) < n && !grace.expired {
                for i in 0..<n { Sleep.wakeup(UInt(bitPattern: counters.values + i)) }
                _ = spinUntil(milliseconds: 1) { false }
            }
            allOut = exited.load(ordering: .acquiring) >= n
        }
        if allOut { for td in sleepers { td.join() } }
        t.expect("all-out", allOut) { l in
            l.write("every sleeper came out after the stop ("); l.dec(exited.load(ordering: .relaxed)); l.write(" of "); l.dec(n)
            l.write("; one left out was never queued after a wake: lost)")
        }
        let s = totals()
        var rounds: UInt64 = 0, foreign: UInt64 = 0, moves: UInt64 = 0
        for i in 0..<n { rounds &+= counters.values[i]; foreign &+= counters.values[8 + i] }
        for td in sleepers { moves &+= td.switchMigrations.load(ordering: .relaxed) }
        Console.line { l in
            l.write("wake-migrate: "); l.dec(n); l.write(" sleepers, "); l.dec(wakers.count); l.write(" wakers for "); l.dec(elapsedMs)
            l.write(" ms; rounds "); l.dec(rounds); l.write(", switch migrations "); l.dec(moves)
            l.write("; woken during their own switch "); l.dec(s.inSwitch); l.write(", stale wakes forwarded "); l.dec(s.stale)
            l.write(" (dropped on a full ring "); l.dec(s.dropped); l.write(")")
            if foreign > 0 { l.write("; !!! ran on a CPU that did not own them "); l.dec(foreign) }
        }
        t.expect("moved", rounds > 0 && moves > 0) { l in l.write("the sleepers slept, woke and moved "); l.dec(rounds); l.write(" times") }
        // Both parts hold the same window open: either one may have hit it.
        let hit = s.inSwitch &+ once.inSwitch > 0 && s.stale &+ once.stale > 0
        if isKVM && !hit {
            t.skip("window", reason: .kvmWindow, "the window needs vCPUs that run at the same moment; this KVM did not reach it (reported, not required)")
        } else {
            t.expect("window", inv: "B5", hit) { l in
                l.write("the window was hit: "); l.dec(s.inSwitch &+ once.inSwitch); l.write(" sleeps woken during their own switch, ")
                l.dec(s.stale &+ once.stale); l.write(" wakes found the thread owned by another CPU (both parts)")
            }
        }
        t.expect("owner", inv: "B5", foreign, .equals(0)) { l in
            l.write("a woken sleeper always ran on the CPU that owned it ("); l.dec(foreign); l.write(" runs elsewhere)")
        }
        t.expect("handoff-stamp", inv: "D6", s.behind, .equals(0)) { l in
            l.write("no hand-off found the switch-out stamp behind ("); l.dec(s.behind); l.write(", D6)")
        }
    }
}
