import Synchronization

// Lock paths after a panic (docs/panic.md, E3, E4): every lock operation of the
// panic thread returns at once, before any assertion, with the spinlock
// section, critnest, interrupt flag and held-lock count exactly as they were,
// and the lock's own state consistent afterwards.
//
//   panic-lockpaths  (fatal) the panic is raised in an IPI handler on CPU 0
//                    (interrupt depth 1) while CPU 1 holds a spinlock and a
//                    mutex another thread sleeps on, and the panicking thread
//                    holds a mutex of its own; the dump goes through every
//                    lock path and prints, per step, the lock's state and the
//                    accounting before -> after.
//   laggard          part of panic-lockheld's dump: when CPU 1 did not stop
//                    (only with the control bug.panic_stop_ipi=1, the fixed
//                    IPI it cannot take), the dump goes through its spinlock
//                    and mutex, lets it release both for real, releases its own
//                    passes, and prints the ticket counters at each point.

enum PanicLockSuites {
    // MARK: what each step prints

    /// Spinlock section depth, critnest, interrupt flag, held spinlocks.
    static func writeAccounting(_ l: inout FixedLineBuffer) {
        l.write("spin "); l.dec(SpinlockSection.depth)
        l.write(" crit "); l.dec(Thread.currentIfAny?.critnest ?? -1)
        l.write(" IF "); l.write(CPU.interruptsEnabled ? "on" : "off")
        l.write(" locks "); l.dec(PerCPU.locksHeld)
    }

    static func writeCounters(_ raw: borrowing TicketLock, _ l: inout FixedLineBuffer) {
        l.write("next "); l.dec(UInt64(raw.nextTicket.load(ordering: .relaxed)))
        l.write(" serving "); l.dec(UInt64(raw.nowServing.load(ordering: .relaxed)))
        l.write(" owner "); l.dec(Int(raw.owner.load(ordering: .relaxed)))
        l.write(" passes "); l.dec(raw.bypassPasses)
    }

    /// What a step compares before and after: tickets taken and not yet
    /// served (0 = free), owner, passes (absolute counters move on a real
    /// acquisition and release, which is fine).
    static func writeLockState(_ raw: borrowing TicketLock, _ l: inout FixedLineBuffer) {
        let outstanding = raw.nextTicket.load(ordering: .relaxed) &- raw.nowServing.load(ordering: .relaxed)
        l.dec(UInt64(outstanding)); l.write(" outstanding, owner "); l.dec(Int(raw.owner.load(ordering: .relaxed)))
        l.write(", passes "); l.dec(raw.bypassPasses)
    }

    static func writeMutex(_ m: Mutex?, _ l: inout FixedLineBuffer) {
        l.write("holder ")
        if let h = m?.holder { l.write(h.name) } else { l.write("none") }
        l.write(", "); l.dec(m?.sleepers ?? -1); l.write(" sleeping")
    }

    static func writeState(_ td: Thread?, _ l: inout FixedLineBuffer) {
        guard let td else { l.write("none"); return }
        switch td.state {
        case .embryo: l.write("embryo")
        case .runnable: l.write("runnable")
        case .running: l.write("running")
        case .sleeping: l.write("sleeping")
        case .migrating: l.write("migrating")
        case .exited: l.write("exited")
        }
    }

    /// One step: `lockpaths: WHAT: STATE -> STATE; accounting A -> A`, then
    /// its check `balanced.ID` (E4): both sides equal.
    static func step(_ t: inout TestContext, _ id: StaticString, _ what: StaticString, state: (inout FixedLineBuffer) -> Void,
                     _ body: () -> Void) {
        var before = FixedLineBuffer()
        var accountingBefore = FixedLineBuffer()
        state(&before)
        writeAccounting(&accountingBefore)
        body()
        var after = FixedLineBuffer()
        var accountingAfter = FixedLineBuffer()
        state(&after)
        writeAccounting(&accountingAfter)
        Console.line { l in
            l.write("lockpaths: "); l.write(what); l.write(": "); before.withBytes { l.write(bytes: $0) }; l.write(" -> "); after.withBytes { l.write(bytes: $0) }
            l.write("; accounting "); accountingBefore.withBytes { l.write(bytes: $0) }; l.write(" -> "); accountingAfter.withBytes { l.write(bytes: $0) }
        }
        let balanced = same(before, after) && same(accountingBefore, accountingAfter)
        t.expect("balanced", part: id, inv: "E4", balanced) { l in
            l.write("E4: "); l.write(what); l.write(balanced ? ": the lock's state and the accounting as they were" : ": the lock's state or the accounting CHANGED")
        }
    }

