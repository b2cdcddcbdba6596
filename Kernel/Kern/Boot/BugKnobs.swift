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
    /// wait-wakeup (tick=0, with `wait.refuse_wakes=N`): a wake-up IPI the
    /// local APIC refused is not sent again, so the halted waiter is never
    /// woken (W1's waker side). docs/benchmarks.md, "Halting waits".
    nonisolated(unsafe) static var waitIgnoreRefused = false
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
    /// rendezvous-preempt: no critical section at all around the actions (the
    /// code before the seed-002 fix; the vector is also left out of the trap's
    /// raw section). An action landing in critical_exit's window switches in
    /// its own spinlock's exit, inside the IPI handler: C1 must trip. With
    /// `rendezvous.action_spinlock=0` the actions take no spinlock and nothing
    /// may trip. docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousNoCritical = false
    /// rendezvous: a participant tests its pending bit but never takes it, so
    /// the IPI handler and a spin loop can both run its part (C4 breaks).
    nonisolated(unsafe) static var rendezvousDoubleClaim = false
    /// rendezvous: a participant claims its pending bit with a plain load and
    /// a later store of the word without its bit (the window widened), not an
    /// atomic test-and-clear: another CPU's clear in between is undone, and that
    /// CPU runs its part twice (C4 breaks). docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousRacyClaim = false
    /// rendezvous-preempt: the action on the window CPU wakes a thread (actions
    /// must not schedule threads); the action routine's C2 assertion must fire.
    nonisolated(unsafe) static var rendezvousActionWakes = false
    /// rendezvous-handoff (tick=0): the rendezvous mutex's unlock wakes its
    /// halted waiters only after its spinlock section closed, where an owed
    /// preemption may switch to a busy thread first; the next waiter stays
    /// halted for as long as that thread runs. docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousLateWake = false
    /// rendezvous-handoff (tick=0, rendezvous.handoff_flip=1): the mutex's
    /// unlock wakes its waiters only if the mutex waits halt at that moment;
    /// a waiter that halted before they were switched off is never woken.
    nonisolated(unsafe) static var rendezvousGatedWake = false
    /// panic-lockheld: panic stops the other CPUs with a fixed (maskable) IPI
    /// instead of an NMI; a CPU spinning with interrupts off never stops and the
    /// dump reports "timeout stopping cpus" naming it. docs/panic.md.
    nonisolated(unsafe) static var panicStopIPI = false
    /// panic-header: the panic prints its header before it stops the other
    /// CPUs (the order before FreeBSD r228424); the header's fault then finds
    /// none stopped (E2). docs/panic.md.
    nonisolated(unsafe) static var panicPrintBeforeStop = false
    /// panic-ghost: the panic leaves the ticket it was waiting with in place
    /// (no TicketWaits retirement); the holder's later release hands the lock
    /// to that ghost (E4). docs/panic.md.
    nonisolated(unsafe) static var panicKeepTicket = false
    /// panic-midline: the console's emergency claim does not end the half line
    /// a stopped CPU left; the panic header is glued to it. docs/panic.md.
    nonisolated(unsafe) static var consoleMidlineGlue = false
    /// tlb-shootdown: the remote TLBs are flushed before the page-table entry
    /// is cleared; a CPU that reads the page in between caches the old
    /// translation again, and keeps it after unmap returns. docs/rendezvous.md.
    nonisolated(unsafe) static var tlbFlushBeforeClear = false
    /// tlb-shootdown (and every rendezvous): the initiator leaves as soon as
    /// its own part is done, without waiting for the participants' exits; a
    /// shootdown returns before every CPU flushed. docs/rendezvous.md.
    nonisolated(unsafe) static var rendezvousNoExitWait = false
    /// bind-torture: the switch path moves a thread to its target without
    /// looking at BOUND (seed 001, NetBSD's mi_switch before the fix); a bound
    /// thread holding a passive reference moves and its release panics (B3).
    /// docs/binding-and-psref.md.
    nonisolated(unsafe) static var migrateIgnoresBound = false
    /// wake-migrate: the receiver of a wake message treats it as a hand-off
    /// and queues the thread without asking whether it still owns it (the
    /// code before B5); a stale wake for a thread that moved on queues it on
    /// the CPU it left, and the B5 check in enqueueLocal (or the hand-off's)
    /// panics. docs/binding-and-psref.md.
    nonisolated(unsafe) static var wakeAsHandoff = false
    /// bind-rules: a preempted thread moves to its target whatever the
    /// interrupt state of the code it returns to (before B6); the rule
    /// "interrupts off: not moved by a wake it makes" fails.
    nonisolated(unsafe) static var moveWithInterruptsOff = false
    /// balance: the switch drops a balancer target before it tests for a
    /// critical section, so a preemption deferred to critical_exit loses it
    /// and hogs that run in critical sections stay on CPU 0.
    nonisolated(unsafe) static var balanceDropsDeferred = false
    /// bind-misuse: the misuse checks are off (exit holding a reference,
    /// a second destroy while draining, release by a thread that may
    /// migrate, migrate(to:) in a critical section): each case reaches its
    /// "did not panic" FAIL. (The leak case is not covered: without its
    /// watchdog it hangs.)
    nonisolated(unsafe) static var misuseUnchecked = false
    /// smp (with `smp.late_ap_ms`): the AP reads its state and goes on if it is
    /// not "abandoned", and the boot CPU writes "abandoned" when its wait ran
    /// out, with no compare-and-swap: the old two-flag check-then-act, in
    /// which a late AP is both left out and online (S1). docs/smp-bringup.md.
    nonisolated(unsafe) static var apTwoFlags = false
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
        rendezvousNoCritical = KernelOptions.flag("bug.rendezvous_no_critical", default: false)
        panicStopIPI = KernelOptions.flag("bug.panic_stop_ipi", default: false)
        rendezvousDoubleClaim = KernelOptions.flag("bug.rendezvous_double_claim", default: false)
        rendezvousRacyClaim = KernelOptions.flag("bug.rendezvous_racy_claim", default: false)
        apTwoFlags = KernelOptions.flag("bug.ap_two_flags", default: false)
        rendezvousGatedWake = KernelOptions.flag("bug.rendezvous_gated_wake", default: false)
        rendezvousActionWakes = KernelOptions.flag("bug.rendezvous_action_wakes", default: false)
        rendezvousLateWake = KernelOptions.flag("bug.rendezvous_late_wake", default: false)
        ipiqNoRecheck = KernelOptions.flag("bug.ipiq_norecheck", default: false)
        waitNoRecheck = KernelOptions.flag("bug.wait_norecheck", default: false)
        waitUnpinned = KernelOptions.flag("bug.wait_unpinned", default: false)
        waitIgnoreRefused = KernelOptions.flag("bug.wait_ignore_refused", default: false)
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
        panicPrintBeforeStop = KernelOptions.flag("bug.panic_print_before_stop", default: false)
        panicKeepTicket = KernelOptions.flag("bug.panic_keep_ticket", default: false)
        consoleMidlineGlue = KernelOptions.flag("bug.console_midline_glue", default: false)
        tlbFlushBeforeClear = KernelOptions.flag("bug.tlb_flush_before_clear", default: false)
        rendezvousNoExitWait = KernelOptions.flag("bug.rendezvous_no_exit_wait", default: false)
        wakeAsHandoff = KernelOptions.flag("bug.wake_as_handoff", default: false)
        moveWithInterruptsOff = KernelOptions.flag("bug.move_with_interrupts_off", default: false)
        balanceDropsDeferred = KernelOptions.flag("bug.balance_drops_deferred", default: false)
        misuseUnchecked = KernelOptions.flag("bug.misuse_unchecked", default: false)
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
            (waitUnpinned, "bug.wait_unpinned"), (rendezvousNoCritical, "bug.rendezvous_no_critical"),
            (waitIgnoreRefused, "bug.wait_ignore_refused"), (rendezvousRacyClaim, "bug.rendezvous_racy_claim"),
            (apTwoFlags, "bug.ap_two_flags"), (rendezvousGatedWake, "bug.rendezvous_gated_wake"),
            (panicPrintBeforeStop, "bug.panic_print_before_stop"), (panicKeepTicket, "bug.panic_keep_ticket"),
            (consoleMidlineGlue, "bug.console_midline_glue"), (tlbFlushBeforeClear, "bug.tlb_flush_before_clear"),
            (rendezvousNoExitWait, "bug.rendezvous_no_exit_wait"),
            (wakeAsHandoff, "bug.wake_as_handoff"),
            (moveWithInterruptsOff, "bug.move_with_interrupts_off"), (balanceDropsDeferred, "bug.balance_drops_deferred"),
            (misuseUnchecked, "bug.misuse_unchecked"),
            (bsd4RefuseLost, "bug.bsd4_refuse_lost"), (bsd4LateReadyClear, "bug.bsd4_late_ready_clear"),
            (bsd4RRCarry, "bug.bsd4_rr_carry"), (bsd4HelperHigh, "bug.bsd4_helper_high"),
        ]
        for (set, name) in on where set {
            Console.line { $0.write("NEGATIVE CONTROL: "); $0.write(name); $0.write(" puts a known bug back on purpose") }
        }
    }
}
