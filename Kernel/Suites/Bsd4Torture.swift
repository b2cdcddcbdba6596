import Synchronization

// bsd4-torture: the seed-000 scenario (docs/bsd4-scheduler.md). About 4 x ncpu
// CPU-bound user-class lwps with mixed nice (and ncpu/2 that sleep a tick
// after each bit of work) run on every CPU while this thread,
// on CPU 0, runs the recalculation scan in a tight loop: resetpriority on lwps
// that other CPUs are designating right now, without any lock. Checked all the
// time: A2 (the queues), A3 (each CPU's own mask bit), A5 (no lost lwps). The
// race must be hit: the scan counts the times the moved lwp's CPU changed its
// uschedcp under it (the window the 2008 assertion read), and the CPUs count
// the spurious user-resched requests the stale hints cost. With
// bug.bsd4_remote_assert=1 the assertion is back and the run panics with the
// seed's message.

enum Bsd4Torture {
    static let suite = TestSuite(name: "bsd4-torture", kind: .normal,
                                 summary: "seed 000: the recalculation scan races remote designations; A2, A3, A5; no assertion on hints",
                                 torture: true, body: run)

    static let nices = [-20, -10, 0, 0, 5, 10, 15, 20]
    static let stop = Atomic<Bool>(false)

    /// A CPU-bound user program: "user code" in chunks, a return-to-user
    /// boundary between them. With `gapCycles` != 0 it also sleeps two ticks
    /// at its first boundary in the first 10 ms of every such period, in
    /// phase with every other hog: one after another they leave their CPU
    /// (each release designates the next, which sleeps at its first
    /// boundary), the CPU goes idle, and its helper runs and marks it ready,
    /// as a buildworld's CPUs do all the time. Only a ready CPU can be poked,
    /// so without the gaps a busy lwp CPU is rarely sent a stale hint.
    static func hog(_ lp: Lwp, chunkCycles: UInt64, gapCycles: UInt64 = 0) {
        var lastGap: UInt64 = 0
        while !stop.load(ordering: .relaxed) {
            Bsd4Scheduler.userret(lp)
            TSC.spin(cycles: chunkCycles)
            lp.progress.wrappingAdd(1, ordering: .relaxed)
            if gapCycles != 0 {
                let now = TSC.now, period = now / gapCycles
                if period != lastGap && now % gapCycles < TSC.ticksPerMs * 10 {
                    lastGap = period
                    Bsd4Scheduler.sleep(lp, ticks: 2)
                }
            }
        }
    }

    /// An interactive one: a little user work, then a one-tick sleep in the
    /// kernel (releases its designation; wakes through the timed list).
    static func sleeper(_ lp: Lwp, chunkCycles: UInt64) {
        while !stop.load(ordering: .relaxed) {
            Bsd4Scheduler.userret(lp)
            TSC.spin(cycles: chunkCycles)
            lp.progress.wrappingAdd(1, ordering: .relaxed)
            Bsd4Scheduler.sleep(lp, ticks: 1)
        }
    }

