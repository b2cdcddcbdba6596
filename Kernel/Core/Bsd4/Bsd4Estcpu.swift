// estcpu: what the scheduler clock adds, what the recalculation takes away, and
// what fork hands down (docs/bsd4-scheduler.md, "estcpu"). Pure functions over a
// small per-lwp state; the caller stores the result and, when a new priority
// comes back, runs resetpriority's store/move/poke with it (Bsd4Priority.swift).

/// The per-lwp fields estcpu accounting uses. Times are in scheduler ticks
/// (ESTCPUFREQ = 50 Hz), sleep in whole seconds.
struct Bsd4EstcpuState: Equatable {
    /// Recent CPU use, 0...ESTCPUMAX.
    var estcpu = 0
    /// How batch-like the lwp has been, 0...BATCHMAX.
    var batch = 0
    /// Scheduler ticks this lwp ran in the current interval (cpticks).
    var cpticks = 0
    /// The scheduler tick the current interval started at (DragonFly's
    /// lwp_cpbase, there in sysclock units; here in ticks).
    var cpbase = 0
    /// Whole seconds asleep, counted by the once-a-second scan (lwp_slptime);
    /// the sleep path sets it back to 0 on wake-up.
    var slptime = 0

    init(estcpu: Int = 0, batch: Int = 0, cpticks: Int = 0, cpbase: Int = 0, slptime: Int = 0) {
        self.estcpu = estcpu
        self.batch = batch
        self.cpticks = cpticks
        self.cpbase = cpbase
        self.slptime = slptime
    }
}

/// One scheduler-clock tick for the lwp a CPU is running.
struct Bsd4ClockTick: Equatable {
    /// The lwp's estcpu after ESTCPULIM(estcpu + 328).
    var estcpu: Int
    /// The CPU's round-robin counter after the tick.
    var rrcount: Int
    /// rrcount reached rrinterval: need_user_resched() (round robin).
    var resched: Bool
}

/// What recalculate did.
enum Bsd4RecalcKind: Equatable {
    /// No scheduler tick since the last recalculation of this lwp, or an interval
    /// of 0 ticks: nothing changed (the state may only have its cpbase re-based).
    case unchanged
    /// The lwp slept more than a second: estcpu halved, batch lowered by 50.
    case sleptLong
    /// The sample/batch/decay formula ran.
    case sampled
}

struct Bsd4Recalculation: Equatable {
    var state: Bsd4EstcpuState
    var kind: Bsd4RecalcKind
    /// The priority resetpriority must store, or nil when it must not run.
    /// In the slept-long branch it is computed with the batch value from before
    /// the decrement: DragonFly runs resetpriority between the two steps.
    var priority: Bsd4Priority?
}

enum Bsd4Estcpu {
    /// schedulerclock's work for the running lwp: ++rrcount, and at rrinterval
    /// rrcount = 0 and a user reschedule; estcpu = ESTCPULIM(estcpu + 328).
    /// (The caller also counts cpticks and then runs resetpriority.)
    static func clockTick(estcpu: Int, rrcount: Int, rrinterval: Int = Bsd4.rrInterval) -> Bsd4ClockTick {
        let next = rrcount + 1
        let resched = next >= rrinterval
        return Bsd4ClockTick(estcpu: Bsd4.estcpuLim(estcpu + Bsd4.estcpuIncrement),
                             rrcount: resched ? 0 : next, resched: resched)
    }

