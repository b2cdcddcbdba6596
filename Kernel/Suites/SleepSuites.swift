import Synchronization

// sleep: sleepers and wakers on every CPU (lost-wakeup detection), the sleeping
// mutex, timeouts. migrate: a thread handed around all CPUs (D6).

enum SleepSuite {
    static let suite = TestSuite(name: "sleep", kind: .normal,
                                 summary: "no lost wake-ups under a sleeper/waker storm; mutex; timeouts",
                                 torture: true, body: run)

    /// One sleeper/waker pair. Plain fields under `lock`.
    final class Pair {
        let lock = SpinLock("sleep pair")
        var flag = false          // the condition
        var waiting = false       // the sleeper declared (under lock) it is going to sleep
        var sleeper: Thread? = nil
        var stop = false
        var rounds: UInt64 = 0, wakeups: UInt64 = 0, lost: UInt64 = 0, timeouts: UInt64 = 0
        /// Wake-ups issued while the sleeper had declared itself asleep: the ones a
        /// missing interlock would lose (the race window).
        var whileAsleep: UInt64 = 0
        var channel: UInt { Sleep.channel(self) }
    }

    static func run(_ t: inout TestContext) {
        let bug = KernelOptions.flag("bug.sleep_nointerlock", default: false)
        if bug { t.note { $0.write("negative control: the sleepers drop the sleep interlock") } }
        storm(&t, dropInterlock: bug)
        mutex(&t)
        timeout(&t)
    }

    static func storm(_ t: inout TestContext, dropInterlock: Bool) {
        let cpus = SMP.online
        let n = max(2, cpus.count)
        var pairs: [Pair] = []
        var threads: [Thread] = []
        for k in 0..<n {
            let p = Pair()
            pairs.append(p)
            let sleeperCPU = cpus.next(atOrAfter: k) ?? 0
            let wakerCPU = cpus.next(atOrAfter: k + 1) ?? 0
            if let s = Thread.create("sleeper", priority: Thread.normalPriority, cpu: sleeperCPU, { sleeper(p) }) {
                p.sleeper = s
                s.dropsSleepInterlock = dropInterlock
                Scheduler.schedule(s)
                threads.append(s)
            }
            if let w = Thread.spawn("waker", cpu: wakerCPU, { waker(p) }) { threads.append(w) }
        }
        let budget = TimeBudget(milliseconds: 1000)
        while !budget.expired {
            if Clock.enabled { _ = Sleep.sleep(on: 0xDEAD, timeoutTicks: 5) } else { Scheduler.yield() }
        }
        for p in pairs { p.lock.lock(); p.stop = true; Sleep.wakeup(p.channel); p.lock.unlock() }
        for td in threads { td.join() }
        var rounds: UInt64 = 0, lost: UInt64 = 0, timeouts: UInt64 = 0, wakeups: UInt64 = 0, asleep: UInt64 = 0
        for p in pairs { rounds += p.rounds; lost += p.lost; timeouts += p.timeouts; wakeups += p.wakeups; asleep += p.whileAsleep }
        Console.line { l in
            l.write("sleep: "); l.dec(n); l.write(" pairs, rounds "); l.dec(rounds); l.write(", wakeups "); l.dec(wakeups)
            l.write(" ("); l.dec(asleep); l.write(" to a declared sleeper)")
            l.write(", timeouts "); l.dec(timeouts); l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
        }
        t.expect("rounds", rounds, .above(0)) { $0.dec(rounds); $0.write(" sleep/wake rounds completed") }
        t.expect("window", asleep, .above(0)) { l in l.write("the window was hit: "); l.dec(asleep); l.write(" wake-ups went to a sleeper that had declared itself asleep") }
        t.expect("lost", lost, .equals(0)) { $0.write("no lost wake-ups ("); $0.dec(lost); $0.write(" wakeups found no sleeper that had declared itself asleep)") }
    }

