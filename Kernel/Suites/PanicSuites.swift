import Synchronization

// Panic suites (docs/panic.md, E1-E6). The fatal ones end the kernel on purpose;
// the integration tests read the dump: the owner, the stopped CPUs, the frozen
// heartbeats, the symbolized backtraces. `nmi` is an ordinary suite (E6).

enum PanicSuites {
    /// A thread on every other CPU that proves it is alive: its CPU's heartbeat
    /// counts up until that CPU is stopped.
    static func startHeartbeats(except skip: CPUMask = CPUMask()) {
        SMP.online.forEach { cpu in
            guard cpu != PerCPU.currentNumber, !skip.contains(cpu) else { return }
            Thread.spawn("heartbeat", cpu: cpu, {
                let me = PerCPU.cpus[PerCPU.currentNumber]
                while true { me.heartbeat.wrappingAdd(1, ordering: .relaxed); CPU.pause() }
            })
        }
        TSC.delay(microseconds: 20_000)        // let them start
    }

    /// This CPU's proof of life (heartbeat), for loops that spin with
    /// interrupts off (no tick then).
    static func beat() { PerCPU.cpus[PerCPU.currentNumber].heartbeat.wrappingAdd(1, ordering: .relaxed) }

    /// Checks made inside a dump (a `Panic.dumpHook`): the suite's own context
    /// is out of reach on the panicking stack, so a fresh one prints the same
    /// PASS/FAIL line and CHECK record. Nothing allocates; the run never
    /// reaches SUMMARY after a panic.
    static func dumpChecks(_ suite: StaticString, _ body: (inout TestContext) -> Void) {
        var t = TestContext()
        t.begin(suite)
        body(&t)
    }

    static let basic = TestSuite(name: "panic-basic", kind: .fatal,
        summary: "panic with every other CPU busy: all NMI-stopped, heartbeats frozen", body: { _ in
            Console.print("panic-basic: a panic follows")
            startHeartbeats()
            panic("panic-basic: requested by the suite")
        })