    static func same(_ a: FixedLineBuffer, _ b: FixedLineBuffer) -> Bool {
        a.withBytes { x in b.withBytes { y in x.count == y.count && x.elementsEqual(y) } }
    }

    static func inside(_ body: (inout FixedLineBuffer) -> Void) {
        Console.line { l in l.write("lockpaths:   inside: "); body(&l) }
    }

    // MARK: panic-lockpaths

    static let freeLock = SpinLock("panic-lockpaths free")
    nonisolated(unsafe) static var heldMutex: Mutex? = nil        // CPU 1's thread holds it
    nonisolated(unsafe) static var ownMutex: Mutex? = nil         // the panicking thread holds it
    nonisolated(unsafe) static var freeMutex: Mutex? = nil
    nonisolated(unsafe) static var sleeper: Thread? = nil
    nonisolated(unsafe) static var rendezvousRuns = 0

    static let lockPaths = TestSuite(name: "panic-lockpaths", kind: .fatal,
        summary: "a panic in an IPI handler: every lock path of the dump returns at once, accounting balanced", body: { t in
            let cpus = SMP.online
            guard cpus.count >= 3, let b = cpus.nth(1), let s = cpus.nth(2) else {
                t.skip("run", inv: "E4", reason: .needs3CPUs, "needs 3 CPUs"); return
            }
            let m = Mutex("panic-lockpaths held")
            heldMutex = m
            ownMutex = Mutex("panic-lockpaths own")
            freeMutex = Mutex("panic-lockpaths free")
            Thread.spawn("lock-holder", cpu: b, {
                PanicLockSuites.heldMutex?.lock()           // held for good
                PanicSuites.suiteLock.lock()                // interrupts off from here on
                PanicSuites.lockHeld.store(true, ordering: .releasing)
                while true { PanicSuites.beat(); CPU.pause() }
            })
            _ = spinUntil(milliseconds: 2000) { PanicSuites.lockHeld.load(ordering: .acquiring) }
            sleeper = Thread.spawn("mutex-sleeper", cpu: s, {
                PanicLockSuites.heldMutex?.lock()           // sleeps: the holder never lets go
                PanicLockSuites.heldMutex?.unlock()
            })
            _ = spinUntil(milliseconds: 2000) { m.sleepers == 1 }
            ownMutex?.lock()                                // this thread's, when the panic comes
            startHeartbeatsAround(b, s)
            Panic.dumpHook = { PanicLockSuites.goThroughEveryLockPath(b) }
            Console.line { l in
                l.write("panic-lockpaths: CPU "); l.dec(b); l.write(" holds a spinlock and a mutex CPU "); l.dec(s)
                l.write("'s thread sleeps on; CPU "); l.dec(s); l.write(" makes CPU 0 panic in an IPI handler")
            }
            let me = PerCPU.currentNumber
            Thread.spawn("panic-sender", cpu: s, {
                // Only once this CPU is in the loop below: a message that came
                // earlier could be run in thread context (a critical_exit
                // processes pending messages), not in the IPI handler.
                while !PanicLockSuites.waitingForThePanic.load(ordering: .acquiring) { CPU.pause() }
                IPIQueue.send(to: me, { _, _ in panic("panic-lockpaths: raised in an IPI handler") })
                while true { PanicSuites.beat(); CPU.pause() }
            })
            waitingForThePanic.store(true, ordering: .releasing)
            while true { CPU.pause() }                      // interrupts on: the IPI handler runs the message here
        })
    static let waitingForThePanic = Atomic<Bool>(false)

    /// Heartbeat threads on every CPU but this one, `b` and `s`.
    static func startHeartbeatsAround(_ b: Int, _ s: Int) {
        PanicSuites.startHeartbeats(except: CPUMask(b).union(CPUMask(s)))
    }

