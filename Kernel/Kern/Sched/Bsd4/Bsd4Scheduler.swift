import Synchronization

// The bsd4 user scheduler, kernel side (DragonFly's usched_bsd4.c;
// docs/bsd4-scheduler.md). Every decision is the pure core's (Core/Bsd4, tested
// on the host); this file owns the state and runs the entry points. Who writes
// what:
//   bsd4_spin (`lock`)  the run queues, runqcount, scancpu, the lwp table, every
//                       lwp's run-queue fields, priority and estcpu state, and
//                       the CPU of a parked lwp thread (a chooser pulls it)
//   CPU c only          Bsd4CPU c: uschedcp, upri, rrcount (A1), curprocmask bit c
//   atomics             rdyprocmask: set by CPU c's helper, cleared by whoever
//                       hands CPU c work (like DragonFly)
// Sends (user-resched requests, helper wake-ups) never happen under bsd4_spin:
// a send can wait, and waiting runs handlers (Bsd4Requests).
//
// Threads: a user-class lwp runs on a kernel thread (Kern/Sched/Bsd4/Lwp.swift). An lwp
// that may not be designated parks its thread on the run queue (`park`); the CPU
// that chooses it designates it and pulls the thread to itself (`pull`, the D6
// hand-off). So the designated CPU is always the thread's CPU, and a thread is
// only ever moved while parked.

enum Bsd4Scheduler {
    static let lock = SpinLock("bsd4_spin")
    nonisolated(unsafe) static var queues = Bsd4RunQueues<Lwp>()
    nonisolated(unsafe) static var scancpu = 0
    /// Every live lwp (the recalculation scan walks it).
    nonisolated(unsafe) static var lwps: [Lwp] = []
    static let curprocmask = Atomic<UInt64>(0)
    static let rdyprocmask = Atomic<UInt64>(0)
    /// Built at boot before any AP starts; read-only afterwards.
    nonisolated(unsafe) static var cpus: [Bsd4CPU] = []
    static let started = Atomic<Bool>(false)
    private static let startLock = SpinLock("bsd4 start")

    static var mine: Bsd4CPU { cpus[PerCPU.currentNumber] }
    /// CPU numbers run 0..<ncpus; some may never have come online.
    static var ncpus: Int { cpus.count }
    /// The CPUs that run: the `ncpus` of the estcpu sample formula.
    static var onlineCount: Int { max(1, SMP.online.count) }
    /// The scheduler clock's time in ESTCPUFREQ ticks, the same on every CPU.
    static var now: Int { Int(TSC.uptimeNanoseconds / (1_000_000_000 / UInt64(Bsd4.estcpuFreq))) }

    static func initialize(cpuCount: Int) {
        cpus = (0..<cpuCount).map { Bsd4CPU(cpu: $0) }
    }

    /// Starts one helper thread per online CPU, once.
    static func start() {
        startLock.lock()
        let first = !started.load(ordering: .acquiring)
        if first { started.store(true, ordering: .releasing) }
        startLock.unlock()
        guard first else { return }
        SMP.online.forEach { Bsd4Helper.start(on: $0) }
        Bsd4Clock.startScanThread()
    }

    // MARK: lwps

    /// Creates an lwp whose thread starts on `cpu` and runs `body`, then leaves.
    static func spawn(_ name: StaticString, nice: Int, mask: CPUMask? = nil, cpu: Int,
                      estcpu: Int = 0, _ body: @escaping (Lwp) -> Void) -> Lwp? {
        start()
        let lp = Lwp(name: name, nice: nice, cpuMask: mask ?? SMP.online, estcpu: estcpu)
        guard let td = Thread.create(name, priority: Thread.normalPriority, cpu: cpu, {
            body(lp)
            Bsd4Scheduler.exit(lp)
        }) else { return nil }
        lp.attach(td)
        lock.lock()
        lp.est.cpbase = now
        lwps.append(lp)
        lock.unlock()
        Scheduler.schedule(td)
        return lp
    }

