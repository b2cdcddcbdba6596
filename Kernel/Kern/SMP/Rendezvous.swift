import Synchronization

// SMP rendezvous (FreeBSD smp_rendezvous_cpus, subr_smp.c; docs/rendezvous.md):
// every CPU in a set runs setup, then action, then teardown, in lock step.
//
// Who writes what:
//   the initiator, holding `lock`   the parameters, the phase counters' reset,
//                                   the pending mask (before its IPIs)
//   each participant                its pending bit (test-and-clear), the four
//                                   phase counters (atomic adds)
// The parameters are read only after the add-acquire on counter 0; a participant
// never touches the shared state after its add to counter 3 (the initiator may
// start the next rendezvous at once).
//
// The action routine runs in the IPI handler, before EOI. The seed-002 rule (C2):
// it raises critnest DIRECTLY, remembers owepreempt, lowers critnest directly
// without looking at owepreempt, and asserts owepreempt did not change. An
// ordinary critical section would switch from the IPI handler when the IPI landed
// in an interrupted critical_exit's window (critnest 0, owepreempt 1) and the
// action took and released a spinlock. The trap wrapper's raw section covers
// this vector too; only the negative controls exempt it
// (PerCPU.installInterruptAccounting), so that this routine can put the bug
// back: bug.rendezvous_no_critical (no section at all: the 2011 code) or
// bug.rendezvous_plain_critical (the ordinary section FreeBSD rejected).
//
// Deadlock freedom: one spin mutex serializes rendezvous (and so TLB shootdowns);
// it is taken in ticket order with interrupts on while waiting (fair: no
// initiator starves however many CPUs compete), and
// every loop that spins with interrupts off on another CPU's progress also runs
// a pending rendezvous (`servicePending`), so a held or waiting CPU still joins.

typealias RendezvousFunction = @convention(c) (UInt64) -> Void

enum Rendezvous {
    /// A setup or teardown step. FreeBSD's NULL is `.barrierOnly`; its
    /// smp_no_rendezvous_barrier sentinel is `.noBarrier`.
    enum Step {
        case noBarrier                       // no function, no barrier
        case barrierOnly                     // a barrier, no function
        case run(RendezvousFunction)         // the function, then (setup) or before it (teardown) a barrier
    }

    static let lock = SpinLock("smp rendezvous")
    /// What a halted mutex waiter waits on (HaltingWait): any unique non-zero value.
    static let mutexChannel: UInt = 0x5244_564D
    /// CPUs whose part in the current rendezvous has not started (bit = CPU).
    static let pending = Atomic<UInt64>(0)
    /// Phase counters: 0 entry, 1 setup done, 2 action done, 3 exit.
    static let entered = Atomic<UInt32>(0)
    static let setupDone = Atomic<UInt32>(0)
    static let actionDone = Atomic<UInt32>(0)
    static let exited = Atomic<UInt32>(0)
    // The parameters (written by the initiator before counter 0 is released).
    nonisolated(unsafe) static var participants: UInt32 = 0
    nonisolated(unsafe) static var setup = Step.noBarrier
    nonisolated(unsafe) static var action: RendezvousFunction? = nil
    nonisolated(unsafe) static var teardown = Step.noBarrier
    nonisolated(unsafe) static var argument: UInt64 = 0
    /// Rendezvous started (for the suites and the monitor).
    static let generation = Atomic<UInt64>(0)
    /// Statistics: acquisitions that found the mutex busy; parts run from a spin loop
    /// (`servicePending`) rather than from the IPI handler.
    static let mutexWaits = Atomic<UInt64>(0)
    static let servicedWhileSpinning = Atomic<UInt64>(0)
    /// Rendezvous IPIs whose handler found its pending bit already taken (by a
    /// spin loop on that CPU, or the IPI of an earlier rendezvous).
    static let ipiFoundBitTaken = Atomic<UInt64>(0)
    /// Initiators queued behind the one holding the mutex (a hint, for the suites).
    static var mutexWaiters: UInt32 {
        let next = lock.raw.nextTicket.load(ordering: .relaxed), serving = lock.raw.nowServing.load(ordering: .relaxed)
        return next &- serving &- min(1, next &- serving)
    }
    /// True once another CPU is online: before that everything runs locally.
    /// Read from the online mask at each use (no copy that a late AP could
    /// leave stale).
    static var smpStarted: Bool { SMP.online.count > 1 }

