// The kernel command line (`-append`, `make run CMDLINE=...`): every option the
// kernel understands is registered here with a one-line description. An unknown
// option is reported and ignored; a malformed word is reported and skipped.

enum KernelOptions {
    enum Kind { case flag, int, text }

    struct Option {
        let key: StaticString
        let help: StaticString
        let kind: Kind
        init(key: StaticString, help: StaticString, _ kind: Kind = .text) {
            self.key = key; self.help = help; self.kind = kind
        }
    }

    /// Every known option. Negative-control knobs re-introduce a historical bug on
    /// purpose; they are named `bug.*` so nobody mistakes them for tuning (except
    /// `locktorture.lock=broken`, which picks the lock type the way Linux's
    /// locktorture picks `lock_busted`).
    static let known: [Option] = [
        Option(key: "run", help: "run=NAME[,NAME...] | all | bench | list: run in-kernel suites, then exit QEMU"),
        Option(key: "apic", help: "apic=x2apic|xapic: local APIC access (default x2APIC when the CPU has it)"),
        Option(key: "smp.maxcpus", help: "smp.maxcpus=N: start at most N CPUs (boot CPU included)", .int),
        Option(key: "smp.bringup", help: "smp.bringup=parallel|serial: start the APs all at once (default) or one at a time"),
        Option(key: "smp.late_ap_ms", help: "smp.late_ap_ms=N: test hook: the last AP, once it claimed its place, waits until N ms past the boot CPU's bring-up deadline (it must be kept, not left out)", .int),
        Option(key: "wait.refuse_wakes", help: "wait.refuse_wakes=N: test hook: the first try of every Nth halting-wait wake-up IPI is reported refused without being sent (each must be retried)", .int),
        Option(key: "wait.halt", help: "wait.halt=ipiq,cpusync,rendezvous,torture|all|none: which cross-CPU waits HLT until an interrupt instead of spinning (default cpusync,rendezvous: chosen from run=bench's figures)"),
        Option(key: "demo", help: "demo=bsd4: boot into the bsd4 demo (CPU hogs with different nice values, one interactive lwp; `make run` sets it)"),
        Option(key: "tick", help: "tick=0|1: the periodic timer tick on every CPU (default 1)", .flag),
        Option(key: "ktrace", help: "ktrace=1: record kernel events from boot (per-CPU rings; the monitor's ktrace starts and dumps them)", .flag),
        Option(key: "ktrace.entries", help: "ktrace.entries=N: events kept per CPU (default 4096)", .int),
        Option(key: "torture.seconds", help: "torture.seconds=N: duration of each torture test (default 2)", .int),
        Option(key: "bsd4.refuse_every", help: "bsd4.refuse_every=N: bsd4-refuse refuses every Nth bsd4 request send, as a full IPI ring would (default 3)", .int),
        Option(key: "bsd4.idle_gap_ms", help: "bsd4.idle_gap_ms=N: bsd4-torture's hogs all sleep two ticks at the start of every N ms, so the lwp CPUs go idle and become ready (default 300; 0 = never)", .int),
        Option(key: "bsd4.refuse_gap_us", help: "bsd4.refuse_gap_us=N: bsd4-refuse holds a refused sender N us between releasing its latch and marking the request owed (default 15000)", .int),
        Option(key: "bsd4.deliver_delay_us", help: "bsd4.deliver_delay_us=N: bsd4-offer waits N us between dropping bsd4_spin and telling another CPU (A7's window; default 5000)", .int),
        Option(key: "bsd4.poke_hold_us", help: "bsd4.poke_hold_us=N: bsd4-torture holds a remote poke up to N us until its target designates another lwp (the stale-hint window; default 200000)", .int),
        Option(key: "bsd4.window_us", help: "bsd4.window_us=N: bsd4-torture holds the seed-000 window open up to N us after each move (default 120000; 0 = the natural window)", .int),
        Option(key: "bug.sleep_nointerlock", help: "bug.sleep_nointerlock=1: negative control, sleep releases its interlock before queueing (lost wake-ups)", .flag),
        Option(key: "ipiq.min_per_pair", help: "ipiq.min_per_pair=N: ipiq-torture senders go on past torture.seconds (up to 15x) until each ordered pair carried N messages (default 1: every pair is checked)", .int),
        Option(key: "ipiq.fifo", help: "ipiq.fifo=N: slots per IPI ring, a power of two 4..256 (default 32)", .int),
        Option(key: "bug.ipiq_nofence", help: "bug.ipiq_nofence=1: observation (not a control): no MFENCE between releasing the IPI poll latch and the re-check; a loss needs the host's store buffer at that moment", .flag),
        Option(key: "bug.ipiq_norecheck", help: "bug.ipiq_norecheck=1: negative control for ipiq-wakeup (tick=0): the target releases its poll latch without fence and re-check (lost wake-ups, D5)", .flag),
        Option(key: "bug.wait_norecheck", help: "bug.wait_norecheck=1: negative control for wait-wakeup (tick=0): a halting wait halts without re-checking its condition (lost wake-ups, W1)", .flag),
        Option(key: "bug.wait_ignore_refused", help: "bug.wait_ignore_refused=1: negative control for wait-wakeup with wait.refuse_wakes (tick=0): a refused wake-up IPI is not sent again (lost wake-up)", .flag),
        Option(key: "bug.wait_unpinned", help: "bug.wait_unpinned=1: negative control for wait-migrate (tick=0): a halting wait is not pinned to its CPU and may be moved before it clears its slot (W2 panic)", .flag),
        Option(key: "bug.ipiq_early_copy", help: "bug.ipiq_early_copy=1: negative control for ipiq-torture: the consumer copies a slot before loading windex (D2 panic)", .flag),
        Option(key: "bug.ipiq_nodrain", help: "bug.ipiq_nodrain=1: negative control for ipiq-flood: the nearly-full wait does not drain its own rings (deadlock, reported)", .flag),
        Option(key: "bug.handoff_early_clear", help: "bug.handoff_early_clear=1: negative control for migrate: the switch clears RUNNING before saving rsp (D6)", .flag),
        Option(key: "bug.cpusync_early_release", help: "bug.cpusync_early_release=1: negative control for cpusync: remotes released before the caller's function ends", .flag),
        Option(key: "bug.c3_window", help: "bug.c3_window=1: negative control for preempt: critnest lowered after interrupts are back on, window widened (C3)", .flag),
        Option(key: "bug.ap_two_flags", help: "bug.ap_two_flags=1: negative control for smp with smp.late_ap_ms: the AP reads its bring-up state and the boot CPU writes abandoned, no compare-and-swap (S1: left out and online)", .flag),
        Option(key: "bug.rendezvous_gated_wake", help: "bug.rendezvous_gated_wake=1: negative control for rendezvous-handoff with rendezvous.handoff_flip=1 (tick=0): the mutex wakes its waiters only while its waits halt (a halted waiter is stranded)", .flag),
        Option(key: "bug.rendezvous_racy_claim", help: "bug.rendezvous_racy_claim=1: negative control for rendezvous: the pending bit is claimed by a plain load and store, not an atomic test-and-clear (C4 panic)", .flag),
        Option(key: "bug.rendezvous_no_critical", help: "bug.rendezvous_no_critical=1: negative control for rendezvous-preempt: no critical section at all around rendezvous actions (the 2011 bug: C1 panic in the action's spinlock exit)", .flag),
        Option(key: "bug.rendezvous_plain_critical", help: "bug.rendezvous_plain_critical=1: negative control for rendezvous-preempt: an ordinary critical section around rendezvous actions (C1 panic)", .flag),
        Option(key: "bug.rendezvous_double_claim", help: "bug.rendezvous_double_claim=1: negative control for rendezvous: a participant never takes its pending bit and may run its part twice (C4)", .flag),
        Option(key: "bug.rendezvous_action_wakes", help: "bug.rendezvous_action_wakes=1: negative control for rendezvous-preempt: the action wakes a thread (C2 panic)", .flag),
        Option(key: "bug.rendezvous_late_wake", help: "bug.rendezvous_late_wake=1: negative control for rendezvous-handoff (tick=0): the rendezvous mutex wakes its halted waiters only after its unlock's section closed (and may have switched away)", .flag),
        Option(key: "rendezvous.refuse_sends", help: "rendezvous.refuse_sends=N: test hook: the first N rendezvous IPIs are reported refused by the local APIC without being sent (each must be retried)", .int),
        Option(key: "rendezvous.action_spinlock", help: "rendezvous.action_spinlock=0: rendezvous-preempt's actions take no spinlock (with bug.rendezvous_no_critical nothing may trip: the spinlock is the path)", .int),
        Option(key: "rendezvous.handoff_flip", help: "rendezvous.handoff_flip=1: rendezvous-handoff switches the mutex waits to spinning while the next waiter is halted (it must still be woken)", .int),
        Option(key: "rendezvous.window_cycles", help: "rendezvous.window_cycles=N: how long rendezvous-preempt holds critical_exit's window open (default 20000 TSC cycles)", .int),
        Option(key: "panic", help: "panic=exit|halt|reboot|monitor: after the panic dump, leave QEMU (default), stop for gdb, reset, or a post-mortem monitor"),
        Option(key: "test.stop_window_ms", help: "test.stop_window_ms=N: test hook for panic-halt, panic-haltfirst, halt-midline and panic-all: the stopper waits N ms between its pending mask and its NMIs", .int),
        Option(key: "test.late_ap", help: "test.late_ap=1: test hook: the last AP comes online only once a stop (panic) has begun; the boot CPU does not wait for it", .flag),
        Option(key: "test.boot_nmi", help: "test.boot_nmi=1: test hook: an NMI right after the boot CPU routes LINT1 as NMI, and one to each AP right after it loads its IDT", .flag),
        Option(key: "test.symbolizer_fault", help: "test.symbolizer_fault=1: test hook: the symbolizer faults once a panic is under way (the recursive line must still print)", .flag),
        Option(key: "bug.panic_stop_ipi", help: "bug.panic_stop_ipi=1: negative control for panic-lockheld: stop the other CPUs with a fixed IPI, not an NMI (timeout stopping cpus)", .flag),
        Option(key: "bug.migrate_ignores_bound", help: "bug.migrate_ignores_bound=1: negative control for bind-torture: the switch path migrates a thread to its target without checking BOUND (seed 001 panic)", .flag),
        Option(key: "bug.wake_as_handoff", help: "bug.wake_as_handoff=1: negative control for wake-migrate: a wake message is handled as a hand-off, the owner not re-checked (B5 panic)", .flag),
        Option(key: "bug.move_with_interrupts_off", help: "bug.move_with_interrupts_off=1: negative control for bind-rules: a preempted thread moves to its target although its code had interrupts off (B6 check fails)", .flag),
        Option(key: "bug.balance_drops_deferred", help: "bug.balance_drops_deferred=1: negative control for balance: the switch drops the balancer target before the critical-section test (hogs in critical sections stay)", .flag),
        Option(key: "bug.misuse_unchecked", help: "bug.misuse_unchecked=1: negative control for bind-misuse: the misuse panics are off (each case ends in its did-not-panic FAIL; not leak)", .flag),
        Option(key: "bind.misuse", help: "bind.misuse=exit-holding|double-destroy|release-unbound|leak|migrate-critical: the misuse the bind-misuse suite commits (each ends in a named panic)"),
        Option(key: "bug.bsd4_remote_assert", help: "bug.bsd4_remote_assert=1: negative control for bsd4-torture: resetpriority asserts on another CPU's uschedcp after unlocking (seed 000 panic)", .flag),
        Option(key: "bug.tlb_flush_before_clear", help: "bug.tlb_flush_before_clear=1: negative control for tlb-shootdown: the remote TLBs are flushed before the page-table entry is cleared (a reader caches the old translation again)", .flag),
        Option(key: "bug.rendezvous_no_exit_wait", help: "bug.rendezvous_no_exit_wait=1: negative control for tlb-shootdown: a rendezvous initiator leaves without waiting for the participants' exits (a shootdown returns before every CPU flushed)", .flag),
        Option(key: "bug.panic_print_before_stop", help: "bug.panic_print_before_stop=1: negative control for panic-header: the panic prints its header before stopping the other CPUs (E2)", .flag),
        Option(key: "bug.panic_keep_ticket", help: "bug.panic_keep_ticket=1: negative control for panic-ghost: the ticket the panic owner was waiting with is not retired (a ghost holder, E4)", .flag),
        Option(key: "bug.console_midline_glue", help: "bug.console_midline_glue=1: negative control for panic-midline: the emergency console claim does not end a stopped CPU's half line", .flag),
        Option(key: "bug.bsd4_refuse_lost", help: "bug.bsd4_refuse_lost=1: negative control for bsd4-refuse: a refused bsd4 request send is lost, never resent", .flag),
        Option(key: "bug.bsd4_late_ready_clear", help: "bug.bsd4_late_ready_clear=1: negative control for bsd4-offer: the target's rdyprocmask bit is cleared after bsd4_spin is dropped (A7)", .flag),
        Option(key: "bug.bsd4_rr_carry", help: "bug.bsd4_rr_carry=1: negative control for bsd4-torture: an install keeps the CPU's rrcount (A6)", .flag),
        Option(key: "bug.bsd4_helper_high", help: "bug.bsd4_helper_high=1: negative control for bsd4-torture: the bsd4 helper runs above the lwps (A8)", .flag),
        Option(key: "bug.tlb_local_only", help: "bug.tlb_local_only=1: negative control for tlb-shootdown: unmapping invalidates only the calling CPU's TLB", .flag),
        Option(key: "litmus.iterations", help: "litmus.iterations=N: at most N runs of each litmus test (default 200000)", .int),
        Option(key: "litmus.tests", help: "litmus.tests=SB,MP,...: run only these litmus tests (default all)"),
        Option(key: "litmus.ms", help: "litmus.ms=N: at most N ms per litmus test (default 300)", .int),
        Option(key: "bench.ms", help: "bench.ms=N: time per benchmark (default 400)", .int),
        Option(key: "locktorture.lock", help: "locktorture.lock=ticket|broken: the lock spinlock-torture hammers; broken is the negative control"),
    ]