    /// The lwp leaves (its own thread): it must be neither queued nor designated (A5).
    static func exit(_ lp: Lwp) {
        leaveUser(lp)
        releaseCurproc(lp)
        lock.lock()
        if !Bsd4Estcpu.mayExit(onRunQ: lp.onRunQ, designated: mine.uschedcp == lp.identity) {
            panic("bsd4: an lwp exited while queued or designated")
        }
        lp.place = .exited
        if let i = lwps.firstIndex(where: { $0 === lp }) { lwps.remove(at: i) }
        lock.unlock()
        Thread.current.lwpIdentity = 0
        lp.exited.store(true, ordering: .releasing)
    }

    // MARK: resetpriority

    /// What resetpriority leaves to do once bsd4_spin is dropped.
    struct Pending {
        var lp: Lwp? = nil
        var poke = Bsd4Poke.none
        var newPriority = 0
        /// A queued lwp was moved to another queue: the seed-000 path.
        var movedQueued = false
        var target = 0
        /// The target CPU's uschedcp as read under the lock (a hint).
        var uschedcpBefore: UInt = 0
    }

    /// resetpriority's store and poke decision, lock held (docs, "Priority").
    /// The target is the CPU the lwp's thread is on.
    static func storePriority(_ lp: Lwp, _ new: Bsd4Priority) -> Pending {
        let me = PerCPU.currentNumber
        let target = lp.thread.cpu
        let t = cpus[target]
        let ready = rdyprocmask.load(ordering: .relaxed) & CPUMask.bit(target) != 0
        let r = queues.resetpriority(lp, to: new, target: target, thisCPU: me, targetDesignatesLwp: t.uschedcp == lp.identity,
                                     targetReady: ready, targetUpri: t.upri)
        // Our own upri follows our designated lwp; another CPU's upri is never
        // written from here (A1; the 2008 code did).
        if let u = r.ownUpri { t.setUpri(u) }
        return Pending(lp: lp, poke: r.poke, newPriority: new.priority, movedQueued: r.movedQueued,
                       target: target, uschedcpBefore: t.uschedcp)
    }

    /// The seed-000 window, as seen by whoever ran resetpriority: counts of it.
    struct WindowCounts {
        var movedQueued: UInt64 = 0
        /// The target CPU's uschedcp changed between the read under the lock
        /// and the read after it was dropped.
        var changed: UInt64 = 0
        /// ... and became the lwp just moved: DragonFly's old assertion fires.
        var becameLwp: UInt64 = 0
        /// Of becameLwp: seen at the first read after the unlock, with no
        /// hold (the natural window); the rest were seen while the window
        /// was held open (bsd4.window_us).
        var naturalBecameLwp: UInt64 = 0
    }

    /// resetpriority's second half, after dropping bsd4_spin: the window, then
    /// the poke (the 2008 order: its assertion sat right after the unlock,
    /// before the request went out, so what it raced was the target's own
    /// designation, never our poke's effect). `holdCycles` (bsd4-torture)
    /// keeps the window open until the target designates the moved lwp or
    /// that many TSC cycles pass.
    static func finish(_ p: Pending, holdCycles: UInt64 = 0, pokeHoldCycles: UInt64 = 0, _ w: inout WindowCounts) {
        guard let lp = p.lp else { return }
        if p.movedQueued { window(p, lp, holdCycles: holdCycles, &w) }
        switch p.poke {
        case .none: break
        case .local: mine.userResched.store(true, ordering: .relaxed)
        case .remote(let cpu):
            let old = rdyprocmask.bitwiseAnd(~CPUMask.bit(cpu), ordering: .sequentiallyConsistent).oldValue
            if pokeHoldCycles != 0 && !p.movedQueued && p.uschedcpBefore == lp.identity {
                // bsd4-torture: hold the hint's window open too, until the
                // target designates another lwp (at most pokeHoldCycles): the
                // request then arrives stale, and must cost nothing but itself.
                let end = TSC.now &+ pokeHoldCycles
                while cpus[cpu].uschedcp == p.uschedcpBefore && TSC.now < end { CPU.pause() }
            } else if pokeHoldCycles != 0 && p.movedQueued && holdCycles != 0 {
                // The same for a "better" poke, when the seed-000 window is
                // held open anyway (not in the natural-window runs): until the
                // target's upri is no longer worse than the moved lwp.
                let end = TSC.now &+ pokeHoldCycles
                while Bsd4.queueOf(cpus[cpu].upri) > Bsd4.queueOf(p.newPriority) && TSC.now < end { CPU.pause() }
            }
            Bsd4Requests.resched(cpu, p.movedQueued ? .better : .running, lp: lp, priority: p.newPriority,
                                 sawDesignated: p.uschedcpBefore == lp.identity, tookBit: old & CPUMask.bit(cpu) != 0)
        }
    }