    /// Bare lock() and unlock() calls throughout: each step observes the lock
    /// between them, which withLock would hide. Steps that could only go wrong
    /// by changing a state come first, those that could end in a second panic
    /// (or a wait) last.
    static func goThroughEveryLockPath(_ b: Int) {
        var t = TestContext()                               // checks inside the dump (PanicSuites.dumpChecks)
        t.begin("panic-lockpaths")
        step(&t, "held-spinlock", "spinlock CPU 1 holds", state: { writeLockState(PanicSuites.suiteLock.raw, &$0) }) {
            PanicSuites.suiteLock.lock()                    // held by stopped CPU 1: a pass, no ticket
            PanicSuites.suiteLock.unlock()                  // the pass: a no-op
        }
        var tried = false
        step(&t, "held-trylock", "try-lock of the spinlock CPU 1 holds", state: { writeLockState(PanicSuites.suiteLock.raw, &$0) }) {
            tried = PanicSuites.suiteLock.tryLock()
            if tried { PanicSuites.suiteLock.unlock() }
        }
        t.expect("trylock", inv: "E4", tried) { l in
            l.write("E4: a try-lock of the spinlock stopped CPU 1 holds "); l.write(tried ? "succeeded" : "FAILED")
        }
        step(&t, "free-spinlock", "a free spinlock, taken for real", state: { writeLockState(freeLock.raw, &$0) }) {
            freeLock.lock()                                 // free: a real acquisition
            inside { l in writeCounters(freeLock.raw, &l) }
            freeLock.unlock()                               // and a real release
        }
        step(&t, "own-spinlock", "a spinlock this CPU holds, taken again", state: { writeLockState(freeLock.raw, &$0) }) {
            freeLock.lock()                                 // real
            freeLock.lock()                                 // held by this CPU: passed through
            freeLock.unlock()                               // the pass: a no-op
            inside { l in writeCounters(freeLock.raw, &l) }
            freeLock.unlock()                               // the real release
        }
        let m = heldMutex
        step(&t, "held-mutex", "mutex CPU 1 holds, a sleeper waiting", state: { l in
            writeMutex(m, &l); l.write(", sleeper "); writeState(sleeper, &l)
        }) {
            m?.lock()                                       // busy: a pass, the holder keeps it
            m?.unlock()                                     // a no-op: nobody woken
        }
        step(&t, "free-mutex", "a free mutex, taken for real", state: { writeMutex(freeMutex, &$0) }) {
            freeMutex?.lock()
            inside { l in writeMutex(freeMutex, &l) }
            freeMutex?.unlock()
        }
        step(&t, "own-mutex", "mutex this thread holds", state: { writeMutex(ownMutex, &$0) }) {
            ownMutex?.lock()                                // ours already: a pass, no recursion panic
            ownMutex?.unlock()                              // the pass: ours still
        }
        var waited = true
        step(&t, "held-lockinturn", "lockInTurn of the spinlock CPU 1 holds", state: { writeLockState(PanicSuites.suiteLock.raw, &$0) }) {
            let t0 = TSC.now
            waited = PanicSuites.suiteLock.lockInTurn {
                if TSC.nanoseconds(TSC.now &- t0) > 200_000_000 { panic("panic-lockpaths: lockInTurn waited 200 ms for a stopped CPU") }
                CPU.pause()
            }
            PanicSuites.suiteLock.unlock()
        }
        t.expect("lockinturn", inv: "E4", !waited) { l in
            l.write("E4: lockInTurn of the spinlock stopped CPU 1 holds "); l.write(waited ? "WAITED" : "returned at once")
        }
        var depth = 0
        step(&t, "rendezvous", "rendezvous in a spinlock section at interrupt depth 1", state: { writeLockState(freeLock.raw, &$0) }) {
            freeLock.lock()                                 // a spinlock held across the rendezvous
            depth = PerCPU.interruptDepth
            Rendezvous.runOnAll(action: { _ in PanicLockSuites.rendezvousRuns += 1 })
            freeLock.unlock()
        }
        let runs = UInt64(rendezvousRuns)
        t.expect("rendezvous", inv: "E4", runs, .equals(1)) { l in
            l.write("E4: at interrupt depth "); l.dec(depth); l.write(" with a spinlock held, the rendezvous ran on ")
            l.dec(runs); l.write(" CPU (no wait for the stopped ones)")
        }
        Console.print("lockpaths: done")
    }

    // MARK: the laggard (panic-lockheld's dump)

