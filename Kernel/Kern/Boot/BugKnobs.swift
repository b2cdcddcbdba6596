// Negative controls: boot-time knobs (`bug.NAME=1` on the kernel command line)
// that put a historical or a found bug back on purpose, so that a torture test
// can prove it catches it. All of them live here so that they are easy to find
// and impossible to mistake for tuning. Each names the suite that must then
// FAIL (or end in the named panic) and the docs/ page that tells the story.
// Read once at boot, before any AP starts; read-only afterwards.

enum BugKnobs {
    /// ipiq-wakeup (tick=0): the target releases its poll latch and leaves
    /// without the fence and re-check, so a sender that saw the latch still set
    /// strands its message (D5). docs/ipi-queues.md.
    nonisolated(unsafe) static var ipiqNoRecheck = false
    /// Observation, not a control: the re-check without the MFENCE before it.
    /// Needs the host's store buffer at exactly that moment (docs/ipi-queues.md).
    nonisolated(unsafe) static var ipiqNoFence = false
    /// ipiq-torture: the consumer copies a slot before it loads windex (seed 003
    /// in program order); the slot's sequence stamp catches it (D2, named panic).
    nonisolated(unsafe) static var ipiqEarlyCopy = false
    /// ipiq-flood: the nearly-full wait does not drain its own rings; two CPUs
    /// flooding each other with interrupts off deadlock (the watchdog reports it).
    nonisolated(unsafe) static var ipiqNoDrain = false
    /// wait-wakeup (tick=0): a halting wait announces itself and halts without
    /// re-checking its condition, so a waker that stored the condition just
    /// before saw no waiter and sent no IPI: a lost wake-up (W1).
    /// docs/benchmarks.md, "Halting waits".
    nonisolated(unsafe) static var waitNoRecheck = false
    /// wait-migrate (tick=0): a halting wait is not pinned to its CPU, so a
    /// preemption on the HLT's way out can move it before it clears its slot
    /// (W2, the wait's own check panics). docs/benchmarks.md, "Halting waits".
    nonisolated(unsafe) static var waitUnpinned = false
    /// migrate: the switch clears RUNNING before it saves rsp; the puller's
    /// switch-stamp check after its fence catches it (D6).
    nonisolated(unsafe) static var handoffEarlyClear = false
    /// cpusync: the remotes are released before the caller's own call ends.
    nonisolated(unsafe) static var cpusyncEarlyRelease = false
    /// preempt: after a deferred switch critnest is lowered only after interrupts
    /// are back on, with the window widened (C3). docs/critical-sections.md.
    nonisolated(unsafe) static var c3Window = false
    /// rendezvous-preempt: the action routine uses an ordinary critical section;
    /// C1 must trip (a switch inside the IPI handler). docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousPlainCritical = false
    /// rendezvous: a participant tests its pending bit but never takes it, so
    /// the IPI handler and a spin loop can both run its part (C4 breaks).
    nonisolated(unsafe) static var rendezvousDoubleClaim = false
    /// rendezvous-preempt: the action on the window CPU wakes a thread (actions
    /// must not schedule threads); the action routine's C2 assertion must fire.
    nonisolated(unsafe) static var rendezvousActionWakes = false
    /// rendezvous-handoff (tick=0): the rendezvous mutex's unlock wakes its
    /// halted waiters only after its spinlock section closed, where an owed
    /// preemption may switch to a busy thread first; the next waiter stays
    /// halted for as long as that thread runs. docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousLateWake = false
    /// panic-lockheld: panic stops the other CPUs with a fixed (maskable) IPI
    /// instead of an NMI; a CPU spinning with interrupts off never stops and the
    /// dump reports "timeout stopping cpus" naming it. docs/panic.md.
    nonisolated(unsafe) static var panicStopIPI = false
    /// bind-torture: the switch path moves a thread to its target without
    /// looking at BOUND (seed 001, NetBSD's mi_switch before the fix); a bound
    /// thread holding a passive reference moves and its release panics (B3).
    /// docs/binding-and-psref.md.
    nonisolated(unsafe) static var migrateIgnoresBound = false
    /// tlb-shootdown: unmapping invalidates only the calling CPU's TLB.
    nonisolated(unsafe) static var tlbLocalOnly = false
    /// bsd4-torture: resetpriority asserts on the lwp's CPU's uschedcp after
    /// dropping bsd4_spin, as DragonFly's 2008 code did (seed 000); the named
    /// panic follows. docs/bsd4-scheduler.md.
    nonisolated(unsafe) static var bsd4RemoteAssert = false
    /// bsd4-refuse: a refused request send is simply lost (no owed flag, no
    /// resend at the next tick): the pinned lwp stays queued while its idle
    /// CPU is never told. docs/bsd4-scheduler.md.
    nonisolated(unsafe) static var bsd4RefuseLost = false
    /// bsd4-offer: setrunqueue and the helper's chaining clear the target's
    /// rdyprocmask bit after dropping bsd4_spin, so two concurrent parks can
    /// both offer the same ready CPU (A7). docs/bsd4-scheduler.md.
    nonisolated(unsafe) static var bsd4LateReadyClear = false
    /// bsd4-torture: an install keeps the CPU's rrcount instead of starting
    /// a fresh round-robin interval (A6). docs/bsd4-scheduler.md.
    nonisolated(unsafe) static var bsd4RRCarry = false
    /// bsd4-torture: the helper runs above the lwps (high priority), so it
    /// designates another lwp while the one it preempted in user code is still
    /// runnable there (A8). docs/bsd4-scheduler.md.
    nonisolated(unsafe) static var bsd4HelperHigh = false

