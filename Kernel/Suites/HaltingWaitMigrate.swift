import Synchronization

// wait-migrate: W2, a halting waiter is pinned to its CPU until it cleared its
// slot (docs/benchmarks.md, "Halting waits"). Run with tick=0.
//
// The waiter alternates between two CPUs (X, Z): before each halting pass it
// sets its own migration target to the other one. The waker ends each HLT not
// with the plain wake-up vector but with an IPI-queue message that asks the
// halted CPU for a preemption, so the interrupt that ends the HLT returns with
// a preemption owed and a target set: the switch moves the waiter. Pinned, the
// waiter clears its slot first and moves in the critical section's exit;
// unpinned (bug.wait_unpinned=1), it is switched out on the HLT's way out and
// resumes on the other CPU, where the wait's own check panics
// (`W2: a halting wait resumed on another CPU ...`) before it would clear a
// slot that is no longer its own.
//
// Who writes what: `flag`, `lastRound` by the waker, `ack` by the waiter; the
// waiter's counts by the waiter, the waker's by the waker.

enum HaltingWaitMigrate {
    static let suite = TestSuite(name: "wait-migrate", kind: .normal,
                                 summary: "W2: a halting waiter moved by a preemption on its HLT's way out clears only its own slot (tick=0)",
                                 torture: true, body: run)

    static let channel: UInt = 0x5741_4D47  // "WAMG": nobody else waits on it
    static let flag = Atomic<UInt64>(0)
    static let ack = Atomic<UInt64>(0)
    static let lastRound = Atomic<UInt64>(0)

    /// Runs on the halted CPU, in its IPI handler: the interrupted waiter owes
    /// a preemption from here on.
    static let preempt: IPIFunction = { _, _ in Scheduler.requestPreemption() }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 3 else { t.skip("run", reason: .needs3CPUs, "needs at least 3 CPUs"); return }
        let x = cpus.nth(cpus.count - 1)!, wakerCPU = cpus.nth(cpus.count - 2)!, z = cpus.nth(cpus.count - 3)!
        // The tick would move the waiter at any moment (it has a target), not
        // only on a HLT's way out, and the count of moves would mean nothing.
        guard !Clock.enabled else { t.skip("run", reason: .needsNoTick, "needs tick=0 (the tick moves a thread with a target at any moment)"); return }
        if BugKnobs.waitUnpinned { t.note { $0.write("negative control: a halting wait is not pinned to its CPU") } }
        // [0] rounds, [1] preempting wake-ups sent, [3] lost, [4] late (the waker's);
        // [8] halts, [9] passes that ended on the other CPU, [10] passes whose
        // preemption was deferred to the slot's clearing (the waiter's)
        guard let c = HaltingWaitRounds.run(&t, reset: {
            flag.store(0, ordering: .relaxed); ack.store(0, ordering: .relaxed); lastRound.store(0, ordering: .relaxed)
        }, waiter: "migrate-waiter", on: x, { HaltingWaitMigrate.waiter(x, z, $0) },
           waker: "migrate-waker", on: wakerCPU, { HaltingWaitMigrate.waker(x, z, $0, $1) }) else { return }
        let (rounds, sent, lost, halts, moved, deferred) = (c.values[0], c.values[1], c.values[3], c.values[8], c.values[9], c.values[10])
        // The window: preemptions that arrived while the waiter was halted and
        // were held until its slot was clear. W2 itself is checked by every
        // pass (it panics if it resumes on another CPU); `moved` (CPU changes
        // around a pass, e.g. a late request taken after it) is information.
        let window = deferred
        Console.line { l in
            l.write("wait-migrate: "); l.dec(rounds); l.write(" rounds between CPUs "); l.dec(x); l.write(" and "); l.dec(z)
            l.write(": "); l.dec(halts); l.write(" halts, "); l.dec(sent); l.write(" preempting wake-ups, "); l.dec(deferred)
            l.write(" preemptions held until the slot was clear, "); l.dec(moved); l.write(" CPU changes around a pass"); l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
            l.write(", late (over "); l.dec(HaltingWaitRounds.boundMs); l.write(" ms, under "); l.dec(HaltingWaitRounds.lostMs); l.write(" ms) "); l.dec(c.values[4])
        }
        t.expect("rounds", rounds, .above(0)) { l in l.dec(rounds); l.write(" rounds completed") }
        t.expect("halts", halts, .above(0)) { l in l.write("the waiter halted: "); l.dec(halts); l.write(" halts") }
        t.expect("window", inv: "W2", window, .above(0)) { l in
            l.write("the window was hit: "); l.dec(window); l.write(" halted waiters owed a preemption (with a migration target) on the HLT's way out, held until the slot was clear")
        }
        // An unpinned waiter clears a slot that is no longer its own: a lost wake-up (W2).
        t.expect("lost", inv: "W2", lost, .equals(0)) { l in l.write("every waiter was woken within "); l.dec(HaltingWaitRounds.lostMs); l.write(" ms ("); l.dec(lost); l.write(" lost)") }
    }

    static func waiter(_ x: Int, _ z: Int, _ c: SharedCounters) {
        let me = Thread.current
        var round: UInt64 = 1
        while true {
            while flag.load(ordering: .acquiring) < round {
                let before = PerCPU.currentNumber, deferred = me.deferredPreemptions
                me.migrateTarget.store(before == x ? z : x, ordering: .relaxed)
                if HaltingWait.pass(.torture, channel: channel, { flag.load(ordering: .acquiring) >= round }) == .halted {
                    c.values[8] &+= 1
                }
                if PerCPU.currentNumber != before { c.values[9] &+= 1 }
                if me.deferredPreemptions != deferred { c.values[10] &+= 1 }
            }
            ack.store(round, ordering: .releasing)
            if lastRound.load(ordering: .acquiring) == round { break }
            round &+= 1
        }
        me.migrateTarget.store(-1, ordering: .relaxed)
    }

    static func waker(_ x: Int, _ z: Int, _ seconds: UInt64, _ c: SharedCounters) {
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        var round: UInt64 = 1
        while true {
            let last = TSC.now >= end || c.values[3] >= HaltingWaitRounds.maxLost
            if last { lastRound.store(round, ordering: .releasing) }
            // Give the waiter time to halt (the window is a HALTED waiter).
            let settle = TSC.now &+ TSC.ticksPerMs / 5
            while !HaltingWait.isHalted(x, channel: channel) && !HaltingWait.isHalted(z, channel: channel) && TSC.now < settle {
                CPU.pause()
            }
            flag.store(round, ordering: .sequentiallyConsistent)     // W1: the full fence before the slots
            for cpu in [x, z] where HaltingWait.isHalted(cpu, channel: channel) {
                if IPIQueue.send(to: cpu, preempt) != nil { c.values[1] &+= 1 }
            }
            if !HaltingWaitRounds.awaitAck(ack, round: round, c) {
                c.values[3] &+= 1
                for cpu in [x, z] { LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.waitWakeup)) }
                let rescue = TimeBudget(milliseconds: 2000)
                while ack.load(ordering: .acquiring) < round && !rescue.expired { CPU.pause() }
            }
            c.values[0] &+= 1
            if last { return }
            round &+= 1
        }
    }
}