    /// The seed-000 window of a moved queued lwp, lock dropped: the lwp's CPU
    /// may make it uschedcp right now, without any lock (its own field). What
    /// we read here is a hint.
    private static func window(_ p: Pending, _ lp: Lwp, holdCycles: UInt64, _ w: inout WindowCounts) {
        w.movedQueued &+= 1
        let t = cpus[p.target]
        var seen = t.uschedcp
        var changed = seen != p.uschedcpBefore
        if seen == lp.identity { w.naturalBecameLwp &+= 1 }
        if holdCycles != 0 {
            let end = TSC.now &+ holdCycles
            while seen != lp.identity && TSC.now < end {
                CPU.pause()
                seen = t.uschedcp
                if seen != p.uschedcpBefore { changed = true }
            }
        }
        if changed { w.changed &+= 1 }
        if seen == lp.identity { w.becameLwp &+= 1 }
        if BugKnobs.bsd4RemoteAssert && t.uschedcp == lp.identity {
            // BUG (negative control): DragonFly's 2008 KKASSERT, on another
            // CPU's unlocked field. The fix is its absence (A4).
            panic("assertion: dd->uschedcp != lp in bsd4_resetpriority")
        }
    }

    static func finish(_ p: Pending) {
        var w = WindowCounts()
        finish(p, &w)
    }

    // MARK: setrunqueue, chooseproc

    /// setrunqueue(lp), lock held: queue it, advance the rotor and pick the CPU
    /// to tell (docs, "Entry points"). The delivery happens after unlocking.
    static func setrunqueueLocked(_ lp: Lwp) -> Bsd4Delivery {
        var tookBit = false
        return setrunqueueLocked(lp, tookBit: &tookBit)
    }

    /// `tookBit`: the delivery's target had its rdyprocmask bit set and this
    /// call cleared it (a refused delivery gives it back; Bsd4Requests).
    static func setrunqueueLocked(_ lp: Lwp, tookBit: inout Bool) -> Bsd4Delivery {
        lp.place = .queued
        queues.insert(lp)
        scancpu &+= 1
        let d = Bsd4SetrunqueueDecision.decide(lwpPriority: lp.priority, lwpMask: lp.cpuMask, scancpu: scancpu, ncpus: ncpus,
                                               online: SMP.online, thisCPU: PerCPU.currentNumber,
                                               thisHasUschedcp: mine.hasUschedcp,
                                               curprocmask: CPUMask(bits: curprocmask.load(ordering: .relaxed)),
                                               rdyprocmask: CPUMask(bits: rdyprocmask.load(ordering: .relaxed)),
                                               upri: { Bsd4Scheduler.cpus[$0].upri })
        if let t = d.claim { tookBit = claimLocked(t, swept: d.swept) }
        return d.delivery
    }

    /// Lock held: CPU t is being told about work. Its rdyprocmask bit is
    /// cleared before bsd4_spin is dropped (A7; DragonFly does the same), so no
    /// other setrunqueue or chain can pick t again on the strength of the same
    /// readiness; only t's helper sets it again. `swept`: t was picked because
    /// its bit was set (not the rotor fallback, which checks no mask).
    /// Returns whether the bit was set and this call cleared it.
    @discardableResult
    static func claimLocked(_ t: Int, swept: Bool) -> Bool {
        let c = cpus[t]
        if swept { sweptOffers.wrappingAdd(1, ordering: .relaxed) }
        if swept && c.offered.exchange(true, ordering: .acquiringAndReleasing) {
            c.a7Violations.wrappingAdd(1, ordering: .relaxed)
        }
        if BugKnobs.bsd4LateReadyClear { return false }      // BUG knob: cleared after the unlock
        return rdyprocmask.bitwiseAnd(~CPUMask.bit(t), ordering: .sequentiallyConsistent).oldValue & CPUMask.bit(t) != 0
    }