    struct Totals {
        var requests: UInt64 = 0, spurious: UInt64 = 0, sawDesignated: UInt64 = 0, coalesced: UInt64 = 0, dropped: UInt64 = 0
        var a3Checks: UInt64 = 0, a3Violations: UInt64 = 0
        var a5Checks: UInt64 = 0, a5Violations: UInt64 = 0
        var a6Checks: UInt64 = 0, a6Violations: UInt64 = 0
        var a8Checks: UInt64 = 0, a8Violations: UInt64 = 0
        var scansInInterrupt: UInt64 = 0, secondScans: UInt64 = 0
        static func now() -> Totals {
            var t = Totals()
            for c in Bsd4Scheduler.cpus {
                t.requests &+= c.requestsReceived.load(ordering: .relaxed)
                t.spurious &+= c.requestsSpurious.load(ordering: .relaxed)
                t.sawDesignated &+= c.requestsSawDesignated.load(ordering: .relaxed)
                t.coalesced &+= c.requestsCoalesced.load(ordering: .relaxed)
                t.dropped &+= c.requestsDropped.load(ordering: .relaxed)
                t.a3Checks &+= c.a3Checks.load(ordering: .relaxed)
                t.a3Violations &+= c.a3Violations.load(ordering: .relaxed)
                t.a5Checks &+= c.a5Checks.load(ordering: .relaxed)
                t.a5Violations &+= c.a5Violations.load(ordering: .relaxed)
                t.a6Checks &+= c.a6Checks.load(ordering: .relaxed)
                t.a6Violations &+= c.a6Violations.load(ordering: .relaxed)
                t.a8Checks &+= c.a8Checks.load(ordering: .relaxed)
                t.a8Violations &+= c.a8Violations.load(ordering: .relaxed)
            }
            t.scansInInterrupt = Bsd4Clock.scansInInterrupt.load(ordering: .relaxed)
            t.secondScans = Bsd4Clock.secondScans.load(ordering: .relaxed)
            return t
        }
        func minus(_ o: Totals) -> Totals {
            Totals(requests: requests &- o.requests, spurious: spurious &- o.spurious, sawDesignated: sawDesignated &- o.sawDesignated, coalesced: coalesced &- o.coalesced,
                   dropped: dropped &- o.dropped, a3Checks: a3Checks &- o.a3Checks, a3Violations: a3Violations &- o.a3Violations,
                   a5Checks: a5Checks &- o.a5Checks, a5Violations: a5Violations &- o.a5Violations,
                   a6Checks: a6Checks &- o.a6Checks, a6Violations: a6Violations &- o.a6Violations,
                   a8Checks: a8Checks &- o.a8Checks,
                   a8Violations: a8Violations &- o.a8Violations, scansInInterrupt: scansInInterrupt &- o.scansInInterrupt,
                   secondScans: secondScans &- o.secondScans)
        }
    }

    /// A5 under the lock (every designation changes under it): each of our
    /// lwps is in the table; it is queued exactly when it is on a run queue,
    /// and "user" exactly when one CPU's uschedcp names it (read as identity
    /// words, never as references), and no two CPUs name the same lwp.
    struct A5 { var violations = 0, missing = 0, queued = 0, user = 0, kernel = 0 }
    static func checkA5(_ ours: [Lwp]) -> A5 {
        var r = A5()
        for lp in ours {
            let inTable = Bsd4Scheduler.lwps.contains { $0 === lp }
            if !inTable && lp.place != .exited { r.missing += 1 }
            if (lp.place == .queued) != lp.onRunQ { r.violations += 1 }
            var namedBy = 0
            for c in Bsd4Scheduler.cpus where c.uschedcp == lp.identity { namedBy += 1 }
            if namedBy > 1 || (lp.place == .user) != (namedBy == 1) { r.violations += 1 }
            switch lp.place {
            case .queued: r.queued += 1
            case .user: r.user += 1
            case .kernel: r.kernel += 1
            case .exited: break
            }
        }
        return r
    }