    static func sleeper(_ p: Pair) {
        let me = Thread.current
        p.lock.lock()
        while !p.stop {
            if p.flag { p.flag = false; p.rounds += 1; continue }
            me.sleepTimedOut = false
            p.waiting = true
            // Short timeouts keep a sleeper whose wake-up was lost (negative
            // control) from sitting out the whole storm; a timeout is not a loss.
            if Sleep.sleep(on: p.channel, releasing: p.lock, timeoutTicks: 10) == .timedOut { p.timeouts += 1 }
            p.waiting = false
        }
        p.lock.unlock()
    }

    static func waker(_ p: Pair) {
        while true {
            p.lock.lock()
            if p.stop { p.lock.unlock(); return }
            if !p.flag {
                p.flag = true
                let woke = Sleep.wakeup(p.channel)
                p.wakeups += 1
                if p.waiting { p.whileAsleep += 1 }
                // The sleeper said (under this lock) it was going to sleep, is not
                // on the queue, and did not time out: the wake-up is lost.
                if p.waiting && woke == 0 && !(p.sleeper?.sleepTimedOut ?? false) { p.lost += 1 }
            }
            p.lock.unlock()
            Scheduler.yield()
        }
    }

    static func mutex(_ t: inout TestContext) {
        let m = Mutex("suite mutex")
        let c = SharedCounters()     // [0] shared counter under m, [1 + i] per-thread increments
        let end = TSC.now &+ TSC.ticksPerMs &* 300
        var threads: [Thread] = []
        let cpus = SMP.online
        for i in 0..<8 {
            if let td = Thread.spawn("mutexer", cpu: cpus.next(atOrAfter: i) ?? 0, {
                repeat {                                    // at least once each, however slow
                    m.lock()
                    let v = c.values[0]
                    Scheduler.yield()            // hold the mutex across a switch
                    c.values[0] = v &+ 1
                    m.unlock()
                    c.values[1 + i] &+= 1
                } while TSC.now < end || c.values[0] < 200   // enough rounds to contend, however slow
            }) { threads.append(td) }
        }
        for td in threads { td.join() }
        var sum: UInt64 = 0
        for i in 0..<8 { sum += c.values[1 + i] }
        let total = c.values[0]
        // Every thread increments at least once (repeat-while), so sum > 0 would
        // prove nothing; what can fail is an increment lost under the mutex, or a
        // mutex that was never contended (nothing slept on it).
        t.expect("mutex-exclusion", total, .equals(sum)) { l in
            l.write("sleeping mutex: "); l.dec(sum); l.write(" increments by 8 threads, counter "); l.dec(total)
        }
        t.expect("mutex-window", UInt64(m.contended), .above(0)) { l in
            l.write("sleeping mutex: "); l.dec(m.contended); l.write(" contended sleeps (threads slept on the held mutex)")
        }
    }

    static func timeout(_ t: inout TestContext) {
        guard Clock.enabled else { t.skip("timeout", reason: .needsTick, "sleep timeouts: they count ticks (tick=0 given)"); return }
        let start = PerCPU.current.ticks.load(ordering: .relaxed)
        let r = Sleep.sleep(on: 0xBEEF, timeoutTicks: 3)
        let waited = PerCPU.current.ticks.load(ordering: .relaxed) &- start
        t.expect("timeout", r == .timedOut && waited >= 3) { l in
            l.write("a sleep nobody wakes times out after "); l.dec(waited); l.write(" ticks (3 asked)")
        }
    }
}

