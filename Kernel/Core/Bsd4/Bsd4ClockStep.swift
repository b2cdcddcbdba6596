// The scheduler clock's and the once-a-second scan's decisions for one lwp
// (docs/bsd4-scheduler.md, "estcpu"). The kernel glue (Bsd4Clock) and the host
// simulator both call these and apply the result: store the state and the
// rrcount, raise the user-resched request, run resetpriority with the priority.

/// schedulerclock(lp) on the CPU that runs lp.
struct Bsd4SchedulerClock: Equatable {
    /// estcpu += 328 (clamped), cpticks + 1.
    var state: Bsd4EstcpuState
    /// The CPU's rrcount after the tick.
    var rrcount: Int
    /// Round robin: rrcount reached rrinterval; need_user_resched() (an AST:
    /// the lwp goes through acquire_curproc at its return to user).
    var resched: Bool
    /// resetpriority's new priority for the lwp.
    var priority: Bsd4Priority

    static func tick(_ s: Bsd4EstcpuState, rrcount: Int, cls: Bsd4Class, niceOrRtprio: Int) -> Bsd4SchedulerClock {
        let t = Bsd4Estcpu.clockTick(estcpu: s.estcpu, rrcount: rrcount)
        var n = s
        n.estcpu = t.estcpu
        n.cpticks += 1
        return Bsd4SchedulerClock(state: n, rrcount: t.rrcount, resched: t.resched,
                                  priority: Bsd4Priority.compute(cls, niceOrRtprio: niceOrRtprio,
                                                                 estcpu: n.estcpu, batch: n.batch))
    }
}

/// The recalculation scan's work on one lwp (DragonFly's schedcpu_stats and
/// schedcpu_resource, run from a thread once a second).
struct Bsd4ScanStep: Equatable {
    var state: Bsd4EstcpuState
    /// nil: the lwp has slept more than a second and is left to its wake-up
    /// (the slept-long branch runs there).
    var recalculation: Bsd4Recalculation?

    /// `secondTick`: the once-a-second pass, which counts a second of slptime
    /// for a sleeping lwp first. Every lwp that slept at most a second is
    /// recalculated, running ones included: for a CPU hog this and its ASTs
    /// are the only recalculations.
    static func decide(_ s: Bsd4EstcpuState, asleep: Bool, secondTick: Bool, now: Int, runqcount: Int, ncpus: Int,
                       cls: Bsd4Class, niceOrRtprio: Int, decay: Int = Bsd4.defaultDecay) -> Bsd4ScanStep {
        var n = s
        if secondTick && asleep { n.slptime += 1 }
        guard n.slptime <= 1 else { return Bsd4ScanStep(state: n, recalculation: nil) }
        let r = Bsd4Estcpu.recalculate(n, now: now, runqcount: runqcount, ncpus: ncpus, cls: cls,
                                       niceOrRtprio: niceOrRtprio, decay: decay)
        return Bsd4ScanStep(state: r.state, recalculation: r)
    }
}
