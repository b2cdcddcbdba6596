// setrunqueue's whole decision, once the lwp is on its queue and the rotor has
// advanced (docs/bsd4-scheduler.md, "Entry points"): which CPU to tell, how, and
// whose rdyprocmask bit to clear before bsd4_spin is dropped (A7). The kernel
// glue (Bsd4Scheduler.setrunqueueLocked) and the host simulator both call it,
// then apply the result their own way: the kernel with atomics and IPI-queue
// sends after the unlock, the simulator on its arrays.

struct Bsd4SetrunqueueDecision: Equatable {
    /// The two sweeps' answer (or the rotor).
    var pick: Bsd4CPUPick
    /// The CPU told: the pick, or this CPU when the rotor named a CPU that is
    /// not online (the rotor is checked against no mask).
    var target: Int
    var delivery: Bsd4Delivery
    /// The other CPU told, whose rdyprocmask bit the caller clears while it
    /// still holds bsd4_spin (A7: no second setrunqueue or chain can pick it
    /// on the strength of the same readiness); nil when none.
    var claim: Int?
    /// `claim` was found by a sweep, i.e. because its bit was set (an offer of
    /// that readiness, counted by A7's check); false for the rotor fallback.
    var swept: Bool

    /// `scancpu` is the rotor after setrunqueue's increment; `online` the CPUs
    /// that run; `upri(c)` reads CPU c's upri (a hint for another CPU, A4);
    /// `thisHasUschedcp` is this CPU's own field.
    static func decide(lwpPriority: Int, lwpMask: CPUMask, scancpu: Int, ncpus: Int, online: CPUMask,
                       thisCPU: Int, thisHasUschedcp: Bool, curprocmask: CPUMask, rdyprocmask: CPUMask,
                       upri: (Int) -> Int) -> Bsd4SetrunqueueDecision {
        let pick = Bsd4CPUPick.choose(lwpPriority: lwpPriority, lwpMask: lwpMask, scancpu: scancpu, ncpus: ncpus,
                                      curprocmask: curprocmask, rdyprocmask: rdyprocmask, upri: upri)
        let target = online.contains(pick.cpu) ? pick.cpu : thisCPU
        let delivery = Bsd4Delivery.decide(target: target, thisCPU: thisCPU, targetUpri: upri(target),
                                           thisHasUschedcp: thisHasUschedcp, lwpPriority: lwpPriority)
        return Bsd4SetrunqueueDecision(pick: pick, target: target, delivery: delivery,
                                       claim: delivery.remoteCPU, swept: pick.pass != .rotor)
    }
}