/// D6 (docs/ipi-queues.md): a thread handed from CPU to CPU. The migrator holds
/// the window open between its send and its switch-out until the target has
/// taken the hand-off message (Thread.handoffWindowCycles bounds it at 20 ms), so the
/// puller is spinning on RUNNING while the old CPU is still switching out (the
/// window, counted: it must be hit). The switch-out stamp is checked by
/// the puller after its fence; `bug.handoff_early_clear=1` clears RUNNING before
/// the stamp and the saved rsp are written, and the check must catch it.
enum MigrateSuite {
    static let suite = TestSuite(name: "migrate", kind: .normal,
                                 summary: "a thread handed around all CPUs: D6 stamp after the fence, every earlier write seen",
                                 torture: true, body: run)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        if BugKnobs.handoffEarlyClear { t.note { $0.write("negative control: the switch clears RUNNING before saving rsp") } }
        let c = SharedCounters()     // [0] hops, [1] wrong CPU, [2] stale data
        let end = TSC.now &+ TSC.ticksPerMs &* 600
        let buffer = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        guard let td = Thread.create("migrator", priority: Thread.normalPriority, cpu: cpus.first ?? 0, {
            var local = InlineArray<32, UInt64>(repeating: 0)
            var hop: UInt64 = 1
            while TSC.now < end {
                for i in 0..<64 { buffer[i] = hop &* 64 &+ UInt64(i) }
                for i in 0..<32 { local[i] = ~(hop &+ UInt64(i)) }
                let target = cpus.next(atOrAfter: PerCPU.currentNumber + 1) ?? 0
                Scheduler.migrate(to: target)
                if PerCPU.currentNumber != target { c.values[1] &+= 1 }
                for i in 0..<64 where buffer[i] != hop &* 64 &+ UInt64(i) { c.values[2] &+= 1 }
                for i in 0..<32 where local[i] != ~(hop &+ UInt64(i)) { c.values[2] &+= 1 }
                hop &+= 1
                c.values[0] = hop - 1
            }
        }) else { t.expect("spawn", false, "spawn the migrating thread"); return }
        td.handoffWindowCycles = TSC.ticksPerMs &* 20
        Scheduler.schedule(td)
        td.join()
        buffer.deallocate()
        let hops = c.values[0]
        let spins = td.handoffSpins.load(ordering: .relaxed), behind = td.handoffStampBehind.load(ordering: .relaxed)
        Console.line { l in
            l.write("migrate: "); l.dec(hops); l.write(" hand-offs, "); l.dec(spins); l.write(" with the puller spinning on RUNNING")
            l.write(behind > 0 ? ", !!! switch-out stamp behind after the fence " : ", switch-out stamp behind after the fence "); l.dec(behind)
        }
        t.expect("hops", hops, .atLeast(UInt64(cpus.count))) { $0.dec(hops); $0.write(" hand-offs between "); $0.dec(cpus.count); $0.write(" CPUs") }
        t.expect("wrong-cpu", c.values[1], .equals(0)) { $0.write("the thread always arrived on the CPU it was handed to ("); $0.dec(c.values[1]); $0.write(" wrong)") }
        // On one CPU a hand-off is a switch on the same CPU: no puller, no fence,
        // nothing for the D6 checks to catch.
        guard cpus.count > 1 else {
            t.skip("window", inv: "D6", reason: .needs2CPUs, "the window (pullers spinning on RUNNING): needs 2 CPUs")
            t.skip("stamp", inv: "D6", reason: .needs2CPUs, "D6 switch-out stamp after the puller's fence: needs 2 CPUs")
            t.skip("stale", inv: "D6", reason: .needs2CPUs, "D6 writes seen after a hand-off: needs 2 CPUs")
            return
        }
        t.expect("window", inv: "D6", spins, .above(0)) { l in l.write("the window was hit: "); l.dec(spins); l.write(" pullers arrived while the thread was still RUNNING") }
        t.expect("stamp", inv: "D6", behind, .equals(0)) { $0.write("D6: the switch-out stamp was current after the puller's fence ("); $0.dec(behind); $0.write(" behind)") }
        t.expect("stale", inv: "D6", c.values[2], .equals(0)) { $0.write("D6: every write made before a hand-off was seen after it ("); $0.dec(c.values[2]); $0.write(" stale)") }
    }
}