    static func load() {
        rendezvousPlainCritical = KernelOptions.flag("bug.rendezvous_plain_critical", default: false)
        panicStopIPI = KernelOptions.flag("bug.panic_stop_ipi", default: false)
        rendezvousDoubleClaim = KernelOptions.flag("bug.rendezvous_double_claim", default: false)
        rendezvousActionWakes = KernelOptions.flag("bug.rendezvous_action_wakes", default: false)
        rendezvousLateWake = KernelOptions.flag("bug.rendezvous_late_wake", default: false)
        ipiqNoRecheck = KernelOptions.flag("bug.ipiq_norecheck", default: false)
        waitNoRecheck = KernelOptions.flag("bug.wait_norecheck", default: false)
        waitUnpinned = KernelOptions.flag("bug.wait_unpinned", default: false)
        ipiqNoFence = KernelOptions.flag("bug.ipiq_nofence", default: false)
        ipiqEarlyCopy = KernelOptions.flag("bug.ipiq_early_copy", default: false)
        ipiqNoDrain = KernelOptions.flag("bug.ipiq_nodrain", default: false)
        handoffEarlyClear = KernelOptions.flag("bug.handoff_early_clear", default: false)
        cpusyncEarlyRelease = KernelOptions.flag("bug.cpusync_early_release", default: false)
        c3Window = KernelOptions.flag("bug.c3_window", default: false)
        tlbLocalOnly = KernelOptions.flag("bug.tlb_local_only", default: false)
        bsd4RemoteAssert = KernelOptions.flag("bug.bsd4_remote_assert", default: false)
        bsd4RefuseLost = KernelOptions.flag("bug.bsd4_refuse_lost", default: false)
        bsd4LateReadyClear = KernelOptions.flag("bug.bsd4_late_ready_clear", default: false)
        bsd4RRCarry = KernelOptions.flag("bug.bsd4_rr_carry", default: false)
        bsd4HelperHigh = KernelOptions.flag("bug.bsd4_helper_high", default: false)
        migrateIgnoresBound = KernelOptions.flag("bug.migrate_ignores_bound", default: false)
    }

    /// The boot line that says which controls are on (none: nothing printed).
    static func report() {
        let on: [(Bool, StaticString)] = [
            (ipiqNoRecheck, "bug.ipiq_norecheck"), (ipiqNoFence, "bug.ipiq_nofence"),
            (ipiqEarlyCopy, "bug.ipiq_early_copy"), (ipiqNoDrain, "bug.ipiq_nodrain"),
            (handoffEarlyClear, "bug.handoff_early_clear"), (cpusyncEarlyRelease, "bug.cpusync_early_release"),
            (c3Window, "bug.c3_window"), (tlbLocalOnly, "bug.tlb_local_only"),
            (rendezvousPlainCritical, "bug.rendezvous_plain_critical"), (panicStopIPI, "bug.panic_stop_ipi"),
            (rendezvousDoubleClaim, "bug.rendezvous_double_claim"), (rendezvousActionWakes, "bug.rendezvous_action_wakes"),
            (bsd4RemoteAssert, "bug.bsd4_remote_assert"), (migrateIgnoresBound, "bug.migrate_ignores_bound"),
            (waitNoRecheck, "bug.wait_norecheck"), (rendezvousLateWake, "bug.rendezvous_late_wake"),
            (waitUnpinned, "bug.wait_unpinned"),
            (bsd4RefuseLost, "bug.bsd4_refuse_lost"), (bsd4LateReadyClear, "bug.bsd4_late_ready_clear"),
            (bsd4RRCarry, "bug.bsd4_rr_carry"), (bsd4HelperHigh, "bug.bsd4_helper_high"),
        ]
        for (set, name) in on where set {
            Console.line { $0.write("NEGATIVE CONTROL: "); $0.write(name); $0.write(" puts a known bug back on purpose") }
        }
    }
}
