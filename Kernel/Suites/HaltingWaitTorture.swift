import Synchronization

// wait-wakeup: W1, no lost wake-up in a halting wait (docs/benchmarks.md,
// "Halting waits"). One waiter CPU, one waker CPU, run with tick=0 so that only
// the wake-up IPI ends a HLT (the tick would rescue a lost one within 10 ms).
// Each round the waiter checks the flag, decides to wait, and only some time
// later (0-4 us, the suite's own delay) announces itself in its slot: a waker
// storing the flag inside that gap finds no slot and sends no IPI. Those are
// the race window, and W1's re-check after the slot store is all that saves
// them: the suite counts them (passes whose re-check found the flag; they must
// be > 0). Without the re-check (bug.wait_norecheck=1) each of them halts for
// good: the waker's bound expires, it counts a lost wake-up and sends the
// rescue IPI itself.
//
// Who writes what: `flag` and `lastRound` by the waker, `ack` by the waiter; the
// waiter's counts by the waiter, the waker's by the waker (own traffic only).

enum HaltingWaitTorture {
    static let suite = TestSuite(name: "wait-wakeup", kind: .normal,
                                 summary: "W1: a halting waiter is woken every round within a bound (tick=0)",
                                 torture: true, body: run)

    static let channel: UInt = 0x5741_4954  // "WAIT": nobody else waits on it
    static let flag = Atomic<UInt64>(0)
    static let ack = Atomic<UInt64>(0)
    static let lastRound = Atomic<UInt64>(0)   // 0 until the waker's last round

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        let waiterCPU = cpus.nth(cpus.count - 1)!, wakerCPU = cpus.nth(cpus.count - 2)!
        if Clock.enabled { t.note { $0.write("the periodic tick is on: it rescues a lost wake-up within a tick (use tick=0)") } }
        if BugKnobs.waitNoRecheck { t.note { $0.write("negative control: a halting wait halts without re-checking its condition") } }
        let refusedBefore = HaltingWait.refusedWakes.load(ordering: .relaxed)
        if HaltingWait.refuseEvery != 0 { t.note { $0.write("the first try of one wake-up IPI in "); $0.dec(HaltingWait.refuseEvery); $0.write(" is refused (wait.refuse_wakes)") } }
        if BugKnobs.waitIgnoreRefused { t.note { $0.write("negative control: a refused wake-up IPI is not sent again") } }
        // [0] rounds, [1] IPIs sent, [2] no IPI needed, [3] lost, [4] late (the waker's);
        // [8] passes caught by the re-check, [9] HLTs (the waiter's)
        guard let c = HaltingWaitRounds.run(&t, reset: {
            flag.store(0, ordering: .relaxed); ack.store(0, ordering: .relaxed); lastRound.store(0, ordering: .relaxed)
        }, waiter: "wait-waiter", on: waiterCPU, { HaltingWaitTorture.waiter($0) },
           waker: "wait-waker", on: wakerCPU, { HaltingWaitTorture.waker(waiterCPU, $0, $1) }) else { return }
        let (rounds, ipis, quiet, lost, caught, halts) = (c.values[0], c.values[1], c.values[2], c.values[3], c.values[8], c.values[9])
        let late = c.values[4]
        Console.line { l in
            l.write("wait-wakeup: "); l.dec(rounds); l.write(" rounds, CPU "); l.dec(wakerCPU); l.write(" waking CPU "); l.dec(waiterCPU)
            l.write(": "); l.dec(halts); l.write(" halts, "); l.dec(ipis); l.write(" wake-up IPIs, "); l.dec(quiet); l.write(" rounds without one, ")
            l.dec(caught); l.write(" caught by the re-check")
            l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
            l.write(" (bound "); l.dec(HaltingWaitRounds.boundMs); l.write(" ms, tick "); l.write(Clock.enabled ? "on)" : "off)")
            l.write(", late (over "); l.dec(HaltingWaitRounds.boundMs); l.write(" ms, under "); l.dec(HaltingWaitRounds.lostMs); l.write(" ms) "); l.dec(late)
        }
        t.expect("rounds", rounds, .above(0)) { $0.dec(rounds); $0.write(" rounds completed") }
        t.expect("halts", halts, .above(0)) { l in l.write("the waiter halted: "); l.dec(halts); l.write(" halts") }
        t.expect("ipis", ipis, .above(0)) { l in l.write("the waker's IPI woke it: "); l.dec(ipis); l.write(" IPIs") }
        t.expect("window", inv: "W1", caught, .above(0)) { l in
            l.write("the window was hit: "); l.dec(caught); l.write(" waits found the flag only in the re-check after announcing themselves")
        }
        let refused = HaltingWait.refusedWakes.load(ordering: .relaxed) &- refusedBefore
        if HaltingWait.refuseEvery != 0 {
            t.expect("refused", refused, .above(0)) { l in l.write("the hook refused "); l.dec(refused); l.write(" wake-up sends (each must be sent again)") }
        }
        t.expect("lost", inv: "W1", lost, .equals(0)) { $0.write("W1: every halting waiter woken within "); $0.dec(HaltingWaitRounds.lostMs); $0.write(" ms ("); $0.dec(lost); $0.write(" lost wake-ups)") }
    }

    /// Waits for each round's flag the way the kernel's waits do: check, and
    /// while not done, one HaltingWait pass. The delay before the pass is the
    /// gap between deciding to wait and announcing it, widened.
    static func waiter(_ c: SharedCounters) {
        var rng = XorShift(seed: TSC.now)
        var round: UInt64 = 1
        while true {
            while flag.load(ordering: .acquiring) < round {
                TSC.spin(cycles: UInt64(rng.below(Int(max(1, TSC.ticksPerMs * 4 / 1000)))))
                switch HaltingWait.pass(.torture, channel: channel, { flag.load(ordering: .acquiring) >= round }) {
                case .caught: c.values[8] &+= 1
                case .halted: c.values[9] &+= 1
                case .paused: break
                }
            }
            ack.store(round, ordering: .releasing)
            // lastRound was stored before this round's flag, which we saw.
            if lastRound.load(ordering: .acquiring) == round { return }
            round &+= 1
        }
    }

    static func waker(_ waiterCPU: Int, _ seconds: UInt64, _ c: SharedCounters) {
        var rng = XorShift(seed: TSC.now ^ 0x5EED)
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        var round: UInt64 = 1
        while true {
            let last = TSC.now >= end || c.values[3] >= HaltingWaitRounds.maxLost
            if last { lastRound.store(round, ordering: .releasing) }
            // After the waiter's ack of the last round, 0-8 us: half of the
            // rounds land inside the waiter's 0-4 us gap or its re-check.
            TSC.spin(cycles: UInt64(rng.below(Int(max(1, TSC.ticksPerMs * 8 / 1000)))))
            flag.store(round, ordering: .sequentiallyConsistent)     // W1: a locked XCHG, the full fence
            if HaltingWait.wake(waiterCPU, channel: channel) { c.values[1] &+= 1 } else { c.values[2] &+= 1 }
            if !HaltingWaitRounds.awaitAck(ack, round: round, c) {
                c.values[3] &+= 1                   // lost: the waiter halted with its flag set and nobody woke it
                LocalAPIC.sendIPI(to: PerCPU.cpus[waiterCPU].apicID, vector: UInt8(Vectors.waitWakeup))
                let rescue = TimeBudget(milliseconds: 2000)
                while ack.load(ordering: .acquiring) < round && !rescue.expired { CPU.pause() }
            }
            c.values[0] &+= 1
            if last { return }
            round &+= 1
        }
    }
}