    /// Per CPU: 1 while it runs its part (written by that CPU, interrupts off).
    nonisolated(unsafe) static var inPart: UnsafeMutablePointer<UInt8>? = nil
    /// Test hook (`rendezvous.refuse_sends=N`): the first N rendezvous IPIs are
    /// reported refused by the local APIC without being sent.
    static let refuseSends = Atomic<Int>(0)
    /// Sends the local APIC refused (or the hook did), each retried.
    static let refusedSends = Atomic<UInt64>(0)

    static func initialize() {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: PerCPU.maxCPUs)
        p.initialize(repeating: 0, count: PerCPU.maxCPUs)
        inPart = p
        refuseSends.store(max(0, KernelOptions.int("rendezvous.refuse_sends", default: 0)), ordering: .relaxed)
        Traps.register(vector: Vectors.rendezvous) { _ in
            // C2 outside the action routine too: this handler runs inside the
            // trap wrapper's raw section (PerCPU.installInterruptAccounting),
            // unless the negative control exempts the vector.
            if !BugKnobs.rendezvousPlainCritical && !BugKnobs.rendezvousNoCritical, let td = Thread.currentIfAny, td.critnest == 0 {
                panic("C2: the rendezvous IPI handler runs outside the trap's raw section")
            }
            // False: a spin loop on this CPU took the bit first (the race for
            // the pending bit, lost by the IPI; counted for the suites).
            if !Rendezvous.participate() { Rendezvous.ipiFoundBitTaken.wrappingAdd(1, ordering: .relaxed) }
            LocalAPIC.eoi()                      // after the action, as FreeBSD's handler
        }
    }

    /// smp_rendezvous: every online CPU.
    @discardableResult
    static func runOnAll(setup: Step = .noBarrier, action: RendezvousFunction?, teardown: Step = .noBarrier,
                         _ arg: UInt64 = 0) -> UInt64 {
        run(cpus: SMP.online, setup: setup, action: action, teardown: teardown, arg)
    }

    /// smp_rendezvous_cpus. Thread context, no spinlock held. Returns how many
    /// tries for the mutex failed (this caller met another initiator).
    @discardableResult
    static func run(cpus map: CPUMask, setup: Step = .noBarrier, action: RendezvousFunction?,
                    teardown: Step = .noBarrier, _ arg: UInt64 = 0) -> UInt64 {
        // The panic test first (E4): the panic thread may be in an interrupt
        // handler or hold spinlocks, and must not assert into a second panic.
        let stopped = Panic.schedulerStopped
        if !stopped && PerCPU.inInterrupt { panic("rendezvous started in interrupt context") }
        if !stopped && PerCPU.locksHeld != 0 {
            panic("rendezvous started while holding a spinlock") { $0.dec(PerCPU.locksHeld); $0.write(" held") }
        }
        if !stopped { checkNotNested() }
        guard smpStarted && !stopped else {
            // Before the APs run, or after a panic stopped them: here only.
            let flags = CPU.saveFlagsAndDisableInterrupts()
            generation.wrappingAdd(1, ordering: .relaxed)
            if case .run(let f) = setup { f(arg) }
            action?(arg)
            if case .run(let f) = teardown { f(arg) }
            CPU.restoreFlags(flags)
            return 0
        }
        let waits = acquireLock()                // interrupts off from here to unlock
        let me = PerCPU.currentNumber
        let map = map.intersection(SMP.online)
        participants = UInt32(map.count)
        self.setup = setup; self.action = action; self.teardown = teardown; argument = arg
        setupDone.store(0, ordering: .relaxed); actionDone.store(0, ordering: .relaxed)
        exited.store(0, ordering: .relaxed)
        generation.wrappingAdd(1, ordering: .relaxed)
        entered.store(0, ordering: .releasing)   // counter 0 last: publishes the rest
        pending.store(map.bits, ordering: .sequentiallyConsistent)
        map.forEach { cpu in
            if cpu != me { sendIPI(to: cpu) }
        }
        if map.contains(me) { participate() }
        // Every participant's part is done before the caller goes on (a TLB
        // shootdown's flushes, any action's effects), and before the next
        // initiator may overwrite the parameters a slow participant still reads.
        var dog = SpinWatchdog("rendezvous: participants did not all exit")
        while !BugKnobs.rendezvousNoExitWait && exited.load(ordering: .acquiring) < participants {   // the control: no wait
            CPU.pause()
            dog.check()
        }
        // C4: every participant took its bit before it entered, and only the
        // initiator sets bits: a bit set now was cleared and then set again
        // by a claim that was not one atomic test-and-clear. (Not under
        // bug.rendezvous_no_exit_wait: there the parts have not all run.)
        if !BugKnobs.rendezvousNoExitWait && pending.load(ordering: .relaxed) & map.bits != 0 {
            panic("C4: a participant's pending bit was set again after its part ran")
        }
        // W1: the unlock's locked add is the fence before the waiters' slots;
        // they are woken before the spinlock section can switch this thread out.
        // Not gated on `halting`: a waiter decided to halt from its own, earlier
        // read of it, and the benchmarks switch it at run time; a slot is
        // non-zero only if somebody really halted.
        lock.unlockInTurn {
            if !BugKnobs.rendezvousGatedWake || HaltingWait.halting[WaitKind.rendezvousMutex.rawValue] {
                HaltingWait.wakeAll(channel: mutexChannel)
            }
        }
        return waits
    }

    /// A rendezvous started from a rendezvous function, an IPI message or a
    /// cpusync function could never finish, or not always (its participants,
    /// the message's sender or the cpusync's held CPUs wait for this CPU with
    /// interrupts off): say so at once, instead of a watchdog's "did not all
    /// exit" 10 s later. Read with interrupts off: the answers are this CPU's.
    /// The cpusync case includes the caller's own call: a CPU the cpusync
    /// holds may own the rendezvous mutex or hold the next ticket for it
    /// (lockInTurn waits with interrupts on), and the caller would then queue
    /// behind a CPU that waits for the caller's release (docs/rendezvous.md,
    /// "Who may start one").
    private static func checkNotNested() {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let inAction = inPart.map { $0[PerCPU.currentNumber] != 0 } ?? false
        let inMessage = IPIQueue.processingDepth != 0
        let inCPUSync = (Thread.currentIfAny?.cpusyncDepth ?? 0) != 0
        CPU.restoreFlags(flags)
        if inAction { panic("rendezvous started from inside a rendezvous setup, action or teardown") }
        if inMessage { panic("rendezvous started from an IPI message function") }
        if inCPUSync { panic("rendezvous started from inside a cpusync") }
    }

    /// The rendezvous IPI to `cpu`. An xAPIC whose previous IPI stays pending
    /// refuses the send (LocalAPIC.sendIPI is false): retried, since the
    /// participant would otherwise never come and every other one would wait
    /// at the entry barrier. A duplicate IPI is harmless: the pending bit is
    /// taken once (C4).
    private static func sendIPI(to cpu: Int) {
        for _ in 0..<8 {
            if refuseSends.load(ordering: .relaxed) > 0 && refuseSends.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
                refusedSends.wrappingAdd(1, ordering: .relaxed)       // test hook: refused, not sent
                continue
            }
            if LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.rendezvous)) { return }
            refusedSends.wrappingAdd(1, ordering: .relaxed)
        }
        panic("rendezvous: the local APIC refused the IPI to CPU") { $0.dec(cpu); $0.write(" 8 times") }
    }

    /// Takes the rendezvous mutex, in ticket order. While it waits, interrupts
    /// stay as the caller had them and a pending rendezvous is run: a CPU that
    /// waits here must keep answering, or two initiators would wait for each
    /// other. The watchdog watches the queue, not this wait: with 63 initiators
    /// ahead a wait is long but fine as long as the served ticket moves.
    /// Returns 1 if the mutex was busy (this initiator met another).
    private static func acquireLock() -> UInt64 {
        var dog = SpinWatchdog("rendezvous: mutex held by one initiator too long")
        var served = lock.raw.nowServing.load(ordering: .relaxed)
        let waited = lock.lockInTurn {
            servicePending()
            // Halts until the next unlock (or our part in a rendezvous) wakes us.
            HaltingWait.pass(.rendezvousMutex, channel: mutexChannel) {
                lock.raw.nowServing.load(ordering: .relaxed) != served || pending.load(ordering: .relaxed) != 0
            }
            let now = lock.raw.nowServing.load(ordering: .relaxed)
            if now != served { served = now; dog = SpinWatchdog("rendezvous: mutex held by one initiator too long") }
            dog.check()
        }
        if waited { mutexWaits.wrappingAdd(1, ordering: .relaxed) }
        return waited ? 1 : 0
    }

    /// Runs this CPU's part of a pending rendezvous, if there is one. Called by
    /// every loop that spins with interrupts off on another CPU's progress.
    @inline(__always)
    static func servicePending() {
        if pending.load(ordering: .relaxed) != 0 && participate() {
            servicedWhileSpinning.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// smp_rendezvous_action: this CPU's part, at most once per rendezvous (the
    /// pending bit is taken by whoever gets here first: the IPI handler, a spin
    /// loop, or the initiator itself).
    @discardableResult
    static func participate() -> Bool {
        // Interrupts off BEFORE the bit is taken: between taking it and its part,
        // this CPU must not be interrupted into a switch (every other participant
        // spins at the entry barrier for it).
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let me = PerCPU.currentNumber
        let bit = CPUMask.bit(me)
        // One atomic test-and-clear: other CPUs clear their own bits of the
        // same word at the same time, and a clear lost to a plain
        // load-then-store would hand a CPU its part a second time (C4).
        let mine: Bool
        if BugKnobs.rendezvousDoubleClaim {
            mine = pending.load(ordering: .acquiring) & bit != 0           // BUG: tested, never taken
        } else if BugKnobs.rendezvousRacyClaim {
            let seen = pending.load(ordering: .acquiring)                  // BUG: not atomic (window widened)
            mine = seen & bit != 0
            if mine { TSC.spin(cycles: 2_000); pending.store(seen & ~bit, ordering: .releasing) }
        } else {
            mine = pending.bitwiseAnd(~bit, ordering: .acquiringAndReleasing).oldValue & bit != 0
        }
        guard mine else {
            CPU.restoreFlags(flags)
            return false
        }
        inPart![me] = 1
        let td = Thread.currentIfAny
        // C2: the raw section never looks at owepreempt on the way out. The
        // controls: an ordinary section (its exit switches), or none (the
        // action's own spinlock exit switches).
        let section = BugKnobs.rendezvousNoCritical ? 0 : BugKnobs.rendezvousPlainCritical ? 1 : 2
        if section == 1 { CriticalSection.enter() } else if section == 2 { CriticalSection.enterRaw() }
        let owed = td?.owepreempt ?? false
        let gen = generation.load(ordering: .relaxed)
        KTrace.record(.rdvEnter, gen)
        // Entry barrier; the parameters are read only after it (acquire).
        let arrived = entered.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        let n = participants
        // C4: each CPU's bit is taken once, so no more parts than participants
        // enter (a lost clear of the bit would let one CPU enter twice). Not
        // under bug.rendezvous_no_exit_wait: there a late part spills into the
        // next rendezvous, which that control's suite reports.
        if arrived > n && !BugKnobs.rendezvousNoExitWait { panic("C4: more parts entered a rendezvous than it has participants") { $0.dec(Int(arrived)); $0.write(" of "); $0.dec(Int(n)) } }
        spin(until: entered, reaches: n)
        let (s, a, t, arg) = (setup, action, teardown, argument)
        switch s {
        case .noBarrier: break
        case .barrierOnly: setupDone.wrappingAdd(1, ordering: .acquiringAndReleasing); spin(until: setupDone, reaches: n)
        case .run(let f): KTrace.record(.rdvSetup, gen); f(arg); setupDone.wrappingAdd(1, ordering: .acquiringAndReleasing); spin(until: setupDone, reaches: n)
        }
        if a != nil { KTrace.record(.rdvAction, gen) }
        a?(arg)
        switch t {
        case .noBarrier: break
        case .barrierOnly: actionDone.wrappingAdd(1, ordering: .acquiringAndReleasing); spin(until: actionDone, reaches: n)
        case .run(let f): actionDone.wrappingAdd(1, ordering: .acquiringAndReleasing); spin(until: actionDone, reaches: n); KTrace.record(.rdvTeardown, gen); f(arg)
        }
        KTrace.record(.rdvExit, gen)
        // Exit: from here on the shared state belongs to the next rendezvous.
        exited.wrappingAdd(1, ordering: .releasing)
        if section == 1 { CriticalSection.exit() } else if section == 2 { CriticalSection.exitRaw() }
        if let td, td.owepreempt != owed { panic("C2: a rendezvous action changed owepreempt") }
        inPart![me] = 0
        CPU.restoreFlags(flags)
        return true
    }

    private static func spin(until counter: borrowing Atomic<UInt32>, reaches n: UInt32) {
        var dog = SpinWatchdog("rendezvous: a participant never reached a barrier")
        while counter.load(ordering: .acquiring) < n {
            CPU.pause()
            dog.check()
        }
    }
}
