// resetpriority's store, move and poke decision, under bsd4_spin
// (docs/bsd4-scheduler.md, "Priority"). The kernel glue
// (Bsd4Scheduler.storePriority) and the host simulator both call it; the
// caller applies it: store ownUpri in its own field, and after dropping the
// lock clear a remote target's rdyprocmask bit and send it the request
// (`requestBetter`: the reason), or raise its own request for a local poke.

struct Bsd4ResetDecision: Equatable {
    var reset: Bsd4Reset
    var poke: Bsd4Poke
    /// This CPU's new upri: the lwp is this CPU's own designated lwp, so its
    /// upri follows it (A1: another CPU's upri is never written from here;
    /// the 2008 code did). nil: leave upri alone.
    var ownUpri: Int?
    /// A queued lwp was moved to another queue (checkpri 1): the seed-000
    /// path. A remote poke then says "better" (judged against the target's
    /// upri on arrival), otherwise "running" (judged against its uschedcp).
    var movedQueued: Bool
}

extension Bsd4RunQueues {
    /// Stores `new` in lp (moving it between lists when it is queued and its
    /// queue changed) and decides the poke. `target` is the CPU lp's thread is
    /// on; `targetDesignatesLwp` whether the target's uschedcp is lp (read as a
    /// hint unless the target is this CPU); `targetReady` its rdyprocmask bit;
    /// `targetUpri` its upri (a hint, A4). When the target is this CPU and lp is
    /// its designated lwp, the poke compares against the updated upri.
    mutating func resetpriority(_ lp: Node, to new: Bsd4Priority, target: Int, thisCPU: Int,
                                targetDesignatesLwp: Bool, targetReady: Bool, targetUpri: Int) -> Bsd4ResetDecision {
        let reset = reposition(lp, to: new)
        let ownUpri: Int? = target == thisCPU && targetDesignatesLwp ? new.priority : nil
        let poke = Bsd4Poke.decide(reset, newPriority: new.priority, target: target, thisCPU: thisCPU,
                                   targetReady: targetReady, targetUpri: ownUpri ?? targetUpri)
        return Bsd4ResetDecision(reset: reset, poke: poke, ownUpri: ownUpri,
                                 movedQueued: reset.queueChanged && reset.checkpri == 1)
    }
}
