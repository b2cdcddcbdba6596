import Synchronization

// The per-CPU bsd4 helper threads and the user-resched requests between CPUs
// (DragonFly's sched_thread and need_user_resched_remote; docs/bsd4-scheduler.md).

enum Bsd4Helper {
    static func start(on cpu: Int) {
        // The lowest priority above idle (DragonFly's TDPRI_USER_SCHEDULER):
        // the helper runs only when no lwp thread can, so a request to a busy
        // CPU is handled by its lwp's own acquire at the return to user, and
        // the helper never displaces an lwp it preempted in user code (A8).
        let priority = BugKnobs.bsd4HelperHigh ? Thread.highPriority : Thread.userSchedulerPriority   // BUG knob: A8
        guard let td = Thread.create("bsd4 helper", priority: priority, cpu: cpu, { Bsd4Helper.loop() }) else {
            panic("bsd4: no memory for a helper thread")
        }
        Bsd4Scheduler.cpus[cpu].helper = td
        Scheduler.schedule(td)
    }

    /// Makes this CPU's helper runnable (a local schedule: no lock, no send).
    static func wakeLocal() {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let c = Bsd4Scheduler.mine
        c.helperWanted = true
        if let h = c.helper, h.state == .sleeping {
            h.state = .runnable
            Scheduler.enqueueLocal(h)
        }
        CPU.restoreFlags(flags)
    }

    private static func loop() {
        while true {
            let flags = CPU.saveFlagsAndDisableInterrupts()
            let c = Bsd4Scheduler.mine
            if !c.helperWanted {
                Thread.current.state = .sleeping     // wakeLocal makes it runnable
                Scheduler.switchAway()
            }
            c.helperWanted = false
            CPU.restoreFlags(flags)
            pass(c)
        }
    }

    /// One pass: ready for work; fill an empty designation, or challenge the
    /// current one (with chooseproc's hysteresis); chain work it cannot take to
    /// the first free ready CPU.
    private static func pass(_ c: Bsd4CPU) {
        let me = c.cpu
        c.helperPasses.wrappingAdd(1, ordering: .relaxed)
        c.offered.store(false, ordering: .releasing)    // A7: before the bit is set again
        Bsd4Scheduler.rdyprocmask.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
        c.userResched.store(false, ordering: .relaxed)
        c.setRRCount(0)
        CriticalSection.enter()
        Bsd4Scheduler.lock.lock()
        let pass = Bsd4Scheduler.queues.helperPass(cpu: me, current: c.designated,
                                                   curprocmask: CPUMask(bits: Bsd4Scheduler.curprocmask.load(ordering: .relaxed)),
                                                   rdyprocmask: CPUMask(bits: Bsd4Scheduler.rdyprocmask.load(ordering: .relaxed)),
                                                   ncpus: Bsd4Scheduler.ncpus)   // rdyprocmask: online CPUs only
        let pulled = pass.install.map { Bsd4Scheduler.installLocked($0) }   // a displaced one requeues itself
        let chain = pass.chain
        var tookBit = false
        if let t = chain, t != me { tookBit = Bsd4Scheduler.claimLocked(t, swept: true) }   // A7: under the lock
        Bsd4Scheduler.lock.unlock()
        if let td = pulled { Bsd4Scheduler.pull(td) }
        if let t = chain, t != me {
            if Bsd4Scheduler.deliverDelayCycles != 0 { TSC.spin(cycles: Bsd4Scheduler.deliverDelayCycles) }
            if BugKnobs.bsd4LateReadyClear { tookBit = Bsd4Scheduler.lateReadyClear(t) }
            Bsd4Requests.wakeHelper(t, tookBit: tookBit)
        }
        CriticalSection.exit()
    }
}

