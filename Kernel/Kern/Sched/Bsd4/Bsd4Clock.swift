import Synchronization

// The bsd4 scheduler clock and the recalculation scan (docs/bsd4-scheduler.md,
// "estcpu").
//
// schedulerclock runs at ESTCPUFREQ (every second tick at HZ 100) on each CPU,
// in the tick's interrupt context, for the lwp whose thread is running there.
// The scan walks every lwp on ONE CPU: once a second from the "bsd4 scan"
// thread on CPU 0 (DragonFly ran it from a callout thread; from the tick it
// would walk every lwp with interrupts off, and could drop the last reference
// to an exited lwp in interrupt context), and in a tight loop from bsd4-torture. It runs resetpriority on lwps that belong to
// other CPUs while those CPUs designate lwps without any lock: the seed-000
// race, which is why nothing after its unlock may assert on their fields (A4).

enum Bsd4Clock {
    static let ticksPerSchedTick = max(1, Clock.hz / UInt64(Bsd4.estcpuFreq))

    /// From Clock.tick, every CPU, interrupt context.
    static func tick() {
        guard Bsd4Scheduler.started.load(ordering: .relaxed), Bsd4Scheduler.ncpus > PerCPU.currentNumber else { return }
        let ticks = mycpu.ticks.load(ordering: .relaxed)
        let c = Bsd4Scheduler.mine
        let running = Thread.currentIfAny.flatMap { $0.lwpIdentity == 0 ? nil : Lwp.from(identity: $0.lwpIdentity) }
        if let lp = running, lp.inUser.load(ordering: .relaxed) {
            // A8: user code runs only under a designation.
            c.a8Checks.wrappingAdd(1, ordering: .relaxed)
            if c.uschedcp != lp.identity { c.a8Violations.wrappingAdd(1, ordering: .relaxed) }
        }
        Bsd4Requests.resendOwed()
        guard ticks % ticksPerSchedTick == 0 else { return }
        c.checkA3()
        let designated = c.designated
        guard running != nil || designated != nil else { return }
        Bsd4Scheduler.lock.lock()
        if let d = designated { checkA5(d, c) }
        var p = Bsd4Scheduler.Pending()
        if let lp = running { p = schedulerclock(lp, c) }
        Bsd4Scheduler.lock.unlock()
        Bsd4Scheduler.finish(p)
    }

    /// A5 as this CPU sees it, lock held: its designated lwp is "user", on no
    /// run queue, and its thread is ours. A lost designation (queued while
    /// designated) or a double one (designated here, thread elsewhere) fails.
    static func checkA5(_ d: Lwp, _ c: Bsd4CPU) {
        c.a5Checks.wrappingAdd(1, ordering: .relaxed)
        if d.place != .user || d.onRunQ || d.thread.cpu != c.cpu { c.a5Violations.wrappingAdd(1, ordering: .relaxed) }
    }

    /// schedulerclock(lp), lock held: round robin every rrinterval, estcpu +=
    /// 328 (clamped), resetpriority. Returns resetpriority's second half.
    static func schedulerclock(_ lp: Lwp, _ c: Bsd4CPU) -> Bsd4Scheduler.Pending {
        if c.installedAt >= 0 {
            // A6: since the last install, rrcount counted at most the
            // scheduler ticks that passed (one of slack for the phase).
            c.a6Checks.wrappingAdd(1, ordering: .relaxed)
            if c.rrcount > Bsd4Scheduler.now - c.installedAt + 1 { c.a6Violations.wrappingAdd(1, ordering: .relaxed) }
        }
        let t = Bsd4SchedulerClock.tick(lp.est, rrcount: c.rrcount, cls: lp.cls, niceOrRtprio: lp.nice)
        c.setRRCount(t.rrcount)
        if t.resched { c.userResched.store(true, ordering: .relaxed) }
        lp.est = t.state
        lp.runTicks &+= 1
        return Bsd4Scheduler.storePriority(lp, t.priority)
    }

    /// The recalculation scan over every lwp. `secondTick`: the once-a-second
    /// pass, which also counts sleep seconds. Lwps that slept more than a second
    /// are left to their wake-up. The lock is dropped after every lwp whose
    /// resetpriority left work for after the unlock (a poke, or the window of a
    /// moved queued lwp), and only then: a ticket lock handed to a vCPU the host
    /// is not running stalls everyone (oversubscribed TCG), and one hold per lwp
    /// would make the scan crawl without changing the race.
    /// It walks a copy of the table taken under the lock (an lwp that exits
    /// meanwhile is skipped by its place, and no other is).
    static func scan(secondTick: Bool, holdCycles: UInt64 = 0, pokeHoldCycles: UInt64 = 0,
                     _ w: inout Bsd4Scheduler.WindowCounts) {
        if PerCPU.inInterrupt { scansInInterrupt.wrappingAdd(1, ordering: .relaxed) }
        Bsd4Scheduler.lock.lock()
        let all = Bsd4Scheduler.lwps
        for lp in all {
            if lp.place == .exited { continue }
            let s = Bsd4ScanStep.decide(lp.est, asleep: lp.sleeping.load(ordering: .relaxed), secondTick: secondTick,
                                        now: Bsd4Scheduler.now, runqcount: Bsd4Scheduler.queues.runqcount,
                                        ncpus: Bsd4Scheduler.onlineCount, cls: lp.cls, niceOrRtprio: lp.nice)
            lp.est = s.state
            var p = Bsd4Scheduler.Pending()
            if let r = s.recalculation {
                if r.kind != .unchanged { lp.recalcs &+= 1 }
                if let pri = r.priority { p = Bsd4Scheduler.storePriority(lp, pri) }
            }
            if p.poke != .none || p.movedQueued {
                Bsd4Scheduler.lock.unlock()
                Bsd4Scheduler.finish(p, holdCycles: holdCycles, pokeHoldCycles: pokeHoldCycles, &w)
                Bsd4Scheduler.lock.lock()
            }
        }
        Bsd4Scheduler.lock.unlock()
    }

    /// Scans run in interrupt context (the scan belongs in a thread), and
    /// once-a-second scans made by the scan thread.
    static let scansInInterrupt = Atomic<UInt64>(0)
    static let secondScans = Atomic<UInt64>(0)

    /// The once-a-second scan's thread, on CPU 0: sleep a second, scan.
    static func startScanThread() {
        guard let td = Thread.create("bsd4 scan", priority: Thread.highPriority, cpu: 0, { Bsd4Clock.scanLoop() }) else {
            panic("bsd4: no memory for the scan thread")
        }
        Scheduler.schedule(td)
    }

    private static func scanLoop() {
        let chan = UInt(bitPattern: 0xB5D4_5CA0)   // nobody wakes it: a timed sleep
        while true {
            _ = Sleep.sleep(on: chan, timeoutTicks: Clock.hz)
            var w = Bsd4Scheduler.WindowCounts()
            scan(secondTick: true, &w)
            secondScans.wrappingAdd(1, ordering: .relaxed)
        }
    }
}