    /// bug.bsd4_late_ready_clear only: the clear after the unlock, where a
    /// second setrunqueue can still see the bit and pick t again (A7).
    static func lateReadyClear(_ t: Int) -> Bool {
        rdyprocmask.bitwiseAnd(~CPUMask.bit(t), ordering: .sequentiallyConsistent).oldValue & CPUMask.bit(t) != 0
    }

    /// Offers made on the strength of a set rdyprocmask bit (A7's checks).
    static let sweptOffers = Atomic<UInt64>(0)
    /// Test hook (bsd4-offer, `bsd4.deliver_delay_us`): TSC cycles to wait
    /// between dropping bsd4_spin and telling another CPU. It widens the
    /// window in which an offer's rdyprocmask bit would still be set if it
    /// were cleared after the unlock (A7). 0: off.
    nonisolated(unsafe) static var deliverDelayCycles: UInt64 = 0

    /// Tells the CPU setrunqueue picked (never under the lock; its rdyprocmask
    /// bit was cleared under it).
    static func deliver(_ d: Bsd4Delivery, lp: Lwp, priority: Int, tookBit: Bool) {
        if deliverDelayCycles != 0, d.remoteCPU != nil { TSC.spin(cycles: deliverDelayCycles) }
        var tookBit = tookBit
        if BugKnobs.bsd4LateReadyClear, let t = d.remoteCPU { tookBit = lateReadyClear(t) }
        switch d {
        case .nothing: break
        case .localWakeHelper: Bsd4Helper.wakeLocal()
        case .localResched: mine.userResched.store(true, ordering: .relaxed)
        case .remoteResched(let cpu):
            Bsd4Requests.resched(cpu, .better, lp: lp, priority: priority, sawDesignated: false, tookBit: tookBit)
        case .remoteWakeHelper(let cpu):
            Bsd4Requests.wakeHelper(cpu, tookBit: tookBit)
        }
    }

    /// Lock held, on this CPU: `lp` was just taken off the run queue for us.
    /// Designate it and claim its parked thread (nobody queues a thread in
    /// hand-off but its new owner). Pull the thread after unlocking.
    static func installLocked(_ lp: Lwp) -> Thread {
        let c = mine
        // A6: every install starts a fresh round-robin interval (DragonFly
        // resets rrcount in select_curproc and in its helper); a carried-over
        // count would cut the new lwp's first slice short.
        designateLocked(lp, c, BugKnobs.bsd4RRCarry ? .take : .install)   // BUG knob: A6 (carry rrcount)
        c.installedAt = now
        let td = lp.thread!
        td.state = .migrating
        td.cpu = c.cpu
        return td
    }

    /// Lock held, on CPU c: lp becomes c's designated lwp. One it displaces is
    /// in the kernel from now on (its thread, still runnable on c, queues
    /// itself at its next boundary), so an lwp is "user" exactly while it is
    /// some CPU's uschedcp (A5).
    static func designateLocked(_ lp: Lwp, _ c: Bsd4CPU, _ how: Bsd4Designation) {
        if let old = c.designated, old !== lp { old.place = .kernel }
        c.designate(lp)
        c.setRRCount(how.rrcount(carried: c.rrcount))
        c.installedAt = -1
        lp.place = .user
    }

    /// Lock held, interrupts off, on CPU c, right after lp displaced `old` in
    /// acquire (a steal). DragonFly does NOT deschedule here (the lines are
    /// commented out in its steal: the other thread "will stall when it
    /// tries to return to userland"): its user code runs only at user level,
    /// and a displaced lwp's thread reaches userexit before it can run any.
    /// Ours is kernel code that the LWKT tick can preempt in the middle of a
    /// user chunk, so a thread preempted in user code would resume there
    /// undesignated (A8): that one, and only that one, we take off our LWKT
    /// run queue and park on the bsd4 run queue (it resumes where it was once
    /// a chooser designates and pulls it). A thread preempted in the kernel
    /// (inUser clear) is left alone and stalls at its next boundary, as in
    /// DragonFly: parked at an arbitrary kernel point it could hold a request
    /// latch (every request to that CPU coalesced into nothing) or a
    /// CPU-local value, and a bound one must never be parked (B1).
    /// Returns setrunqueue's delivery.
    static func descheduleDisplacedLocked(_ old: Lwp, tookBit: inout Bool) -> Bsd4Delivery? {
        let s = Scheduler.mine
        guard let td = old.thread, td !== Thread.current, td.cpu == s.cpu, td.state == .runnable,
              td.rqLevel != -1, old.inUser.load(ordering: .relaxed), !td.isBound else { return nil }
        s.runQueue.remove(td)
        Sleep.forgetTimeout(td, s)
        td.state = .sleeping                         // parked: only installLocked takes it
        return setrunqueueLocked(old, tookBit: &tookBit)
    }