    static func run(_ t: inout TestContext) {
        guard Clock.enabled else {
            t.skip("run", reason: .needsTick, "bsd4-torture needs the tick: it drives the scheduler clock (estcpu, round robin, A3 checks)")
            return
        }
        let cpus = SMP.online
        let n = 4 * cpus.count
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        stop.store(false, ordering: .relaxed)
        Bsd4Scheduler.start()
        let before = Totals.now()
        let chunk = TSC.ticksPerMs / 10
        // Idle gaps on the lwp CPUs (see hog): every bsd4.idle_gap_ms.
        let gap = TSC.ticksPerMs * UInt64(max(0, KernelOptions.int("bsd4.idle_gap_ms", default: 300)))
        // The scan has CPU 0 to itself (as DragonFly's softclock scan would not
        // share its CPU with user lwps for long); the lwps race it from the
        // others - on -smp 2 from one, the configuration of the report.
        var mask = cpus
        if cpus.count > 1 { mask.remove(0) }
        var hogs: [Lwp] = []
        for i in 0..<n {
            let cpu = mask.nth(i % mask.count) ?? 0
            if let lp = Bsd4Scheduler.spawn("hog", nice: nices[i % nices.count], mask: mask, cpu: cpu,
                                            { Bsd4Torture.hog($0, chunkCycles: chunk, gapCycles: gap) }) {
                hogs.append(lp)
            }
        }
        // Sleepers keep lwps leaving and re-entering the queues through the
        // kernel (release, timed wake-up, recalculate after sleep).
        let nSleepers = max(1, cpus.count / 2)
        var sleepers: [Lwp] = []
        for i in 0..<nSleepers {
            if let lp = Bsd4Scheduler.spawn("sleeper", nice: 0, mask: mask, cpu: mask.nth(i % mask.count) ?? 0,
                                            { Bsd4Torture.sleeper($0, chunkCycles: chunk) }) {
                sleepers.append(lp)
            }
        }
        let ours = hogs + sleepers
        t.expect("created", hogs.count == n && sleepers.count == nSleepers) { l in
            l.write("created "); l.dec(hogs.count); l.write(" of "); l.dec(n); l.write(" CPU-bound lwps and ")
            l.dec(sleepers.count); l.write(" of "); l.dec(nSleepers); l.write(" sleepers")
        }
        if BugKnobs.bsd4RemoteAssert { t.note { $0.write("negative control: resetpriority asserts on the remote uschedcp") } }

        // The tight scan on CPU 0, checking A2 and A5 after every pass.
        var w = Bsd4Scheduler.WindowCounts()
        var passes: UInt64 = 0, a2Bad: UInt64 = 0, a5Bad: UInt64 = 0, a5Missing: UInt64 = 0
        var firstA2: Bsd4QueueViolation? = nil
        var lastA5 = A5()
        // Each move holds the window open until the lwp's CPU designates it, at
        // most bsd4.window_us (120 ms: with the helper at the lowest priority a
        // busy CPU designates the moved lwp at its next round-robin switch,
        // every 100 ms; 0 leaves the natural window, a few hundred
        // instructions wide). The run lasts torture.seconds, and longer
        // (up to 15x) until the window was hit with the moved lwp itself - the
        // case the 2008 assertion panicked on.
        let windowUs = UInt64(max(0, KernelOptions.int("bsd4.window_us", default: 120_000)))
        let hold = TSC.ticksPerMs * windowUs / 1000
        // A poke to a CPU whose running lwp changed queue waits until that CPU
        // designates another lwp, at most bsd4.poke_hold_us (200 ms, two
        // round-robin intervals): the stale-hint window. With the helper at
        // the lowest priority a busy CPU is rarely ready, so pokes are few.
        let pokeHold = TSC.ticksPerMs * UInt64(max(0, KernelOptions.int("bsd4.poke_hold_us", default: 200_000))) / 1000
        let start = TSC.now
        let end = start &+ TSC.ticksPerMs &* 1000 &* seconds
        // The held window reads the moved lwp's own CPU before the poke (the
        // 2008 order), so a hit needs that CPU, of the ncpu-1 lwp CPUs, to
        // choose the lwp at its own round robin: rarer with more CPUs (at
        // -smp 8 one boot in two saw none in 30 s). The cap grows with them.
        let limit = start &+ TSC.ticksPerMs &* 15_000 &* seconds &* UInt64(max(1, (cpus.count - 1) / 2))
        func hit() -> Bool {
            let d = Totals.now().minus(before)
            return d.secondScans > 0 && (cpus.count < 2 || w.becameLwp > 0)
        }
        let c0 = Bsd4Scheduler.lock.raw.contended.load(ordering: .relaxed)
        let s0 = Bsd4Scheduler.lock.raw.spins.load(ordering: .relaxed)
        var scanCycles: UInt64 = 0
        repeat {
            let ts = TSC.now
            Bsd4Clock.scan(secondTick: false, holdCycles: hold, pokeHoldCycles: pokeHold, &w)
            scanCycles &+= TSC.now &- ts
            Bsd4Scheduler.lock.lock()
            if let v = Bsd4Scheduler.queues.checkA2() {
                a2Bad &+= 1
                if firstA2 == nil { firstA2 = v }
            }
            lastA5 = checkA5(ours)
            Bsd4Scheduler.lock.unlock()
            // The lwps' CPUs are busy, so their helpers (lowest priority) run
            // only in the gaps of a round-robin switch, and only if woken: wake
            // them after each pass, as a setrunqueue would, so that those CPUs
            // become ready again and the scan's pokes (which need a ready
            // target) go out - otherwise one poke can leave a CPU unready for
            // the rest of the run.
            mask.forEach { if $0 != PerCPU.currentNumber { Bsd4Requests.wakeHelper($0) } }
            a5Bad &+= UInt64(lastA5.violations)
            a5Missing &+= UInt64(lastA5.missing)
            passes &+= 1
        } while TSC.now < end || (!hit() && TSC.now < limit)
        let elapsedMs = (TSC.now &- start) / TSC.ticksPerMs
        Console.line { l in
            l.write("bsd4-torture: bsd4_spin contended "); l.dec(Bsd4Scheduler.lock.raw.contended.load(ordering: .relaxed) &- c0)
            l.write(" times, "); l.dec(Bsd4Scheduler.lock.raw.spins.load(ordering: .relaxed) &- s0); l.write(" spins; scan time ")
            l.dec(scanCycles / TSC.ticksPerMs); l.write(" ms")
        }
        Bsd4Dump.print()
        let d = Totals.now().minus(before)

        // Shares: CPU-bound lwps ordered by nice.
        Bsd4Scheduler.lock.lock()
        var ticksByNice = [UInt64](repeating: 0, count: nices.count)
        var total: UInt64 = 0
        for (i, lp) in hogs.enumerated() { ticksByNice[i % nices.count] &+= lp.runTicks; total &+= lp.runTicks }
        Bsd4Scheduler.lock.unlock()
        Console.line { l in
            l.write("bsd4-torture: scheduler ticks by nice:")
            for (i, v) in ticksByNice.enumerated() { l.write(" "); l.dec(nices[i]); l.write("="); l.dec(v) }
            l.write(" (total "); l.dec(total); l.write(")")
        }

        // Before stopping (on the way out every lwp runs once more): lwps that
        // never ran. bsd4 may keep a nice +20 hog off the CPU for tens of
        // seconds (batch takes 30 s to age a nice -20 hog), so this is shown,
        // not checked; a lost lwp shows below, as one that never leaves.
        let neverRan = hogs.filter { $0.progress.load(ordering: .relaxed) == 0 }.count
        var sleeps: UInt64 = 0
        for lp in sleepers { sleeps &+= lp.progress.load(ordering: .relaxed) }
        // Stop: every lwp must come back and leave (A5: none lost).
        stop.store(true, ordering: .relaxed)
        let budget = TimeBudget(milliseconds: 20_000)
        while !ours.allSatisfy({ $0.exited.load(ordering: .acquiring) }) && !budget.expired { Scheduler.yield() }
        let stuck = ours.filter { !$0.exited.load(ordering: .acquiring) }.count
        // A CPU left without a designated lwp shows A3's "bit <=> uschedcp" at
        // its next scheduler ticks (during the run every CPU always has one):
        // give every CPU a few ticks idle before the A3/A5 totals are taken.
        let settle = TimeBudget(milliseconds: 200)
        while !settle.expired { Scheduler.yield() }
        let e = Totals.now().minus(before)

        Console.line { l in
            l.write("bsd4-torture: "); l.dec(n); l.write(" CPU-bound lwps and "); l.dec(nSleepers); l.write(" sleepers on ")
            l.dec(cpus.count); l.write(" CPUs, ")
            l.dec(passes); l.write(" scan passes in "); l.dec(elapsedMs); l.write(" ms; resetpriority moved a queued lwp "); l.dec(w.movedQueued)
            l.write(" times; its CPU's uschedcp changed under the scan "); l.dec(w.changed)
            l.write(" times, to the moved lwp itself "); l.dec(w.becameLwp); l.write(" times")
        }
        // Held and natural hits apart: a natural hit was seen at the first
        // read after the unlock; a held one only while bsd4.window_us kept
        // the window open (the held window ends when the hit happens).
        Console.line { l in
            l.write("bsd4-torture: window hits natural "); l.dec(w.naturalBecameLwp); l.write(", held ")
            l.dec(w.becameLwp &- w.naturalBecameLwp); l.write(" (bsd4.window_us="); l.dec(windowUs); l.write(")")
        }
        Console.line { l in
            l.write("bsd4-torture: user-resched requests received "); l.dec(d.requests); l.write(", spurious ")
            l.dec(d.spurious); l.write(", running-lwp hints "); l.dec(d.sawDesignated); l.write(", coalesced "); l.dec(d.coalesced); l.write(", dropped (ring full) "); l.dec(d.dropped)
        }
        // The seed-000 window: with one CPU there is no remote designation to
        // race (one CPU scans, the others designate).
        if cpus.count < 2 {
            t.skip("window", reason: .needs2CPUs, "the seed-000 window needs a second CPU (one scanning, one designating)")
            if windowUs != 0 {
                t.skip("window-lwp", reason: .needs2CPUs, "the window reaching the moved lwp itself needs a second CPU")
            }
        } else {
            t.expect("window", w.changed, .above(0)) { l in
                l.write(windowUs == 0 ? "the natural window was hit" : "the window was hit")
                l.write(": the moved lwp's CPU changed its uschedcp under the scan "); l.dec(w.changed); l.write(" times")
            }
            if windowUs == 0 {
                // The natural window (read before the poke, as in 2008) is a few
                // hundred instructions wide: the moved lwp's CPU is seen to
                // change its uschedcp in it every run, but to designate the moved
                // lwp itself only in about half of the 30 s runs (the control
                // panics in about half): reported, not required.
                t.note { l in
                    l.write("natural window: "); l.dec(w.becameLwp); l.write(" of them to that lwp (reported, not required)")
                }
            } else {
                t.expect("window-lwp", w.becameLwp, .above(0)) { l in
                    l.write("the held window reached the moved lwp itself "); l.dec(w.becameLwp)
                    l.write(" times (its CPU designated it under the scan, where the 2008 assertion fired)")
                }
            }
        }
        if cpus.count >= 2 {
            // Spurious requests are reported, not required: a stale-hint poke
            // needs a ready target (its rdyprocmask bit), which only that
            // CPU's helper sets, and the helper runs at the lowest priority
            // (as DragonFly's): a busy lwp CPU is rarely ready. The idle
            // gaps (bsd4.idle_gap_ms) make lwp CPUs ready a few times a
            // second, but a 2 s run still saw 0 or 1 under TCG at -smp 2
            // and 4. The window itself - the moved lwp designated under the
            // scan - is required above.
            t.note { l in
                l.write("stale hints cost "); l.dec(d.spurious); l.write(" spurious user-resched requests of "); l.dec(d.requests)
                l.write(" (reported, not required)")
            }
        }
        // Each count of violations is held to zero and each count of checks
        // made to more than zero (a check that never ran proves nothing); the
        // runner derives the verdict from these records.
        t.expect("a2", inv: "A2", a2Bad, .equals(0)) { l in
            l.write("A2: queues and masks consistent after each of "); l.dec(passes); l.write(" passes (")
            l.dec(a2Bad); l.write(" bad")
            if let v = firstA2 { l.write("; first: "); l.write(v.kind.reason) }
            l.write(")")
        }
        t.expect("a3", inv: "A3", e.a3Violations, .equals(0)) { l in
            l.write("A3: curprocmask bit <=> uschedcp on each CPU, by the CPU itself, during the run and idle after it (")
            l.dec(e.a3Violations); l.write(" violations)")
        }
        t.expect("a3-checked", inv: "A3", e.a3Checks, .above(0)) { l in
            l.write("A3 was checked "); l.dec(e.a3Checks); l.write(" times")
        }
        t.expect("a5-scan", inv: "A5", a5Bad &+ a5Missing, .equals(0)) { l in
            l.write("A5: every lwp in exactly one place, user iff one CPU designates it, in every pass (last: ")
            l.dec(lastA5.queued); l.write(" queued, "); l.dec(lastA5.user); l.write(" user, "); l.dec(lastA5.kernel)
            l.write(" kernel; "); l.dec(a5Bad); l.write(" violations, "); l.dec(a5Missing); l.write(" missing)")
        }
        t.expect("a5-tick", inv: "A5", e.a5Violations, .equals(0)) { l in
            l.write("A5 by each CPU at its scheduler tick: its designated lwp is user, unqueued and its own thread (")
            l.dec(e.a5Violations); l.write(" violations)")
        }
        t.expect("a5-tick-checked", inv: "A5", e.a5Checks, .above(0)) { l in
            l.write("A5 was checked at the scheduler ticks "); l.dec(e.a5Checks); l.write(" times")
        }
        if cpus.count < 2 {
            // On one CPU the lwps share it with the scan, which does not yield:
            // no lwp runs long enough to be installed and ticked.
            t.skip("a6", inv: "A6", reason: .needs2CPUs, "A6 needs an lwp that runs: on one CPU the lwps share it with the scan")
            t.skip("a6-checked", inv: "A6", reason: .needs2CPUs, "A6 checks need an lwp that runs (a second CPU)")
        } else {
            t.expect("a6", inv: "A6", e.a6Violations, .equals(0)) { l in
                l.write("A6: rrcount restarts at each install (never more ticks than since the install) (")
                l.dec(e.a6Violations); l.write(" violations)")
            }
            t.expect("a6-checked", inv: "A6", e.a6Checks, .above(0)) { l in
                l.write("A6 was checked "); l.dec(e.a6Checks); l.write(" times")
            }
        }
        t.expect("a8", inv: "A8", e.a8Violations, .equals(0)) { l in
            l.write("A8: a running lwp in user code is its CPU's uschedcp, at ticks and boundaries (")
            l.dec(e.a8Violations); l.write(" violations)")
        }
        t.expect("a8-checked", inv: "A8", e.a8Checks, .above(0)) { l in
            l.write("A8 was checked "); l.dec(e.a8Checks); l.write(" times")
        }
        t.expect("second-scans", e.secondScans, .above(0)) { l in
            l.write("the once-a-second scan ran "); l.dec(e.secondScans); l.write(" times from its thread")
        }
        t.expect("scan-in-interrupt", e.scansInInterrupt, .equals(0)) { l in
            l.write("the once-a-second scan never runs in interrupt context ("); l.dec(e.scansInInterrupt); l.write(" times)")
        }
        if cpus.count < 2 {
            t.skip("sleeps", reason: .needs2CPUs, "the sleepers share CPU 0 with the scan, which does not yield")
        } else {
            t.expect("sleeps", sleeps, .above(0)) { l in
                l.write("sleepers slept and woke "); l.dec(sleeps); l.write(" times (designation released, timed wake-up, recalculated)")
            }
        }
        t.note { l in l.write("lwps that had not run yet when told to stop: "); l.dec(neverRan) }
        t.expect("exited", inv: "A5", UInt64(stuck), .equals(0)) { l in
            l.write("A5: every lwp came back and exited when told ("); l.dec(stuck); l.write(" stuck)")
        }
    }
}
