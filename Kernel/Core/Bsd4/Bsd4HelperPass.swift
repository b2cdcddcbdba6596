// One pass of a CPU's helper thread, under bsd4_spin (DragonFly's sched_thread
// body; docs/bsd4-scheduler.md, "Entry points"). Before the lock the pass has
// set its CPU's rdyprocmask bit, cleared its user-resched request and its
// rrcount. The kernel glue (Bsd4Helper.pass) and the host simulator both call
// this and apply the result: install the lwp here (Bsd4Designation.install),
// or clear the chain target's rdyprocmask bit before dropping the lock (A7)
// and wake its helper after.

struct Bsd4HelperPass<Node: Bsd4Node> {
    var step: Bsd4HelperStep
    /// Taken off its queue for this CPU: install it (a challenger displaces
    /// the current uschedcp, which requeues itself at its next boundary).
    var install: Node?
    /// Work this CPU could not take (the challenge kept the current lwp or
    /// found nothing allowed here) goes on to this free ready CPU; nil: none.
    var chain: Int?
}

extension Bsd4RunQueues {
    /// The pass on CPU `cpu`, whose designated lwp is `current` (nil: none).
    /// `curprocmask` and `rdyprocmask` as read under the lock (the latter with
    /// this CPU's bit already set).
    mutating func helperPass(cpu: Int, current: Node?, curprocmask: CPUMask, rdyprocmask: CPUMask,
                             ncpus: Int) -> Bsd4HelperPass<Node> {
        let step = Bsd4HelperStep.decide(hasUschedcp: current != nil, runqcount: runqcount)
        switch step {
        case .fill:
            return Bsd4HelperPass(step: step, install: chooseproc(cpu: cpu, current: nil).lwp, chain: nil)
        case .challenge:
            if let lp = chooseproc(cpu: cpu, current: current).lwp {
                return Bsd4HelperPass(step: step, install: lp, chain: nil)
            }
            let t = Bsd4HelperStep.chainTarget(curprocmask: curprocmask, rdyprocmask: rdyprocmask, ncpus: ncpus)
            return Bsd4HelperPass(step: step, install: nil, chain: t == cpu ? nil : t)
        case .idle:
            return Bsd4HelperPass(step: step, install: nil, chain: nil)
        }
    }
}