    /// Queues a thread claimed by installLocked on this CPU once its old CPU has
    /// switched it out: the hand-off's RUNNING spin and fence (D6).
    static func pull(_ td: Thread) {
        Scheduler.sendToOwner(td)
    }

    // MARK: acquire, release, select

    /// The return-to-user boundary (DragonFly's userexit, as a CPU hog meets
    /// it: through an AST): cheap unless a reschedule is wanted or the lwp
    /// lost its designation.
    static func userret(_ lp: Lwp) {
        KTrace.record(.bsd4Kernel, UInt64(Thread.current.id))
        leaveUser(lp)
        while true {
            // Only an AST (a user reschedule wanted, or the designation lost)
            // enters acquire, as a CPU hog returns to user in DragonFly: a hog
            // is recalculated through these and the once-a-second scan, not at
            // every scheduler tick (which made estcpu converge about five
            // times faster).
            let c = mine
            if c.userResched.load(ordering: .relaxed) || c.uschedcp != lp.identity {
                acquireCurproc(lp)
            }
            // Into user code only still designated, checked with interrupts
            // off (DragonFly re-checks its AST flags with interrupts disabled
            // on the way out): a steal between acquire and here found us in
            // the kernel and left our thread alone (descheduleDisplacedLocked),
            // and only this CPU's own lwps change its uschedcp (A8).
            let flags = CPU.saveFlagsAndDisableInterrupts()
            let ok = mine.uschedcp == lp.identity
            if ok { lp.inUser.store(true, ordering: .relaxed) }
            CPU.restoreFlags(flags)
            if ok { KTrace.record(.bsd4User, UInt64(Thread.current.id)); return }
        }
    }

    /// The lwp enters the kernel. A8 at the boundary: the user code it just
    /// ran ended under its designation (a displaced lwp that resumed in user
    /// code, however briefly, arrives here undesignated). Interrupts off: the
    /// CPU read and its uschedcp belong together.
    static func leaveUser(_ lp: Lwp) {
        guard lp.inUser.load(ordering: .relaxed) else { return }
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let c = mine
        c.a8Checks.wrappingAdd(1, ordering: .relaxed)
        if c.uschedcp != lp.identity { c.a8Violations.wrappingAdd(1, ordering: .relaxed) }
        lp.inUser.store(false, ordering: .relaxed)
        CPU.restoreFlags(flags)
    }

    /// acquire_curproc(lp): returns once lp is this CPU's designated lwp.
    static func acquireCurproc(_ lp: Lwp) {
        recalculate(lp)
        if mine.userResched.load(ordering: .relaxed) {
            mine.userResched.store(false, ordering: .relaxed)
            releaseCurproc(lp)                       // round robin
        }
        while true {
            Scheduler.yieldToHigher()                // kernel threads above the lwps first
            let flags = CPU.saveFlagsAndDisableInterrupts()
            let c = mine
            let step = Bsd4AcquireStep.decide(lpIsUschedcp: c.uschedcp == lp.identity, hasUschedcp: c.hasUschedcp,
                                              upri: c.upri, lwpPriority: lp.priority)
            switch step {
            case .alreadyCurrent:
                c.setUpri(lp.priority)
                CPU.restoreFlags(flags)
                return
            case .take, .steal:
                // A steal replaces the designation (as DragonFly's does); a
                // displaced lwp preempted in user code is parked on the run
                // queue (our deviation, descheduleDisplacedLocked). The
                // decision stays true under the lock: only this CPU changes
                // its uschedcp, and interrupts are off.
                lock.lock()
                let old = step == .steal ? c.designated : nil
                designateLocked(lp, c, step == .steal ? .steal : .take)
                var tookBit = false
                let d = old.flatMap { descheduleDisplacedLocked($0, tookBit: &tookBit) }
                let oldPriority = old?.priority ?? 0
                lock.unlock()
                CPU.restoreFlags(flags)
                if let d, let old { deliver(d, lp: old, priority: oldPriority, tookBit: tookBit) }
                return
            case .queue:
                CPU.restoreFlags(flags)
                park(lp)                             // back designated, maybe elsewhere
            }
        }
    }

