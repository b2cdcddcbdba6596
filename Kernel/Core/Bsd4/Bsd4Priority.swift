// resetpriority, split into pure steps (docs/bsd4-scheduler.md, "Priority").
//
// DragonFly's bsd4_resetpriority does three things under bsd4_spin: compute the
// new priority, store it (moving the lwp to another queue when it is queued and
// its queue changed), and maybe poke the CPU its thread is on. Here each step is
// a pure function returning a value; the queue move is Bsd4RunQueues.reposition
// and the caller (kernel glue or simulator) carries out the poke. Nothing here
// reads per-CPU state: the poke decision gets the target's `upri` as an input,
// and that value is a hint (A4: no assertion may rest on it).

/// A computed priority: the full value (class base + 0..127), the queue index
/// inside the class (0..31) and the class, which is the queue type.
struct Bsd4Priority: Equatable {
    var priority: Int
    var rqIndex: Int
    var rqType: Bsd4Class

    /// The priority computation of resetpriority.
    ///
    /// Normal class (`niceOrRtprio` is nice, -20...20):
    /// 1. e = estcpu * (batch + BATCHMAX) / (2 * BATCHMAX)  (50..100 % of estcpu)
    /// 2. p = (nice + 20) * PPQ / NICEPPQ + e * PPQ / ESTCPUPPQ
    /// 3. p = p * MAXPRI / (PRIO_RANGE * PPQ / NICEPPQ + ESTCPUMAX * PPQ / ESTCPUPPQ)
    ///    = p * 128 / 210
    /// 4. priority = 128 + (p & 127)
    /// Realtime, idle and thread (`niceOrRtprio` is rtprio): base + (rtprio & 127).
    /// rqindex = (priority & 127) / PPQ in every class.
    ///
    /// No clamping happens here: estcpu above ESTCPUMAX makes step 4 wrap (that is
    /// why every caller keeps estcpu within ESTCPULIM). Integer division truncates
    /// as C's does; every operand is >= 0 for nice >= -20 and estcpu, batch >= 0.
    static func compute(_ cls: Bsd4Class, niceOrRtprio: Int, estcpu: Int, batch: Int) -> Bsd4Priority {
        let priority: Int
        switch cls {
        case .normal:
            let e = estcpu * (batch + Bsd4.batchMax) / (Bsd4.batchMax * 2)
            var p = (niceOrRtprio - Bsd4.prioMin) * Bsd4.ppq / Bsd4.nicePPQ
            p += e * Bsd4.ppq / Bsd4.estcpuPPQ
            p = p * Bsd4.maxPri / (Bsd4.prioRange * Bsd4.ppq / Bsd4.nicePPQ + Bsd4.estcpuMax * Bsd4.ppq / Bsd4.estcpuPPQ)
            priority = Bsd4.priBaseNormal + (p & Bsd4.priMask)
        case .realtime, .idle, .thread:
            priority = cls.base + (niceOrRtprio & Bsd4.priMask)
        }
        return Bsd4Priority(priority: priority, rqIndex: (priority & Bsd4.priMask) / Bsd4.ppq, rqType: cls)
    }

    /// resetpriority acts only when the queue changed: (old ^ new) & ~PPQMASK != 0.
    /// The class is part of the value, so a class change is a queue change too.
    static func queueChanged(old: Int, new: Int) -> Bool {
        (old ^ new) & ~Bsd4.ppqMask != 0
    }
}

/// What storing a new priority did (Bsd4RunQueues.reposition returns it).
struct Bsd4Reset: Equatable {
    /// The queue changed ((old ^ new) & ~PPQMASK != 0). When false the new
    /// priority was stored and nothing else happens: no move, no poke.
    var queueChanged: Bool
    /// DragonFly's checkpri: 1 when the lwp was queued and has been moved to its
    /// new queue; 0 when it was not queued (it is running, or in the kernel) and
    /// only its fields were updated. Meaningful only when `queueChanged`.
    var checkpri: Int
}

/// The poke that may follow a queue change (resetpriority's last step).
enum Bsd4Poke: Equatable {
    /// Nothing to tell anyone.
    case none
    /// The target is this CPU: need_user_resched().
    case local
    /// The target is another CPU: after dropping bsd4_spin, clear its
    /// rdyprocmask bit (atomically) and send it need_user_resched_remote through
    /// the IPI queue (which also wakes its helper).
    case remote(cpu: Int)

    /// Decides the poke. `target` is the CPU the lwp's thread is on; `targetReady`
    /// its rdyprocmask bit; `targetUpri` its `upri` (a hint: possibly stale, never
    /// asserted on, A4). The target is poked when it is ready and either the lwp
    /// is not queued (checkpri 0: the priority of a running lwp changed queue,
    /// which is how a hog that lost priority gets demoted) or the target's `upri`
    /// is in a worse class than the new priority:
    /// (upri & ~PRIMASK) > (priority & ~PRIMASK).
    static func decide(_ reset: Bsd4Reset, newPriority: Int, target: Int, thisCPU: Int,
                       targetReady: Bool, targetUpri: Int) -> Bsd4Poke {
        guard reset.queueChanged, targetReady else { return .none }
        guard reset.checkpri == 0 || Bsd4.classOf(targetUpri) > Bsd4.classOf(newPriority) else { return .none }
        return target == thisCPU ? .local : .remote(cpu: target)
    }
}