    nonisolated(unsafe) static var parsed = ParsedCommandLine(options: [], problems: [], imageName: nil)

    /// Parses the multiboot command line (already validated and NUL-bounded),
    /// checks the values of typed options, and reports every problem.
    static func load(_ bytes: UnsafeRawBufferPointer?) {
        if let bytes { parsed = KernelCommandLine.parse(bytes, skipImageName: true) }
        for o in known {
            let key = o.key.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            guard parsed.value(for: key) != nil else { continue }
            switch o.kind {
            case .flag: _ = parsed.flag(key)            // records "not a boolean"
            case .int: _ = parsed.int(key, default: 0)  // records "not an integer"
            case .text: break
            }
        }
        for problem in parsed.problems {
            Console.line { l in
                l.write(problem.severity == .error ? "cmdline: error: " : "cmdline: warning: ")
                l.write(problem.reason); l.write(": '"); l.write(problem.word); l.write("'")
            }
        }
        for key in KernelCommandLine.unknownKeys(parsed, known: known.map { $0.key }) {
            Console.line { $0.write("cmdline: unknown option '"); $0.write(key); $0.write("' ignored (the monitor's 'options' lists the known ones)") }
        }
    }

    static func printParsed() {
        if parsed.options.isEmpty {
            Console.print("cmdline: (no options)")
        }
        for o in parsed.options {
            Console.line { $0.write("cmdline: "); $0.write(o.key); $0.write(" = "); $0.write(o.value) }
        }
    }

