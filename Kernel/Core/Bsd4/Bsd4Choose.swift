// Choosing: which queued lwp a CPU takes (chooseproc), which CPU a newly queued
// lwp is offered to (setrunqueue), how that CPU is told, and the small decisions
// of acquire_curproc and the helper thread (docs/bsd4-scheduler.md, "Entry
// points"). Everything is a function of its inputs: the per-CPU fields, the two
// CPU masks and the rotor belong to the caller, which passes what it read.
// Remote per-CPU fields are hints (the rule of the doc; A4): these functions only
// compare them, never assert on them.

/// One CPU's scheduler fields. Only that CPU writes them (A1); other CPUs may
/// read them as hints.
struct Bsd4PerCPU: Equatable {
    /// The designated lwp's identity (uschedcp), or nil.
    var uschedcp: Int?
    /// Its priority as of its installation or last acquire; PRIBASE_NULL (512)
    /// when there is none.
    var upri = Bsd4.priBaseNull
    /// Scheduler ticks since the last round-robin reschedule.
    var rrcount = 0

    init(uschedcp: Int? = nil, upri: Int = Bsd4.priBaseNull, rrcount: Int = 0) {
        self.uschedcp = uschedcp
        self.upri = upri
        self.rrcount = rrcount
    }
}

/// chooseproc's answer.
enum Bsd4Choice<Node: AnyObject> {
    /// Nothing queued may run on this CPU.
    case nothing
    /// `current` is within one queue of the best candidate: keep it.
    case keepCurrent
    /// This lwp was taken off its queue (ONRUNQ cleared) for this CPU.
    case take(Node)

    var lwp: Node? {
        if case .take(let lp) = self { return lp }
        return nil
    }
}

extension Bsd4RunQueues {
    /// chooseproc(current), under bsd4_spin, on CPU `cpu`:
    /// 1. the best queued lwp allowed on `cpu` (`best(allowedOn:)`; see its cost);
    /// 2. hysteresis: when `current` is given and current.priority < candidate's
    ///    priority + PPQ, keep `current` (one queue's worth: a candidate must be at
    ///    least a whole queue better to displace it, so two lwps of nearly equal
    ///    priority do not bounce);
    /// 3. affinity nudge: when the candidate last ran on another CPU and the lwp
    ///    behind it in the same list last ran here, take that one instead. Unlike
    ///    DragonFly we also require that lwp to be allowed here: its mask may have
    ///    changed since it last ran here.
    /// The chosen lwp is removed from its list.
    mutating func chooseproc(cpu: Int, current: Node?) -> Bsd4Choice<Node> {
        guard var lp = best(allowedOn: cpu) else { return .nothing }
        if let cur = current, cur.priority < lp.priority + Bsd4.ppq { return .keepCurrent }
        if lp.lastCPU != cpu, let next = lp.rqNext, next.lastCPU == cpu, next.cpuMask.contains(cpu) {
            lp = next
        }
        remove(lp)
        return .take(lp)
    }
}

/// Which CPU setrunqueue offers a newly queued lwp to, and how it found it.
struct Bsd4CPUPick: Equatable {
    enum Pass: UInt8, Equatable {
        /// First sweep: a ready CPU with no designated lwp.
        case free
        /// Second sweep: a ready CPU whose designated lwp is in a worse queue.
        case busy
        /// Neither: the rotor CPU, not checked against any mask.
        case rotor
    }
    var cpu: Int
    var pass: Pass

    /// setrunqueue's CPU choice. `scancpu` is the rotor after setrunqueue's
    /// increment; `upri(c)` reads CPU c's upri (a hint). Comparisons are by queue,
    /// `priority & ~PPQMASK`, never by class alone.
    /// 1. Starting at (scancpu & 0xFFFF) % ncpus and wrapping, over CPUs in
    ///    ~curprocmask & rdyprocmask & lwpMask (and < ncpus): the first whose upri
    ///    queue is >= the lwp's (not better than the lwp).
    /// 2. Continuing from the last CPU the first sweep looked at, over
    ///    curprocmask & rdyprocmask & lwpMask: the first whose upri queue is > the
    ///    lwp's (strictly worse).
    /// 3. Otherwise the rotor CPU, (scancpu & 0xFFFF) % ncpus: other CPUs will pick
    ///    the lwp up as they release theirs or become ready.
    static func choose(lwpPriority: Int, lwpMask: CPUMask, scancpu: Int, ncpus: Int,
                       curprocmask: CPUMask, rdyprocmask: CPUMask, upri: (Int) -> Int) -> Bsd4CPUPick {
        precondition(ncpus >= 1 && ncpus <= CPUMask.capacity, "bsd4: ncpus out of range")
        let active = CPUMask.first(ncpus)
        let lpQueue = Bsd4.queueOf(lwpPriority)
        let rotor = (scancpu & 0xFFFF) % ncpus
        var cpu = rotor

        var free = rdyprocmask.subtracting(curprocmask).intersection(lwpMask).intersection(active)
        while let c = free.next(atOrAfter: cpu) {
            cpu = c
            if Bsd4.queueOf(upri(c)) >= lpQueue { return Bsd4CPUPick(cpu: c, pass: .free) }
            free.remove(c)
        }
        var busy = curprocmask.intersection(rdyprocmask).intersection(lwpMask).intersection(active)
        while let c = busy.next(atOrAfter: cpu) {
            cpu = c
            if Bsd4.queueOf(upri(c)) > lpQueue { return Bsd4CPUPick(cpu: c, pass: .busy) }
            busy.remove(c)
        }
        return Bsd4CPUPick(cpu: rotor, pass: .rotor)
    }
}