    /// Puts lp on the run queue and switches away until a chooser designates it
    /// and pulls the thread (acquire's queue step).
    static func park(_ lp: Lwp) {
        let td = Thread.current
        if td.isBound { panic("B1: a bound lwp parked (any CPU may pull it)") }
        SpinlockSection.enter()                      // interrupts off into the switch
        Sleep.forgetTimeout(td, Scheduler.mine)      // the owner's timed list only
        lock.lock()
        var tookBit = false
        let d = setrunqueueLocked(lp, tookBit: &tookBit)
        let priority = lp.priority
        td.state = .sleeping                         // parked: only installLocked takes it
        lock.unlock()
        deliver(d, lp: lp, priority: priority, tookBit: tookBit)
        Scheduler.switchAway()
        SpinlockSection.exit()
    }

    /// release_curproc(lp): if lp is designated here, undesignate it and
    /// select_curproc (in the same lock hold): designate the best queued lwp
    /// allowed here, if any, and pull its thread.
    static func releaseCurproc(_ lp: Lwp) {
        CriticalSection.enter()                      // stay on this CPU
        let c = mine
        if c.uschedcp == lp.identity {               // only this CPU changes it
            lock.lock()
            c.undesignate()
            lp.place = .kernel
            let td = queues.chooseproc(cpu: c.cpu, current: nil).lwp.map { installLocked($0) }
            lock.unlock()
            if let td { pull(td) }
        }
        CriticalSection.exit()
    }

    /// A sleep in the kernel ("system call" of an interactive lwp): give up the
    /// designation, sleep `ticks` ticks (the once-a-second scan counts the
    /// seconds), and on waking recalculate (the slept-long branch runs here).
    static func sleep(_ lp: Lwp, ticks: UInt64) {
        leaveUser(lp)
        releaseCurproc(lp)
        lp.sleeping.store(true, ordering: .relaxed)
        _ = Sleep.sleep(on: Sleep.channel(lp), timeoutTicks: max(1, ticks))
        lp.sleeping.store(false, ordering: .relaxed)
        recalculate(lp)
    }

    /// recalculate(lp) for the lwp itself (acquire, and its wake-up).
    static func recalculate(_ lp: Lwp) {
        let t = now
        guard lp.est.cpbase != t || lp.est.slptime > 1 else { return }   // a hint; redone locked
        lock.lock()
        let r = Bsd4Estcpu.recalculate(lp.est, now: t, runqcount: queues.runqcount, ncpus: onlineCount,
                                       cls: lp.cls, niceOrRtprio: lp.nice)
        lp.est = r.state
        if r.kind != .unchanged { lp.est.slptime = 0; lp.recalcs &+= 1 }
        let p = r.priority.map { storePriority(lp, $0) } ?? Pending()
        lock.unlock()
        finish(p)
    }
}

// MARK: the monitor's view (ps, nice)

extension Bsd4Scheduler {
    /// nice, estcpu and priority of the lwp `td` carries, if it carries one.
    static func info(of td: Thread) -> (nice: Int, estcpu: Int, priority: Int)? {
        guard td.lwpIdentity != 0 else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard let lp = lwps.first(where: { $0.thread === td }) else { return nil }
        return (lp.nice, lp.est.estcpu, lp.priority)
    }

    /// renice: the new nice takes effect through resetpriority at once.
    static func setNice(of td: Thread, _ nice: Int) -> Bool {
        guard td.lwpIdentity != 0 else { return false }
        lock.lock()
        guard let lp = lwps.first(where: { $0.thread === td }), lp.place != .exited else { lock.unlock(); return false }
        lp.nice = nice
        let p = storePriority(lp, Bsd4Priority.compute(lp.cls, niceOrRtprio: nice, estcpu: lp.est.estcpu, batch: lp.est.batch))
        lock.unlock()
        finish(p)
        return true
    }
}