/// need_user_resched_remote and the helper wake-up, as IPI-queue messages:
/// nowait sends (they come from the tick too, and a nowait send never waits or
/// runs handlers), coalesced by a per-target latch. The handlers only set this
/// CPU's flags and make its helper runnable (a local schedule).
enum Bsd4Requests {
    enum Reason: UInt64 {
        /// The lwp is running there and its queue changed (resetpriority's poke
        /// with checkpri 0). Stale if it is no longer designated there.
        case running = 1
        /// The target's upri was worse than the lwp's priority. Stale if it no
        /// longer is when the request arrives.
        case better = 2
        /// Sent again after a refusal (resendOwed): never judged stale.
        case owed = 3
    }

    /// `sawDesignated` (reason .running): the sender read the target's uschedcp
    /// as this lwp; only such a hint can turn out stale.
    /// `tookBit`: this sender cleared the target's rdyprocmask bit while it
    /// was set (claimLocked, or resetpriority's poke); only then does a
    /// refusal give it back (A7: a refusal must not mark ready a CPU
    /// whose helper never said so, nor erase another sender's live offer).
    static func resched(_ target: Int, _ reason: Reason, lp: Lwp, priority: Int, sawDesignated: Bool, tookBit: Bool = false) {
        let t = Bsd4Scheduler.cpus[target]
        if t.reschedPending.exchange(true, ordering: .acquiringAndReleasing) {
            t.requestsCoalesced.wrappingAdd(1, ordering: .relaxed)
            return
        }
        sendResched(t, lpIdentity: lp.identity, info: reason.rawValue | UInt64(priority) << 8 | (sawDesignated ? 1 << 32 : 0),
                    tookBit: tookBit)
    }

    /// The send itself, latch held. A refusal leaves the request owed.
    /// Release the latch, THEN publish the debt: resendOwed, finding the
    /// latch held, counts the request as on its way. With the debt published
    /// first, a resendOwed between the two stores (another CPU's tick, or
    /// ours: interrupts may be on here) would clear owed, find our refused
    /// latch, and the request would be lost. In this order a holder that
    /// resendOwed finds is a real sender, which sets owed again if refused.
    private static func sendResched(_ t: Bsd4CPU, lpIdentity: UInt, info: UInt64, tookBit: Bool) {
        KTrace.record(.bsd4Resched, UInt64(t.cpu), info & 0xFF)
        if !refusedForTest() && IPIQueue.send(to: t.cpu, { id, info in Bsd4Requests.receiveResched(UInt(id), info) },
                                              UInt64(lpIdentity), info, mode: .nowait) != nil { return }
        dropped(t, restoreBit: tookBit)
        t.reschedPending.store(false, ordering: .releasing)
        refusalGap()
        if !BugKnobs.bsd4RefuseLost { t.reschedOwed.store(true, ordering: .sequentiallyConsistent) }   // BUG knob: lost
    }

    /// A refused nowait send (ring over 2/3 full): the target never hears of
    /// it, so give back the rdyprocmask bit this sender cleared (only if it
    /// cleared a set bit: `restoreBit`), or no sweep would offer that CPU
    /// work again until its helper ran. A sender that took no bit (the rotor
    /// fallback, a resend, a poke that found the bit clear) gives nothing
    /// back: setting it would mark ready a CPU whose helper never said so,
    /// and clearing `offered` would hide a second offer on someone else's
    /// live one from A7's check. The request itself stays owed (and so does
    /// that of any sender that coalesced into it while the latch was held):
    /// resendOwed sends it at the next tick.
    private static func dropped(_ t: Bsd4CPU, restoreBit: Bool) {
        t.requestsDropped.wrappingAdd(1, ordering: .relaxed)
        guard restoreBit else { return }
        t.offered.store(false, ordering: .releasing)          // A7: before the bit is set again
        Bsd4Scheduler.rdyprocmask.bitwiseOr(CPUMask.bit(t.cpu), ordering: .sequentiallyConsistent)
    }