/// How setrunqueue tells the CPU it picked.
enum Bsd4Delivery: Equatable {
    /// This CPU, and its upri queue is not worse than the lwp's: nothing.
    case nothing
    /// This CPU, worse upri queue, no uschedcp: wake this CPU's helper.
    case localWakeHelper
    /// This CPU, worse upri queue, has a uschedcp: need_user_resched().
    case localResched
    /// Another CPU whose upri queue is worse: clear its rdyprocmask bit
    /// (atomically, after dropping bsd4_spin) and send need_user_resched_remote.
    case remoteResched(cpu: Int)
    /// Another CPU, upri queue not worse: clear its rdyprocmask bit and wake its
    /// helper (which will take the lwp if it is free, or chain the work on).
    case remoteWakeHelper(cpu: Int)

    /// The other CPU told, whose rdyprocmask bit setrunqueue clears before it
    /// drops bsd4_spin (A7), or nil.
    var remoteCPU: Int? {
        switch self {
        case .remoteResched(let cpu), .remoteWakeHelper(let cpu): return cpu
        default: return nil
        }
    }

    /// `targetUpri` is the picked CPU's upri (a hint when remote);
    /// `thisHasUschedcp` is read only when the target is this CPU (its own field).
    static func decide(target: Int, thisCPU: Int, targetUpri: Int, thisHasUschedcp: Bool,
                       lwpPriority: Int) -> Bsd4Delivery {
        let worse = Bsd4.queueOf(targetUpri) > Bsd4.queueOf(lwpPriority)
        if target == thisCPU {
            guard worse else { return .nothing }
            return thisHasUschedcp ? .localResched : .localWakeHelper
        }
        return worse ? .remoteResched(cpu: target) : .remoteWakeHelper(cpu: target)
    }
}

/// One pass of acquire_curproc's loop on this CPU, for lwp `lp`.
enum Bsd4AcquireStep: Equatable {
    /// lp is already this CPU's uschedcp: refresh upri and return to user mode.
    case alreadyCurrent
    /// No uschedcp: take it (and set this CPU's curprocmask bit, A3).
    case take
    /// The uschedcp's upri is numerically greater (worse) than lp's full
    /// priority: lp displaces it; the old lwp goes back to the run queue.
    case steal
    /// Otherwise: setrunqueue(lp) and switch away.
    case queue

    static func decide(lpIsUschedcp: Bool, hasUschedcp: Bool, upri: Int, lwpPriority: Int) -> Bsd4AcquireStep {
        if lpIsUschedcp { return .alreadyCurrent }
        if !hasUschedcp { return .take }
        return upri > lwpPriority ? .steal : .queue
    }
}

/// One pass of the per-CPU helper thread, after it set its rdyprocmask bit,
/// cleared the user-resched request and rrcount.
enum Bsd4HelperStep: Equatable {
    /// No uschedcp: install whatever chooseproc(nil) returns.
    case fill
    /// A uschedcp and a non-empty run queue: install chooseproc(uschedcp)'s
    /// result (the hysteresis applies); when it returns none, chain.
    case challenge
    /// A uschedcp and nothing queued: sleep.
    case idle

    static func decide(hasUschedcp: Bool, runqcount: Int) -> Bsd4HelperStep {
        if !hasUschedcp { return .fill }
        return runqcount > 0 ? .challenge : .idle
    }

    /// The helper's chaining: work it could not take is handed to the first CPU
    /// that is ready and has no designated lwp (~curprocmask & rdyprocmask), whose
    /// rdyprocmask bit the caller clears under bsd4_spin, before waking its
    /// helper (A7). nil: none.
    static func chainTarget(curprocmask: CPUMask, rdyprocmask: CPUMask, ncpus: Int) -> Int? {
        rdyprocmask.subtracting(curprocmask).intersection(CPUMask.first(ncpus)).first
    }
}