    /// recalculate(lp) at scheduler tick `now`, with `runqcount` lwps queued and
    /// `ncpus` CPUs. `cls` and `niceOrRtprio` are for the priority that follows.
    ///
    /// - Returns at once (`unchanged`) when no scheduler tick passed since the last
    ///   recalculation (now == cpbase) or the interval is not positive. A negative
    ///   interval (the lwp's base ahead of this CPU's clock, possible in DragonFly
    ///   after a migration) re-bases cpbase to now, as DragonFly does.
    /// - slptime > 1 (slept more than a second): estcpu >>= 1; resetpriority (with
    ///   the current batch); then batch -= ESTCPUFREQ (50), not below 0. The
    ///   interval restarts (cpbase = now, cpticks = 0).
    /// - Otherwise, with ttlticks = now - cpbase:
    ///   sample = cpticks * ESTCPUMAX * (runqcount + ncpus) / (ncpus * ttlticks);
    ///   batch += ttlticks when sample > ESTCPUMAX / 2, else -= ttlticks, kept in
    ///   0...BATCHMAX; estcpu = ESTCPULIM((estcpu * decay + sample) / (decay + 1));
    ///   the interval restarts; resetpriority.
    /// `decay` is clamped into 1...1024 (DragonFly does the same to its tunable).
    ///
    /// The early return comes first, as docs/bsd4-scheduler.md lists it, so it
    /// also guards the slept-long branch; DragonFly tests slptime first. The two
    /// orders differ only when an lwp still marked as having slept more than a
    /// second is recalculated twice within one scheduler tick: here its estcpu
    /// is halved once.
    static func recalculate(_ s: Bsd4EstcpuState, now: Int, runqcount: Int, ncpus: Int,
                            cls: Bsd4Class, niceOrRtprio: Int,
                            decay: Int = Bsd4.defaultDecay) -> Bsd4Recalculation {
        var n = s
        let ttlticks = now - s.cpbase
        if ttlticks <= 0 {
            if ttlticks < 0 { n.cpbase = now }
            return Bsd4Recalculation(state: n, kind: .unchanged, priority: nil)
        }
        if s.slptime > 1 {
            n.estcpu = s.estcpu >> 1
            let pri = Bsd4Priority.compute(cls, niceOrRtprio: niceOrRtprio, estcpu: n.estcpu, batch: n.batch)
            n.cpbase = now
            n.cpticks = 0
            n.batch = max(0, n.batch - Bsd4.estcpuFreq)
            return Bsd4Recalculation(state: n, kind: .sleptLong, priority: pri)
        }
        let cpus = max(1, ncpus)
        let sample = s.cpticks * Bsd4.estcpuMax * (runqcount + cpus) / (cpus * ttlticks)
        if sample > Bsd4.estcpuMax / 2 {
            n.batch = min(Bsd4.batchMax, s.batch + ttlticks)
        } else {
            n.batch = max(0, s.batch - ttlticks)
        }
        let d = min(1024, max(1, decay))
        n.estcpu = Bsd4.estcpuLim((s.estcpu * d + sample) / (d + 1))
        n.cpbase = now
        n.cpticks = 0
        let pri = Bsd4Priority.compute(cls, niceOrRtprio: niceOrRtprio, estcpu: n.estcpu, batch: n.batch)
        return Bsd4Recalculation(state: n, kind: .sampled, priority: pri)
    }

    /// fork: the child starts 4 queues' worth of estcpu above its parent,
    /// ESTCPULIM(parent + 4 * ESTCPUPPQ), half-way batch-like (BATCHMAX / 2); the
    /// parent pays ESTCPULIM(parent + ESTCPUPPQ / 16) (a fork bomb slows itself).
    /// Returns (parent's new estcpu, child's estcpu, child's batch).
    static func fork(parentEstcpu: Int) -> (parentEstcpu: Int, childEstcpu: Int, childBatch: Int) {
        (Bsd4.estcpuLim(parentEstcpu + Bsd4.estcpuPPQ / 16),
         Bsd4.estcpuLim(parentEstcpu + 4 * Bsd4.estcpuPPQ),
         Bsd4.batchMax / 2)
    }

    /// exit: DragonFly's bsd4_exiting changes nothing (4.4BSD's schedexit charged
    /// the child's estcpu to the parent; bsd4 does not), so the parent keeps its
    /// estcpu. What exit does need is A5: the lwp must be neither queued nor any
    /// CPU's uschedcp when it goes; the caller releases it first. This returns
    /// whether the lwp may go.
    static func mayExit(onRunQ: Bool, designated: Bool) -> Bool {
        !onRunQ && !designated
    }
}