    /// `tookBit`: as for resched. The latch is released before the debt is
    /// published (see sendResched).
    static func wakeHelper(_ target: Int, tookBit: Bool = false) {
        let t = Bsd4Scheduler.cpus[target]
        if t.wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        if !refusedForTest() && IPIQueue.send(to: target, { _, _ in Bsd4Requests.receiveWake() }, mode: .nowait) != nil {
            return
        }
        dropped(t, restoreBit: tookBit)
        t.wakePending.store(false, ordering: .releasing)
        refusalGap()
        if !BugKnobs.bsd4RefuseLost { t.wakeOwed.store(true, ordering: .sequentiallyConsistent) }     // BUG knob: lost
    }

    /// From every CPU's tick: send again what a refusal left owed. The owed
    /// request carries no lwp (it may stand for several coalesced senders);
    /// its handler does what any request does, a user reschedule and a helper
    /// wake-up.
    static func resendOwed() {
        for t in Bsd4Scheduler.cpus {
            if t.reschedOwed.load(ordering: .relaxed) && t.reschedOwed.exchange(false, ordering: .acquiringAndReleasing) {
                t.requestsResent.wrappingAdd(1, ordering: .relaxed)
                if t.reschedPending.exchange(true, ordering: .acquiringAndReleasing) {
                    t.requestsCoalesced.wrappingAdd(1, ordering: .relaxed)   // one is on its way
                } else {
                    sendResched(t, lpIdentity: 0, info: Reason.owed.rawValue, tookBit: false)
                }
            }
            if t.wakeOwed.load(ordering: .relaxed) && t.wakeOwed.exchange(false, ordering: .acquiringAndReleasing) {
                t.requestsResent.wrappingAdd(1, ordering: .relaxed)
                wakeHelper(t.cpu)
            }
        }
    }

    /// Test hook (bsd4-refuse, `bsd4.refuse_every=N`): every Nth request send
    /// is refused as a full ring would refuse it. 0: off.
    nonisolated(unsafe) static var refuseEvery: UInt64 = 0
    private static let sends = Atomic<UInt64>(0)

    /// Test hook (bsd4-refuse, `bsd4.refuse_gap_us`): TSC cycles between a
    /// refused sender's two stores (latch released, debt published), so the
    /// other CPUs' ticks run resendOwed inside that gap. In the order above
    /// nothing is lost there; published the other way round the resend would
    /// be swallowed. 0: off.
    nonisolated(unsafe) static var refuseGapCycles: UInt64 = 0
    private static func refusalGap() {
        if refuseGapCycles != 0 { TSC.spin(cycles: refuseGapCycles) }
    }
    private static func refusedForTest() -> Bool {
        let n = refuseEvery
        guard n != 0 else { return false }
        return (sends.wrappingAdd(1, ordering: .relaxed).newValue) % n == 0
    }

    /// Handler: counts, judges the sender's hint against our own fields, sets
    /// need_user_resched and wakes our helper.
    static func receiveResched(_ lpIdentity: UInt, _ info: UInt64) {
        let c = Bsd4Scheduler.mine
        c.reschedPending.store(false, ordering: .releasing)      // later requests send again
        c.requestsReceived.wrappingAdd(1, ordering: .relaxed)
        let stale: Bool
        if info & 0xFF == Reason.owed.rawValue {
            stale = false
        } else if info & 0xFF == Reason.running.rawValue {
            if info >> 32 & 1 != 0 { c.requestsSawDesignated.wrappingAdd(1, ordering: .relaxed) }
            stale = info >> 32 & 1 != 0 && c.uschedcp != lpIdentity
        } else {
            stale = Bsd4.queueOf(c.upri) <= Bsd4.queueOf(Int(info >> 8 & 0xFFFF_FF))
        }
        if stale { c.requestsSpurious.wrappingAdd(1, ordering: .relaxed) }
        c.userResched.store(true, ordering: .relaxed)
        Bsd4Helper.wakeLocal()
    }

    static func receiveWake() {
        let c = Bsd4Scheduler.mine
        c.wakePending.store(false, ordering: .releasing)
        Bsd4Helper.wakeLocal()
    }
}