    /// 1: the dump asks the lock holder to release; 2: spinlock released; 3: mutex too.
    static let laggardStage = Atomic<Int>(0)

    /// The lock holder's loop (CPU 1 in panic-lockheld): spins with interrupts
    /// off, its heartbeat counting, and releases PanicSuites.suiteLock and `m` for
    /// real when the dump asks, which it can only do if it did not stop.
    static func holdUntilAsked(_ m: Mutex?) -> Never {
        while true {
            PanicSuites.beat()
            if laggardStage.load(ordering: .acquiring) == 1 {
                PanicSuites.suiteLock.unlock()                           // the outer section keeps interrupts off
                laggardStage.store(2, ordering: .releasing)
                m?.unlock()
                laggardStage.store(3, ordering: .releasing)
            }
            CPU.pause()
        }
    }

    /// The panic thread goes through the spinlock (PanicSuites.suiteLock) and the mutex CPU `b` still
    /// holds, lets `b` release them for real, releases its passes: the ticket
    /// counters must end consistent (next = serving, no owner, no pass) and
    /// the mutex free; then both are taken and released for real.
    static func laggard(_ b: Int, _ m: Mutex?) {
        var t = TestContext()                           // checks inside the dump (PanicSuites.dumpChecks)
        t.begin("panic-lockheld")
        Console.line { l in
            l.write("laggard: CPU "); l.dec(b); l.write(" did not stop and holds the lock: "); writeCounters(PanicSuites.suiteLock.raw, &l)
            l.write("; mutex "); writeMutex(m, &l)
        }
        PanicSuites.suiteLock.lock()                                     // held by a live CPU: passed through
        m?.lock()
        Console.line { l in l.write("laggard: went through both: "); writeCounters(PanicSuites.suiteLock.raw, &l); l.write("; mutex "); writeMutex(m, &l) }
        laggardStage.store(1, ordering: .releasing)
        _ = spinUntil(milliseconds: 500, processing: false) { laggardStage.load(ordering: .acquiring) == 3 }
        let stage = laggardStage.load(ordering: .acquiring)
        Console.line { l in
            l.write("laggard: after CPU "); l.dec(b); l.write("'s release: ")
            writeCounters(PanicSuites.suiteLock.raw, &l); l.write("; mutex "); writeMutex(m, &l)
        }
        t.expect("laggard-released", inv: "E4", UInt64(stage), .equals(3)) { l in
            l.write("E4: CPU "); l.dec(b); l.write(stage == 3 ? " released both for real while the dump was inside them"
                                                     : " did NOT release both (stage below 3)")
        }
        m?.unlock()                                     // our passes: no-ops
        PanicSuites.suiteLock.unlock()
        let consistent = !PanicSuites.suiteLock.raw.isLocked && PanicSuites.suiteLock.raw.owner.load(ordering: .relaxed) == -1
            && PanicSuites.suiteLock.raw.bypassPasses == 0 && m?.holder == nil
        Console.line { l in
            l.write("laggard: our unlocks: "); writeCounters(PanicSuites.suiteLock.raw, &l); l.write("; mutex "); writeMutex(m, &l)
        }
        t.expect("laggard-consistent", inv: "E4", consistent) { l in
            l.write(consistent ? "E4: the dump's unlocks released its passes only: spinlock and mutex free, no pass left"
                               : "E4: after the dump's unlocks the spinlock or the mutex is INCONSISTENT")
        }
        PanicSuites.suiteLock.lock()                                     // free now: taken for real
        let mine = PanicSuites.suiteLock.raw.isHeld(by: Int32(truncatingIfNeeded: PerCPU.currentNumber))
        PanicSuites.suiteLock.unlock()
        m?.lock()
        let mutexMine = m?.holder === Thread.currentIfAny
        m?.unlock()
        Console.line { l in
            l.write("laggard: took both again and released them: "); writeCounters(PanicSuites.suiteLock.raw, &l)
            l.write("; mutex "); writeMutex(m, &l)
        }
        t.expect("laggard-retake", inv: "E4", mine && mutexMine) { l in
            l.write("E4: afterwards both taken for real: spinlock "); l.write(mine ? "ours" : "NOT ours"); l.write(", mutex ")
            l.write(mutexMine ? "ours" : "NOT ours")
        }
    }
}
