import Synchronization

// bind-rules: binding, the switch-time BOUND check and passive references, one
// step at a time (docs/binding-and-psref.md).
//   B4  binds nest: an inner pair leaves the outer bind in force.
//   B2  a bound thread given a target and forced through a switch stays, and
//       its target is dropped; unbound, the same switch hands it to the target.
//   B3  a passive reference held across that switch is released on its CPU
//       (with bug.migrate_ignores_bound=1 the release panics: seed 001).
//   destroy waits for a reference held on another CPU until it is released.

enum BindRules {
    static let suite = TestSuite(name: "bind-rules", kind: .normal,
                                 summary: "B4 nesting; a bound thread with a target stays at a forced switch (B2), its psref holds (B3); destroy waits",
                                 body: run)

    static let holding = Atomic<Bool>(false)
    static let destroyReturned = Atomic<Bool>(false)
    static let heldAtReturn = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        nesting(&t)
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("bind-rules: the switch-time check needs a second CPU to move to"); return }
        if BugKnobs.migrateIgnoresBound { t.note { $0.write("negative control: the switch path migrates without checking BOUND") } }
        forcedSwitch(&t, cpus)
        destroyWaits(&t, cpus)
    }

    static func nesting(_ t: inout TestContext) {
        let td = Thread.current
        let outer = Binding.bind()
        let inner = Binding.bind()
        let afterInner: Bool = { Binding.unbind(inner); return td.isBound }()
        Binding.unbind(outer)
        t.check(!outer && inner && afterInner && !td.isBound) { l in
            l.write("B4: bind returns the previous value (false, then true); the inner unbind leaves the outer bind (")
            l.write(afterInner ? "bound" : "NOT bound"); l.write("), the outer one clears it")
        }
    }

    /// On a thread of its own: bound, holding a reference, with a target on
    /// another CPU, through a yield; then unbound through another.
    static func forcedSwitch(_ t: inout TestContext, _ cpus: CPUMask) {
        let home = cpus.nth(1) ?? 0, away = cpus.first ?? 0
        let result = SharedCounters()    // [0] CPU after the bound switch, [1] kept, [2] target left, [3] CPU after the unbound switch, [4] psref CPU = ours at release, [5] CPU after a sleep with a target
        let target = PsrefTarget("bind-rules")
        guard let td = Thread.spawn("bind rules", cpu: home, {
            let me = Thread.current
            let previous = Binding.bind()
            let ref = Psref()
            PassiveRef.acquire(ref, target)
            me.migrateTarget.store(away, ordering: .relaxed)
            Scheduler.yield()                                        // the switch sees the target
            result.values[0] = UInt64(PerCPU.currentNumber)
            result.values[1] = me.keptBound.load(ordering: .relaxed)
            result.values[2] = UInt64(bitPattern: Int64(me.migrateTarget.load(ordering: .relaxed)))
            result.values[4] = ref.cpu == PerCPU.currentNumber ? 1 : 0
            PassiveRef.release(ref, target)                          // B3 (the control panics here)
            Binding.unbind(previous)
            // A sleep is not a preemption: the switch into it keeps the thread
            // here even with a target (the target waits for a later switch).
            if Clock.enabled {                                       // a timed sleep needs the tick
                // Interrupts off from the store to the sleep: a tick between
                // them would preempt us (the tick forces a preemption on a
                // thread with a target), and that move would be legitimate.
                let flags = CPU.saveFlagsAndDisableInterrupts()
                me.migrateTarget.store(away, ordering: .relaxed)
                _ = Sleep.sleep(on: Sleep.channel(me), timeoutTicks: 1)
                result.values[5] = UInt64(PerCPU.currentNumber)      // still off: the CPU it woke on
                CPU.restoreFlags(flags)
            } else {
                me.migrateTarget.store(away, ordering: .relaxed)
            }
            Scheduler.yield()
            CriticalSection.enter()
            result.values[3] = UInt64(PerCPU.currentNumber)
            CriticalSection.exit()
        }) else { t.check(false, "spawn the bind-rules thread"); return }
        td.join()
        let stayed = result.values[0] == UInt64(home), kept = result.values[1] == 1
        let dropped = Int64(bitPattern: result.values[2]) == -1
        t.check(stayed && kept && dropped) { l in
            l.write("B2: bound, given CPU "); l.dec(away); l.write(" as target and forced through a switch on CPU "); l.dec(home)
            l.write(": resumed on CPU "); l.dec(result.values[0]); l.write(", kept-bound count "); l.dec(result.values[1])
            l.write(dropped ? ", target dropped" : ", target NOT dropped")
        }
        t.check(result.values[4] == 1, "B3: the passive reference held across that switch was released on the CPU that took it")
        if Clock.enabled {
            t.check(result.values[5] == UInt64(home)) { l in
                l.write("a thread with a target that goes to sleep is not moved by that switch: woke on CPU "); l.dec(result.values[5])
            }
        }
        t.check(result.values[3] == UInt64(away) && td.switchMigrations.load(ordering: .relaxed) == 1) { l in
            l.write("unbound, the next switch handed it to its target: on CPU "); l.dec(result.values[3])
            l.write(" after "); l.dec(td.switchMigrations.load(ordering: .relaxed)); l.write(" switch migration")
        }
    }

    /// A reference held on another CPU for 50 ms: destroy must wait for it
    /// (at least one round found it) and return only after the release.
    static func destroyWaits(_ t: inout TestContext, _ cpus: CPUMask) {
        let target = PsrefTarget("bind-rules destroy")
        holding.store(false, ordering: .relaxed)
        destroyReturned.store(false, ordering: .relaxed)
        heldAtReturn.store(false, ordering: .relaxed)
        let other = cpus.nth(1) ?? 0
        guard let td = Thread.spawn("psref holder", cpu: other, {
            let previous = Binding.bind()
            let ref = Psref()
            PassiveRef.acquire(ref, target)
            BindRules.holding.store(true, ordering: .releasing)
            TSC.delay(microseconds: 50_000)
            // destroy must not have returned while we still hold the reference.
            if BindRules.destroyReturned.load(ordering: .acquiring) { BindRules.heldAtReturn.store(true, ordering: .relaxed) }
            PassiveRef.release(ref, target)
            Binding.unbind(previous)
        }) else { t.check(false, "spawn the psref holder"); return }
        _ = spinUntil(milliseconds: 2000) { holding.load(ordering: .acquiring) }
        let waits = PassiveRef.destroy(target)
        destroyReturned.store(true, ordering: .releasing)
        td.join()
        let early = heldAtReturn.load(ordering: .relaxed)
        t.check(waits > 0 && !early) { l in
            l.write("psref destroy found the reference held on CPU "); l.dec(other); l.write(" in "); l.dec(waits)
            l.write(early ? " rounds and returned BEFORE its release" : " rounds and returned only after its release")
        }
    }
}