    /// One line per option: the key in a column as wide as the longest key, then
    /// its description.
    static func printKnown() {
        var width = 0
        for o in known { width = max(width, o.key.utf8CodeUnitCount) }
        for o in known { Console.line { $0.write("  "); $0.padRight(o.key, width: width + 2); $0.write(o.help) } }
    }

    /// The options suites read when they run (the monitor's `run` may set them).
    static let runtimeKeys: [StaticString] = ["torture.seconds", "bsd4.window_us", "bsd4.poke_hold_us", "bsd4.refuse_every", "bsd4.refuse_gap_us", "bsd4.idle_gap_ms", "bsd4.deliver_delay_us", "ipiq.min_per_pair", "litmus.iterations",
                                              "litmus.tests", "litmus.ms", "litmus.sb_cap_ms", "bench.ms",
                                              "rendezvous.window_cycles", "rendezvous.action_spinlock", "rendezvous.handoff_flip"]

    /// Options a monitor command set for its own run (`run SUITE key=value`),
    /// consulted before the boot command line.
    nonisolated(unsafe) private static var overrides: [(key: String, value: String)] = []

    /// Runs `body` with `words` ("key=value", known keys only) in force; nil
    /// and no run when a word is malformed or unknown (the error is returned).
    static func withOverrides(_ words: [String], _ body: () -> Void) -> String? {
        var parsedWords: [(key: String, value: String)] = []
        for w in words {
            let parts = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { return "expected key=value, got '" + w + "'" }
            guard known.contains(where: { equal($0.key, parts[0]) }) else { return "unknown option '" + parts[0] + "' ('options' lists them)" }
            // Most options are read once at boot; an override of one would be
            // silently ignored (a control that is not in force, say).
            guard runtimeKeys.contains(where: { equal($0, parts[0]) }) else {
                return "option '" + parts[0] + "' takes effect only at boot (put it on the kernel command line)"
            }
            parsedWords.append((parts[0], parts[1]))
        }
        let saved = overrides
        overrides = parsedWords + overrides
        body()
        overrides = saved
        return nil
    }

    private static func equal(_ a: StaticString, _ b: String) -> Bool {
        a.withUTF8Buffer { ab in Array(ab) == Array(b.utf8) }
    }

    static func value(_ key: String) -> String? {
        if let o = overrides.first(where: { $0.key == key }) { return o.value }
        return parsed.value(for: key)
    }
    static func list(_ key: String) -> [String] {
        if let v = overrides.first(where: { $0.key == key })?.value { return v.split(separator: ",").map(String.init) }
        return parsed.list(key)
    }
    /// A flag's value; `d` when it is absent or malformed (reported at load).
    static func flag(_ key: String, default d: Bool) -> Bool {
        guard let v = value(key) else { return d }
        switch v {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: return d
        }
    }
    /// An integer's value; `d` when it is absent or malformed (reported at load).
    static func int(_ key: String, default d: Int) -> Int {
        guard let v = value(key) else { return d }
        return ParsedCommandLine.parseInt(v) ?? d
    }
}