    /// CPU B takes a mutex and a spinlock and spins with interrupts off; the
    /// dump takes the same spinlock (bypassed), the mutex, sleeps and yields: all
    /// return at once (E3, E4). If B did not stop (the control), it is a
    /// laggard: it releases both for real while the dump is inside them
    /// (PanicLockSuites.laggard).
    static let suiteLock = SpinLock("panic-lockheld")
    static let lockHeld = Atomic<Bool>(false)
    nonisolated(unsafe) static var heldMutex: Mutex? = nil
    nonisolated(unsafe) static var dumpCounters: SharedCounters? = nil
    static let lockHeldSuite = TestSuite(name: "panic-lockheld", kind: .fatal,
        summary: "CPU B holds a spinlock with interrupts off; the dump takes it: B NMI-stopped, dump completes", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", reason: .needs2CPUs, "needs 2 CPUs"); return }
            let m = Mutex("panic-lockheld mutex")
            heldMutex = m
            Thread.spawn("lock-holder", cpu: b, {
                PanicSuites.heldMutex?.lock()               // a sleeping lock
                // Interrupts off from here on, also after the laggard's release
                // below: the control's fixed stop IPI stays pending.
                SpinlockSection.enter()
                PanicSuites.suiteLock.lock()
                PanicSuites.lockHeld.store(true, ordering: .releasing)
                PanicLockSuites.holdUntilAsked(PanicSuites.heldMutex)
            })
            // The race needs B inside the lock with interrupts off when the
            // panic comes: a panic without it would prove nothing (no panic then).
            let held = spinUntil(milliseconds: 2000) { PanicSuites.lockHeld.load(ordering: .acquiring) }
            t.expect("holder-ready", held) { l in
                l.write("CPU B took the spinlock with interrupts off within 2 s")
                if !held { l.write(" (it did not: no panic)") }
            }
            guard held else { return }
            startHeartbeats(except: CPUMask(b))
            Panic.dumpHook = {
                let t0 = TSC.now
                PanicSuites.windowHits()
                PanicSuites.bypassedUnlockIsANoOp()         // held by stopped CPU B: bypassed (E4)
                PanicSuites.heldMutex?.lock()               // held by B's thread: taken over (E4)
                PanicSuites.heldMutex?.unlock()
                _ = Sleep.sleep(on: 0xDEAD, timeoutTicks: 100)   // E3: returns at once
                Scheduler.yield()
                if let tk = IPIQueue.send(to: b, { _, _ in }) { IPIQueue.wait(tk) }   // no wait on a stopped CPU
                let ran = SharedCounters()
                PanicSuites.dumpCounters = ran
                CPUSync.run(mask: SMP.online, { _, _ in PanicSuites.dumpCounters?.values[0] &+= 1 })
                Rendezvous.runOnAll(action: { _ in PanicSuites.dumpCounters?.values[1] &+= 1 })
                let (syncs, rvs) = (ran.values[0], ran.values[1])
                Console.line { l in
                    l.write("dump: took the spinlock and the mutex CPU "); l.dec(b); l.write(" holds, slept, yielded, sent to it, ran a cpusync ("); l.dec(syncs)
                    l.write(" CPU) and a rendezvous ("); l.dec(rvs); l.write(" CPU): ")
                    l.dec(TSC.nanoseconds(TSC.now &- t0) / 1000); l.write(" us (scheduler stopped)")
                }
                // E4: neither waits for a stopped CPU; both run on the panic
                // CPU alone (a laggard, under the control, is no exception:
                // it runs with interrupts off).
                PanicSuites.dumpChecks("panic-lockheld") { t in
                    t.expect("dump-cpusync", inv: "E4", syncs, .equals(1)) { l in
                        l.write("E4: the dump's cpusync ran on "); l.dec(syncs); l.write(" CPU (the panic CPU only)")
                    }
                    t.expect("dump-rendezvous", inv: "E4", rvs, .equals(1)) { l in
                        l.write("E4: the dump's rendezvous ran on "); l.dec(rvs); l.write(" CPU (the panic CPU only)")
                    }
                }
                // A holder that did not stop (only under the control) releases
                // its locks for real while the dump is inside them (E4).
                if !StopCPUs.stoppedMask.contains(b) { PanicLockSuites.laggard(b, PanicSuites.heldMutex) }
            }
            Console.print("panic-lockheld: CPU B holds the suite's spinlock with interrupts off; a panic follows")
            panic("panic-lockheld: the dump takes a lock a stopped CPU holds")
        })

    /// The seed-004 window, read from the stopped CPUs' saved state: a CPU the
    /// NMI caught with interrupts off (IF clear in its saved RFLAGS) while it
    /// held a spinlock, which a maskable stop IPI could never have stopped.
    /// One `window-hit:` line per such CPU (scripts/races.sh counts them).
    static func windowHits() {
        StopCPUs.stoppedMask.forEach { cpu in
            guard let f = StopCPUs.frames?[cpu] else { return }
            let locks = PanicDump.spinlocksHeld(cpu)
            guard f.rflags & CPU.interruptFlag == 0 && locks > 0 else { return }
            Console.line { l in
                l.write("window-hit: panic-lockheld: cpu="); l.dec(cpu); l.write(" rflags="); l.hex(f.rflags)
                l.write(" if=0 spinlocks="); l.dec(locks); l.write(" lock-owner="); l.dec(Int(suiteLock.raw.owner.load(ordering: .relaxed)))
            }
        }
    }

    /// E4 on the panic thread: the spinlock stopped CPU B holds is passed
    /// through, and the matching unlock is a no-op (no ticket taken, none
    /// served), with the spinlock section, critnest, IF and the held count
    /// exactly as for a real acquisition and release. Three lines: before,
    /// inside, after; then three checks comparing them.
    struct LockSnapshot: Equatable {
        var next: UInt32, serving: UInt32, owner: Int32, passes: UInt64
        var spin: Int, crit: Int, interrupts: Bool, locks: Int
        static func take() -> LockSnapshot {
            LockSnapshot(next: suiteLock.raw.nextTicket.load(ordering: .relaxed), serving: suiteLock.raw.nowServing.load(ordering: .relaxed),
                                owner: suiteLock.raw.owner.load(ordering: .relaxed), passes: suiteLock.raw.bypassPasses,
                                spin: SpinlockSection.depth, crit: Thread.currentIfAny?.critnest ?? -1,
                                interrupts: CPU.interruptsEnabled, locks: PerCPU.locksHeld)
        }
    }

    static func bypassedUnlockIsANoOp() {
        func show(_ what: StaticString) -> LockSnapshot {
            Console.line { l in
                l.write("dump: bypassed spinlock "); l.write(what); l.write(": ")
                PanicLockSuites.writeCounters(suiteLock.raw, &l); l.write("; "); PanicLockSuites.writeAccounting(&l)
            }
            return LockSnapshot.take()
        }
        let before = show("before")
        suiteLock.lock()                                    // bare: each side is observed
        let inside = show("inside")
        suiteLock.unlock()                                  // the pass: a no-op
        let after = show("after")
        dumpChecks("panic-lockheld") { t in
            let noTicket = inside.next == before.next && inside.serving == before.serving && inside.owner == before.owner
                && inside.passes == before.passes &+ 1
            t.expect("bypass-no-ticket", inv: "E4", noTicket,
                     "E4: the pass through the held spinlock took no ticket, kept its owner and recorded one pass")
            let accounted = inside.spin == before.spin + 1 && inside.locks == before.locks + 1 && inside.crit == before.crit
                && !inside.interrupts
            t.expect("bypass-accounting", inv: "E4", accounted,
                     "E4: inside the pass, one spinlock section and one held lock more, as for a real acquisition")
            t.expect("bypass-noop-unlock", inv: "E4", after == before,
                     "E4: after the unlock the lock's counters and the accounting are as before (the unlock was a no-op)")
        }
    }

    /// Every CPU panics at the same instant: exactly one owner (E1).
    static let all = TestSuite(name: "panic-all", kind: .fatal,
        summary: "every CPU panics at once: exactly one owner, the others parked and stopped", body: { _ in
            let go = SharedCounters()
            SMP.online.forEach { cpu in
                guard cpu != PerCPU.currentNumber else { return }
                Thread.spawn("panicker", priority: Thread.highPriority, cpu: cpu, {
                    while go.values[0] == 0 { CPU.compilerBarrier(); CPU.pause() }
                    panic("panic-all: every CPU panics")
                })
            }
            TSC.delay(microseconds: 20_000)
            Console.print("panic-all: every CPU panics at once; one dump follows")
            go.values[0] = 1
            panic("panic-all: every CPU panics")
        })

    /// Panic while CPUs are inside a rendezvous (an action that spins, inside a
    /// cpusync caller's function) and held by a cpusync.
    static let rendezvous = TestSuite(name: "panic-rendezvous", kind: .fatal,
        summary: "panic while other CPUs are inside a rendezvous and a cpusync: all stopped", body: { t in
            let cpus = SMP.online
            guard cpus.count >= 4, let c1 = cpus.nth(1), let c2 = cpus.nth(2), let c3 = cpus.nth(3) else {
                t.skip("run", reason: .needs4CPUs, "needs 4 CPUs"); return
            }
            let state = SharedCounters()                   // [0] cpusync caller inside, [1] rendezvous action inside
            rendezvousState = state
            // c1: a cpusync on {c1, c2} whose caller-side function never ends (c2 held).
            Thread.spawn("cpusync-caller", cpu: c1, {
                CPUSync.run(mask: CPUMask(c1).union(CPUMask(c2)), { caller, _ in
                    guard PerCPU.currentNumber == Int(truncatingIfNeeded: caller) else { return }
                    PanicSuites.rendezvousState?.values[0] = 1
                    while true { PanicSuites.beat(); CPU.pause() }   // interrupts on: it takes the rendezvous IPI
                }, UInt64(c1))
            })
            _ = spinUntil(milliseconds: 2000) { CPU.compilerBarrier(); return state.values[0] == 1 }
            // c3: a rendezvous on {c1, c3} whose action never ends.
            Thread.spawn("rv-caller", cpu: c3, {
                Rendezvous.run(cpus: CPUMask(c1).union(CPUMask(c3)), action: { _ in
                    PanicSuites.rendezvousState?.values[1] = 1
                    while true { PanicSuites.beat(); CPU.pause() }
                })
            })
            let inside = spinUntil(milliseconds: 2000) { CPU.compilerBarrier(); return state.values[1] == 1 }
            t.expect("setup", inside) { l in
                l.write(inside ? "the rendezvous action started inside the cpusync" : "the rendezvous never started; no panic")
            }
            guard inside else { return }
            Console.line { l in
                l.write("panic-rendezvous: CPU "); l.dec(c1); l.write(" inside a rendezvous action inside its cpusync, CPU ")
                l.dec(c2); l.write(" held by that cpusync, CPU "); l.dec(c3); l.write(" waiting for the rendezvous; a panic follows")
            }
            panic("panic-rendezvous: panic during a rendezvous and a cpusync")
        })
    nonisolated(unsafe) static var rendezvousState: SharedCounters? = nil

    /// A fault inside the dump: one line, then the end (no second dump).
    static let nested = TestSuite(name: "panic-nested", kind: .fatal,
        summary: "a fault inside the panic dump: one line, then the end", body: { _ in
            Panic.dumpHook = { _ = CPU.touch(8) }
            Console.print("panic-nested: the dump faults; a panic and one recursive line follow")
            panic("panic-nested: the dump will fault")
        })

    /// E7: CPU B holds the heap lock with interrupts off; CPU 0 panics with a
    /// detail that captures a local. Nothing before the claim allocates, so the
    /// claim, the stop and the dump go through (after the claim the heap lock
    /// is bypassed like any other, E4).
    static let heapHeld = Atomic<Bool>(false)
    static let heapLock = TestSuite(name: "panic-heaplock", kind: .fatal,
        summary: "CPU B holds the heap lock with interrupts off; a panic with a capturing detail dumps in full", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", inv: "E7", reason: .needs2CPUs, "needs 2 CPUs"); return }
            startHeartbeats(except: CPUMask(b))             // first: spawning allocates
            Thread.spawn("heap-holder", cpu: b, {
                Heap.lock.lock()                            // interrupts off from here on
                PanicSuites.heapHeld.store(true, ordering: .releasing)
                while true { PanicSuites.beat(); CPU.pause() }
            })
            _ = spinUntil(milliseconds: 2000) { PanicSuites.heapHeld.load(ordering: .acquiring) }
            let held = b                                    // captured by the detail below
            Console.print("panic-heaplock: CPU B holds the heap lock with interrupts off; a panic follows")
            panic("panic-heaplock: panic while another CPU holds the heap lock") { l in l.write("holder CPU "); l.dec(held) }
        })

    /// E2: a fault inside the header, the first thing printed: every other CPU
    /// was stopped before it (stop first, then format).
    static let header = TestSuite(name: "panic-header", kind: .fatal,
        summary: "a fault inside the panic header: the other CPUs are already stopped", body: { _ in
            startHeartbeats()
            Panic.headerHook = { _ = CPU.touch(8) }
            Console.print("panic-header: the header faults; a panic and one recursive line follow")
            panic("panic-header: the header will fault")
        })

    /// E8: CPU B runs the monitor's halt while CPU 0's panic is stopping the
    /// others, inside the window between its pending mask and its NMIs
    /// (test.stop_window_ms): B must wait for, and be stopped by, CPU 0's NMI,
    /// not overwrite the pending mask and stop the panic owner.
    static let halt = TestSuite(name: "panic-halt", kind: .fatal,
        summary: "the monitor's halt on CPU B during a panic's stop: one stopper, B stopped, the dump completes", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", inv: "E8", reason: .needs2CPUs, "needs 2 CPUs"); return }
            // Without the window the halt would come too late to race: a
            // configuration that tests nothing fails rather than passes.
            guard PanicTestHooks.stopWindowMs > 0 else { t.expect("stop-window", false, "needs test.stop_window_ms=N"); return }
            Thread.spawn("halter", cpu: b, {
                while StopCPUs.pendingNMI.load(ordering: .acquiring) == 0 { PanicSuites.beat(); CPU.pause() }
                ControlCommands.halt()
            })
            startHeartbeats(except: CPUMask(b))
            Console.print("panic-halt: CPU B runs halt inside the panic's stop window; a panic follows")
            panic("panic-halt: a halt during the panic's stop")
        })

    /// E6: an NMI nobody asked for is an ordinary NMI: counted, and the CPU goes on.
    static let nmi = TestSuite(name: "nmi", kind: .normal,
        summary: "E6: an NMI no panic requested is counted and the CPU goes on", body: { t in
            let cpus = SMP.online
            guard let target = cpus.nth(cpus.count - 1), target != PerCPU.currentNumber else {
                t.skip("ordinary", inv: "E6", reason: .needs2CPUs, "unrequested NMIs to another CPU: needs 2 CPUs")
                t.skip("went-on", inv: "E6", reason: .needs2CPUs, "the other CPU goes on after them: needs 2 CPUs")
                return
            }
            let before = StopCPUs.ordinaryNMIs![target].load(ordering: .relaxed)
            // One at a time: a second NMI that arrives before the first was taken
            // is merged with it (one pending NMI per CPU), so wait for each.
            for k in 1...3 {
                LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, delivery: .nmi)
                _ = spinUntil(milliseconds: 1000) { StopCPUs.ordinaryNMIs![target].load(ordering: .relaxed) &- before >= UInt64(k) }
            }
            let counted = StopCPUs.ordinaryNMIs![target].load(ordering: .relaxed) &- before
            // Still alive: it answers a waited IPI message.
            var answered = false
            if let tk = IPIQueue.send(to: target, { _, _ in }) { IPIQueue.wait(tk); answered = true }
            let stoppedNow = StopCPUs.stoppedMask.contains(target)
            t.expect("ordinary", inv: "E6", counted, .equals(3)) { l in
                l.write("3 unrequested NMIs to CPU "); l.dec(target); l.write(": "); l.dec(counted); l.write(" counted as ordinary")
            }
            t.expect("went-on", inv: "E6", answered && !stoppedNow) { l in
                l.write("CPU "); l.dec(target); l.write(answered && !stoppedNow ? " went on (answered an IPI message, not stopped)" : " STOPPED")
            }
        })
}
