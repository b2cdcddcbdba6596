import Synchronization

// The LWKT-style per-CPU thread scheduler (after DragonFly's lwkt_thread.c).
//
// Each CPU owns a run queue of its kernel threads by priority (Core/RunQueue) and
// touches it only itself, with interrupts off: no lock. Another CPU that wants a
// thread to run here (a wake-up, a new thread, a hand-off) sends this CPU an IPI
// queue message (Kern/SMP/IPIQueue.swift) and this CPU queues the thread itself.
//
// Switch rules, asserted in `switchAway` (docs/critical-sections.md):
//   C1  never from interrupt context (per-CPU interrupt depth is 0);
//       never while holding a spinlock (per-CPU held-lock count is 0);
//       never from inside IPI message processing (a handler that slept would
//       leave this CPU's processing depth above 0 and its poll latch set: D5).
// Preemption: `requestPreemption` sets owepreempt on the running thread; it is
// taken at once if allowed, else by the outermost critical_exit (docs/critical-sections.md)
// or on the way out of the interrupt that requested it.

final class CPUScheduler {
    let cpu: Int
    var runQueue = RunQueue<Thread>()
    /// Runs when nothing else can; never on the run queue.
    var idle: Thread! = nil
    /// Strong reference to the running thread (gs:16 holds it unretained).
    var running: Thread! = nil
    /// A thread that exited on this CPU; its stack is freed after switching away.
    var zombie: Thread? = nil
    /// Threads with a timed sleep, scanned by this CPU's tick.
    var timedSleepers: Thread? = nil
    let switches = Atomic<UInt64>(0)
    let preemptions = Atomic<UInt64>(0)
    /// Threads queued or running here (not idle), published by this CPU's
    /// tick; other CPUs read it as a hint (the balancer).
    let load = Atomic<Int>(0)
    /// Ticks that found the idle thread running (the monitor's idle share).
    let idleTicks = Atomic<UInt64>(0)

    init(cpu: Int) { self.cpu = cpu }
}

enum Scheduler {
    nonisolated(unsafe) static var perCPU: [CPUScheduler] = []

    static var mine: CPUScheduler { perCPU[PerCPU.currentNumber] }
    static var current: Thread { Thread.current }

    /// Boot CPU, before any AP starts: one scheduler per CPU.
    static func initialize(cpuCount: Int) {
        perCPU = (0..<cpuCount).map { CPUScheduler(cpu: $0) }
    }

    /// Turns the code running on this CPU into its first thread. On the boot CPU
    /// that is the main thread (normal priority) and a separate idle thread is
    /// created; on an AP the boot context itself becomes the idle thread.
    /// The Thread each AP's boot context becomes, made by the boot CPU before
    /// the APs start (index: CPU number). Made on the AP itself, 63 APs started
    /// at once allocated and registered threads together and queued on the heap
    /// and thread-table ticket locks behind descheduled vCPUs: 12 s to bring 64
    /// CPUs up under TCG on 2 host cores, against 0.1 s without.
    nonisolated(unsafe) static var apBootThreads: [Thread?] = []

    static func prepareAPBootThreads(_ cpus: [GlobalData]) {
        apBootThreads = Array(repeating: nil, count: PerCPU.count)
        for cpu in cpus {
            apBootThreads[cpu.id] = Thread(name: "idle", priority: Thread.idlePriority, cpu: cpu.id, stack: cpu.bootStack)
        }
    }

    static func bootstrapThisCPU(isBootCPU: Bool) {
        let s = mine
        let prepared = isBootCPU || s.cpu >= apBootThreads.count ? nil : apBootThreads[s.cpu]
        let td = prepared ?? Thread(name: isBootCPU ? "main" : "idle",
                                    priority: isBootCPU ? Thread.normalPriority : Thread.idlePriority,
                                    cpu: s.cpu, stack: PerCPU.current.bootStack)
        td.state = .running
        td.context.pointee.running = 1
        s.running = td
        GSBase.write(PerCPUHeader.currentThread, UInt64(UInt(bitPattern: Unmanaged.passUnretained(td).toOpaque())))
        if isBootCPU {
            guard let idle = Thread.create("idle", priority: Thread.idlePriority, cpu: s.cpu, { Idle.loop() }) else {
                panic("no memory for the idle thread")
            }
            idle.state = .runnable
            s.idle = idle
        } else {
            s.idle = td
        }
    }

    // MARK: making threads runnable

    /// Makes `td` runnable on its CPU, from any CPU.
    static func schedule(_ td: Thread) {
        td.state = .runnable
        makeRunnableAfterWakeup(td)
    }

    /// Queues a thread whose state is already runnable (a woken one) on its CPU.
    /// "Is it mine?" is asked with interrupts off: a caller preempted and
    /// migrated between the question and the enqueue would queue the thread on
    /// a CPU that does not own it. The answer may be stale by the time a
    /// message gets there (the thread may move first): the message is a WAKE,
    /// and the receiver checks ownership again (`acquire`).
    static func makeRunnableAfterWakeup(_ td: Thread) {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let owner = td.cpu
        if owner == PerCPU.currentNumber {
            enqueueLocal(td)
            CPU.restoreFlags(flags)
        } else {
            CPU.restoreFlags(flags)
            // Test hook (wake-migrate): hold the window between reading the
            // owner and sending open on this thread, so the thread can move first.
            if td.wakeSendDelayCycles != 0 { TSC.spin(cycles: td.wakeSendDelayCycles) }
            sendToOwner(td, wake: true, to: owner)
        }
    }

    /// Owner CPU, interrupts off: queue `td` unless it is running or queued.
    /// B5: only the owner queues a thread; one queued by another CPU would run
    /// on two CPUs at once.
    static func enqueueLocal(_ td: Thread) {
        let s = mine
        if td.cpu != s.cpu {
            let (owner, me, id) = (td.cpu, s.cpu, td.id)     // E7: plain values only
            panic("B5: enqueueLocal: a thread owned by another CPU queued here") { l in
                l.write("thread #"); l.dec(id); l.write(" owned by CPU "); l.dec(owner); l.write(", queued on CPU "); l.dec(me)
            }
        }
        guard td !== s.running, td !== s.idle, td.rqLevel == -1, td.state == .runnable else { return }
        s.runQueue.enqueue(td, level: td.priority)
        if td.priority > s.running.priority || s.running === s.idle { requestPreemption() }
    }

    /// arg2 of the queueing message: bit 32 = a switch-out stamp in the low
    /// half (a hand-off that checks D6), bit 33 = a wake (not a hand-off).
    static let messageHasStamp: UInt64 = 1 << 32
    static let messageIsWake: UInt64 = 1 << 33

    /// Asks the owner CPU (`to`, default the thread's current one) to queue `td`
    /// (an IPI queue message carrying a retained reference; the handler takes
    /// it back). A hand-off (the default: the sender set `cpu` to the target
    /// and the state to migrating) may pass the switch-out stamp the old CPU
    /// will have written once it is done with the thread; a wake only asks
    /// the owner to queue a thread made runnable.
    @discardableResult
    static func sendToOwner(_ td: Thread, expectingSwitchOuts stamp: UInt32? = nil, wake: Bool = false,
                            to cpu: Int? = nil, mode: IPIQueue.Mode = .normal) -> IPITicket? {
        let raw = UInt64(UInt(bitPattern: Unmanaged.passRetained(td).toOpaque()))
        let check = (stamp.map { messageHasStamp | UInt64($0) } ?? 0) | (wake ? messageIsWake : 0)
        let ticket = IPIQueue.send(to: cpu ?? td.cpu, { p, s in Scheduler.acquire(p, s) }, raw, check, mode: mode)
        // No handler will take the reference back: the ring was full (nil), or
        // a panic stopped the scheduler (.dropped, nothing is queued).
        if ticket == nil || ticket?.delivery == .dropped {
            Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).release()
        }
        return ticket
    }

    /// Owner CPU, in IPI processing: queue a thread sent by another CPU (B5).
    ///
    /// A wake may be stale: the thread was made runnable during its own
    /// switch (which queued it itself), then ran and moved before the message
    /// got here. Only the CPU that owns the thread may queue it, so a wake for
    /// a thread owned elsewhere is forwarded to the owner (DragonFly's
    /// _lwkt_schedule re-checks td_gd), and a wake never ends a hand-off: a
    /// migrating thread is queued by its hand-off message only (it would
    /// otherwise run before the old CPU finished with it, D6, or twice).
    ///
    /// A hand-off may arrive while the thread is still running on the old CPU
    /// until that CPU finishes switching away: spin while RUNNING (draining our
    /// own IPI rings, as DragonFly's lwkt_acquire does), then ONE full fence
    /// after the loop, before touching the thread (D6, docs/ipi-queues.md).
    static func acquire(_ raw: UInt64, _ check: UInt64) {
        let td = Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeRetainedValue()
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let me = PerCPU.currentNumber
        // B5 order: `cpu` (an acquire load) before `state`: seeing ourselves
        // as the owner, we see .migrating if the move is not finished yet.
        let owner = td.cpu
        if check & messageIsWake != 0 && owner != me { td.staleWakes.wrappingAdd(1, ordering: .relaxed) }
        // BUG (negative control bug.wake_as_handoff): every message is a
        // hand-off, as before B5 (no re-check of the owner for a wake).
        if check & messageIsWake != 0 && !BugKnobs.wakeAsHandoff {
            if owner != me {
                // nowait: a handler may not wait for room. A refused forward
                // is not needed: a thread fully switched out asleep cannot
                // change CPU, so a wake that finds it gone was made while it
                // was still switching, and that switch queued it.
                let ticket = sendToOwner(td, wake: true, to: owner, mode: .nowait)
                if ticket == nil || ticket?.delivery == .dropped { td.wakeForwardsDropped.wrappingAdd(1, ordering: .relaxed) }
            } else if td.state != .migrating {
                enqueueLocal(td)
            }
            CPU.restoreFlags(flags)
            return
        }
        if td !== mine.running {
            var dog = SpinWatchdog("hand-off: RUNNING never cleared on the old CPU")
            if Volatile.running(td.context) != 0 { td.handoffSpins.wrappingAdd(1, ordering: .relaxed) }
            while Volatile.running(td.context) != 0 {
                IPIQueue.process()
                Rendezvous.servicePending()
                CPU.pause()
                dog.check()
            }
            CPU.mfence()
            if check & messageHasStamp != 0 { checkSwitchStamp(td, UInt32(truncatingIfNeeded: check)) }
        }
        // A hand-off names its target in `cpu` (the switch path writes it
        // after sending, before RUNNING clears: read after the fence).
        if td.cpu != me {
            let (owner, id) = (td.cpu, td.id)                 // E7: plain values only
            panic("B5: hand-off: the thread is owned by another CPU") { l in
                l.write("thread #"); l.dec(id); l.write(" handed to CPU "); l.dec(me); l.write(" but owned by CPU "); l.dec(owner)
            }
        }
        if td.state == .migrating { td.state = .runnable }
        enqueueLocal(td)
        CPU.restoreFlags(flags)
    }

    /// D6 checked after the fence: the old CPU's last writes before it cleared
    /// RUNNING (the saved rsp, then the stamp) must be visible. Behind means
    /// RUNNING was cleared too early (only the negative control does that): count
    /// it, and wait for the real end of the switch so the thread never runs on a
    /// stale stack pointer.
    private static func checkSwitchStamp(_ td: Thread, _ expected: UInt32) {
        guard Volatile.switchOuts(td.context) != expected else { return }
        td.handoffStampBehind.wrappingAdd(1, ordering: .relaxed)
        var dog = SpinWatchdog("hand-off: switch-out stamp never written")
        while Volatile.switchOuts(td.context) != expected { Rendezvous.servicePending(); CPU.pause(); dog.check() }
        CPU.mfence()
    }

    /// Takes a preemption left pending by work done with a raw critical section
    /// (IPI processing), once back in plain thread context.
    static func preemptIfOwed() {
        guard let td = Thread.currentIfAny, td.owepreempt, td.critnest == 0,
              !PerCPU.inInterrupt, SpinlockSection.depth == 0 else { return }
        td.owepreempt = false
        mine.preemptions.wrappingAdd(1, ordering: .relaxed)
        switchAway()
    }

    // MARK: preemption

    /// Asks the running thread to give up the CPU as soon as it may.
    static func requestPreemption() {
        guard let td = Thread.currentIfAny else { return }
        td.owepreempt = true
        if td.critnest == 0 && !PerCPU.inInterrupt && SpinlockSection.depth == 0 {
            td.owepreempt = false
            mine.preemptions.wrappingAdd(1, ordering: .relaxed)
            switchAway()
        } else if td.critnest > 0 {
            KTrace.record(.preemptDefer, UInt64(td.id))
        }
    }

    /// critical_exit found owepreempt with critnest 1 (CriticalSection.swift).
    /// critnest drops to 0 only with interrupts still off: an interrupt arriving
    /// after the switch back but before that store would see critnest 1, leave its
    /// request in owepreempt, and nobody would take it (C3 broken). FreeBSD gets
    /// the same effect from the nested critical_exit of the thread lock.
    static func preemptOwed(_ td: Thread) {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        KTrace.record(.preemptTake, UInt64(td.id))
        td.owepreempt = false
        td.deferredPreemptions &+= 1
        mine.preemptions.wrappingAdd(1, ordering: .relaxed)
        // A move is allowed here only if the caller had interrupts on: with
        // them off it may rely on staying on this CPU past its critical_exit.
        td.switchAtCriticalExit = flags & (1 << 9) != 0
        switchAway()
        td.switchAtCriticalExit = false
        if BugKnobs.c3Window {
            // BUG (negative control): interrupts back on first, then critnest 0,
            // with the window widened past a tick period.
            CPU.restoreFlags(flags)
            TSC.delay(microseconds: 1_500_000 / Clock.hz)
            td.critnest = 0
            return
        }
        td.critnest = 0
        CPU.restoreFlags(flags)
    }

    /// Last step of every interrupt, after the depth went back to 0: take a
    /// preemption the interrupt asked for, unless the thread it interrupted is in
    /// a critical section (its critical_exit will) or holds spinlocks, or the
    /// vector or the interrupted state forbids it (InterruptReturn: never out of
    /// an IST vector - NMI, #DF, #MC - nor into code that ran with interrupts off).
    static func preemptOnInterruptReturn(vector: UInt64, interruptedFlags: UInt64) {
        guard InterruptReturn.mayPreempt(vector: vector, interruptedFlags: interruptedFlags),
              let td = Thread.currentIfAny, td.owepreempt, td.critnest == 0,
              SpinlockSection.depth == 0, !PerCPU.inInterrupt else { return }
        td.owepreempt = false
        mine.preemptions.wrappingAdd(1, ordering: .relaxed)
        td.switchAtInterruptReturn = true        // the interrupted code had interrupts on: it may move
        switchAway()
        td.switchAtInterruptReturn = false
    }

    /// The tick (interrupt context): round robin among equal priorities, and
    /// expired sleep timeouts.
    static func tick() {
        guard perCPU.count > PerCPU.currentNumber, let td = Thread.currentIfAny else { return }
        let s = mine
        Sleep.expireTimeouts(s)
        let busy = td !== s.idle
        if busy { td.ticksRun.wrappingAdd(1, ordering: .relaxed) } else { s.idleTicks.wrappingAdd(1, ordering: .relaxed) }
        s.load.store(s.runQueue.count + (busy ? 1 : 0), ordering: .relaxed)
        if let level = s.runQueue.highestLevel, td === s.idle || level >= td.priority {
            requestPreemption()
        } else if busy && (td.migrateTarget.load(ordering: .relaxed) >= 0
                           || (td.affinity.load(ordering: .relaxed) >= 0 && td.affinity.load(ordering: .relaxed) != s.cpu)) {
            requestPreemption()              // a thread alone here still moves at the next tick
        }
    }

    // MARK: switching

    /// Gives up the CPU. A running or runnable current thread goes back to the
    /// tail of its level; a sleeping, migrating or exited one does not.
    /// The outgoing thread's `switchAtCriticalExit`: the preemption owed to the
    /// outermost critical_exit (preemptOwed) of a caller with interrupts on,
    /// whose critnest of 1 is only the switch's own guard: it may move there.
    /// B6: a preempted thread moves only if the code it returns to had
    /// interrupts on. Code that turned them off may rely on staying on this
    /// CPU (a per-CPU pointer read under cli, a passive reference taken with
    /// interrupts off) even outside a critical section, and a wake-up it makes
    /// (requestPreemption, preemptIfOwed) may switch to the woken thread.
    /// The caller's state is `flags` (yield, requestPreemption, preemptIfOwed)
    /// or, for the two switches made on interrupts off of their own, the flag
    /// they set: switchAtCriticalExit, switchAtInterruptReturn.
    static func switchAway() {
        if Panic.schedulerStopped { return }             // E3: the panic thread never switches
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let h = PerCPU.local                 // interrupts off: this CPU's until the switch
        if h.interruptDepth != 0 { panic("C1: context switch in interrupt context") }
        if h.locksHeld != 0 {
            panic("context switch while holding a spinlock") { $0.dec(PerCPU.locksHeld); $0.write(" held") }
        }
        if IPIQueue.processingDepth(h) != 0 {
            panic("context switch inside IPI message processing (a handler slept or yielded)") {
                $0.write("depth "); $0.dec(IPIQueue.processingDepth)
            }
        }
        let s = perCPU[h.cpuNumber]
        let old = s.running!
        // Only a thread that gives up the CPU while able to run (preempted or
        // yielding) may move here. One going to sleep is SLEEPING - or already
        // RUNNABLE again if a waker got in, and then that waker's message to
        // this CPU is on its way: moving it too would queue it twice.
        let preempted = old.state == .running
        if preempted { old.state = .runnable }
        else if old.state == .runnable && old !== s.idle { old.wokenInSwitch.wrappingAdd(1, ordering: .relaxed) }
        let bound = old.isBound                             // our own flag: trusted here
        let mayMove = BugKnobs.moveWithInterruptsOff || flags & (1 << 9) != 0
            || old.switchAtCriticalExit || old.switchAtInterruptReturn
        if preempted && !mayMove && old.migrateTarget.load(ordering: .relaxed) >= 0 {
            old.keptInterruptsOff.wrappingAdd(1, ordering: .relaxed)
        }
        let moved = preempted && mayMove && old !== s.idle && migrateAtSwitch(old, s, atCriticalExit: old.switchAtCriticalExit)
        if !moved && old.state == .runnable && old !== s.idle && old.rqLevel == -1 {
            s.runQueue.enqueue(old, level: old.priority)
        }
        let next = s.runQueue.popHighest() ?? s.idle!
        if next === old {
            old.state = .running
            CPU.restoreFlags(flags)
            return
        }
        switchTo(next, from: old, s)
        // Back in `old`, on whatever CPU took it. B1: bound, so the same one
        // (counted under the negative control, whose release panics next).
        if bound && PerCPU.currentNumber != s.cpu {
            old.b1Violations.wrappingAdd(1, ordering: .relaxed)
            if !BugKnobs.migrateIgnoresBound { panic("B1: a bound thread resumed on another CPU after a switch") }
        }
        let zombie = afterSwitch()
        CPU.restoreFlags(flags)
        reap(zombie)
    }

    /// The switch path's half of balancing: a runnable thread with a target
    /// CPU is handed there instead of being queued here. B2 is checked HERE,
    /// where only this thread's CPU can look and BOUND is true or false for
    /// certain (seed 001: the pass checked it, the switch did not). A bound
    /// thread stays and its target is dropped: it was chosen from load figures
    /// that are stale by the time the thread unbinds, and the next pass marks
    /// it again if it is still a hog (docs/binding-and-psref.md).
    /// A thread pinned by a critical section or a spinlock section keeps its
    /// target for a later switch: a hog that runs mostly in critical sections
    /// is preempted mostly at its outermost critical_exit (`atCriticalExit`),
    /// which is a switch outside any section, and moves there.
    private static func migrateAtSwitch(_ old: Thread, _ s: CPUScheduler, atCriticalExit: Bool) -> Bool {
        // The monitor's bind wins over the balancer: a pinned thread goes to
        // its affinity only (a pass that raced with bind may have marked it).
        let pinned = old.pinned.load(ordering: .relaxed)
        var target = pinned ? -1 : old.migrateTarget.load(ordering: .acquiring)   // then its mark (targetExpired)
        let fromBalancer = target >= 0
        if !fromBalancer {
            target = old.affinity.load(ordering: .relaxed)      // the monitor's bind: until it is there
            guard target >= 0 else { return false }
        }
        guard target != s.cpu, SMP.online.contains(target) else {
            if fromBalancer { dropTarget(old, target) }                     // nothing to do with it
            return false
        }
        // A target the pass chose longer ago than one pass period is dropped,
        // even if the thread is still pinned: it was chosen from load figures
        // that are stale now, and a thread whose sections kept it here that
        // long would otherwise carry it (and a forced preemption every tick)
        // for good. The next pass marks it again if it is still a hog.
        if fromBalancer, Balancer.targetExpired(old) {
            old.expiredTargets.wrappingAdd(1, ordering: .relaxed)
            dropTarget(old, target)
            return false
        }
        if BugKnobs.balanceDropsDeferred && fromBalancer {
            // BUG (negative control): the target is dropped before the
            // section test, so a preemption deferred to critical_exit loses it.
            dropTarget(old, target)
            guard old.critnest == 0 && SpinlockSection.depth == 0 else { return false }
        }
        // Pinned another way: a critical section or a spinlock section (a
        // passive reference may rely on either) keeps the thread here too.
        let critnest = atCriticalExit ? old.critnest - 1 : old.critnest
        guard critnest == 0 && SpinlockSection.depth == 0 else { return false }
        if old.isBound && !BugKnobs.migrateIgnoresBound {
            // Counted only for the balancer's target: the race window of
            // seed 001 (marked while unbound, bound at the switch). An
            // affinity retried at every switch is not that window.
            if fromBalancer {
                old.keptBound.wrappingAdd(1, ordering: .relaxed)
                dropTarget(old, target)
            }
            return false
        }
        // The hand-off of `migrate`, sent nowait: the switch may not wait for
        // room (waiting processes messages, which may want to switch). A full
        // ring keeps the thread here. The raw section keeps send's
        // critical_exit from being an outermost one (no processing, no
        // preemption inside the switch).
        // The target's acquire touches the thread only after RUNNING clears,
        // which our switch does after this returns: `cpu` is set in time.
        let raw = UInt64(UInt(bitPattern: Unmanaged.passRetained(old).toOpaque()))
        let check = 1 << 32 | UInt64(old.context.pointee.switchOuts &+ 1)
        CriticalSection.enterRaw()
        let ticket = IPIQueue.send(to: target, { p, c in Scheduler.acquire(p, c) }, raw, check, mode: .nowait)
        CriticalSection.exitRaw()
        guard let ticket, ticket.delivery != .dropped else {     // ring full, or a panic stopped the target
            Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).release()
            return false                                         // the target stays: a later switch retries
        }
        if fromBalancer { dropTarget(old, target) }
        Sleep.forgetTimeout(old, s)
        old.state = .migrating               // B5: the state first, then the owner (release)
        old.cpu = target
        old.switchMigrations.wrappingAdd(1, ordering: .relaxed)
        KTrace.record(.migrate, UInt64(old.id), UInt64(target))
        return true
    }

    /// Clears the target the switch looked at, only if it is still that one: a
    /// pass may have cleared it and marked the thread again since. The mark is
    /// cleared only if it is still the one read before the exchange: a pass
    /// that marks the thread again in between (markTarget: mark, then target)
    /// keeps its new mark, so its target still expires. (A suite that sets a
    /// target directly relies on the mark being 0: "never expires".)
    private static func dropTarget(_ td: Thread, _ target: Int) {
        let mark = td.migrateTargetMarkedMs.load(ordering: .relaxed)
        if td.migrateTarget.compareExchange(expected: target, desired: -1, ordering: .relaxed).exchanged {
            _ = td.migrateTargetMarkedMs.compareExchange(expected: mark, desired: 0, ordering: .relaxed)
        }
    }

    /// What the assembly needs for one switch: raw pointers only, so that a
    /// thread that never resumes (an exited one) leaves no strong reference
    /// behind in a frame that will never return.
    struct SwitchRegisters {
        let saveRSP: UnsafeMutablePointer<UInt64>
        let newRSP: UInt64
        let oldRunning: UnsafeMutablePointer<UInt32>
    }

    private static func switchTo(_ next: Thread, from old: Thread, _ s: CPUScheduler) {
        let r = prepareSwitch(to: next, from: old, s)
        CPU.switchContext(save: r.saveRSP, to: r.newRSP, clearing: r.oldRunning, clearEarly: BugKnobs.handoffEarlyClear)
    }

    /// All bookkeeping of a switch from `old` to `next` (interrupts off).
    @inline(never)
    private static func prepareSwitch(to next: Thread, from old: Thread, _ s: CPUScheduler) -> SwitchRegisters {
        KTrace.record(.switchTo, UInt64(old.id), UInt64(next.id))
        next.state = .running
        next.context.pointee.running = 1
        next.switchesIn &+= 1
        // The spinlock_enter state belongs to the thread (FreeBSD keeps it in the
        // thread); the CPU's gs:24/gs:32 hold the running thread's copy.
        let h = PerCPU.local                 // interrupts are off
        old.spinCount = h.spinlockCount
        old.spinFlags = h.spinlockFlags
        h.spinlockCount = next.spinCount
        h.spinlockFlags = next.spinFlags
        h.currentThread = UInt64(UInt(bitPattern: Unmanaged.passUnretained(next).toOpaque()))
        if let stack = next.stack { h.descriptorTables.setKernelStack(stack.top) }
        s.running = next
        s.switches.wrappingAdd(1, ordering: .relaxed)
        let raw = UnsafeMutableRawPointer(old.context)
        return SwitchRegisters(
            saveRSP: raw.assumingMemoryBound(to: UInt64.self),
            newRSP: next.context.pointee.rsp,
            oldRunning: (raw + MemoryLayout<ThreadContext>.offset(of: \.running)!).assumingMemoryBound(to: UInt32.self))
    }

    /// Runs in the thread that was just switched to: frees the stack of a thread
    /// that exited on this CPU (it could not free the stack it was running on).
    /// Interrupts are still off here: only take the zombie, so that a second exit
    /// on this CPU cannot overwrite it. Free it with `reap` once interrupts are
    /// back on (unmapping a stack is slow, and under shadow paging very slow: the
    /// tick must not wait for it).
    static func afterSwitch() -> Thread? {
        let s = mine
        guard let z = s.zombie, z !== s.running else { return nil }
        s.zombie = nil
        return z
    }

    /// Frees an exited thread's stack (interrupts may be on).
    static func reap(_ z: Thread?) {
        guard let z else { return }
        if let stack = z.stack { KernelStacks.free(stack) }
        pendingReaps.wrappingSubtract(1, ordering: .releasing)
    }

    /// Exited threads whose stacks are not freed yet (join() returns as soon as a
    /// thread has exited; its CPU frees the stack right after switching away).
    static let pendingReaps = Atomic<Int>(0)

    /// Waits (bounded) until every exited thread's stack is freed: for checks
    /// that count stacks.
    static func waitForReaps(milliseconds: UInt64 = 2000) {
        let budget = TSC.now &+ TSC.ticksPerMs &* milliseconds
        while pendingReaps.load(ordering: .acquiring) > 0 && TSC.now < budget { yield() }
        KernelStacks.reclaim()              // retired stacks back to the allocators
    }

    static func yield() { switchAway() }

    /// Switches only if a thread of higher priority than ours is queued here
    /// (DragonFly's lwkt_yield, as acquire_curproc uses it).
    static func yieldToHigher() {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let s = mine
        let higher = (s.runQueue.highestLevel ?? -1) > s.running.priority
        CPU.restoreFlags(flags)
        if higher { switchAway() }
    }

    /// Ends the current thread: wakes joiners, switches away for good. Written so
    /// that no frame left on the dead stack holds a strong reference (it would
    /// never be released): the work happens in `prepareExit`, which returns raw
    /// pointers only.
    static func exitCurrent() -> Never {
        let r = prepareExit()
        CPU.switchContext(save: r.saveRSP, to: r.newRSP, clearing: r.oldRunning, clearEarly: BugKnobs.handoffEarlyClear)
        panic("an exited thread was switched back in")
    }

    @inline(never)
    private static func prepareExit() -> SwitchRegisters {
        let td = current
        td.joinLock.lock()
        td.exited.store(true, ordering: .releasing)
        Sleep.wakeup(Sleep.channel(td))
        SpinlockSection.enter()          // interrupts stay off into the switch
        td.joinLock.unlock()
        if PerCPU.locksHeld != 0 { panic("thread exited holding a spinlock") }
        td.state = .exited
        let s = mine
        s.zombie = td                    // the next thread frees the stack
        pendingReaps.wrappingAdd(1, ordering: .relaxed)
        let next = s.runQueue.popHighest() ?? s.idle!
        return prepareSwitch(to: next, from: td, s)
    }

    // MARK: hand-off between CPUs

    /// Moves the calling thread to `target` (lwkt_giveaway + lwkt_acquire): this
    /// CPU gives it away and switches out; `target` waits until RUNNING is clear,
    /// fences, and queues it. Returns on `target`.
    static func migrate(to target: Int) {
        let td = current
        guard target != td.cpu else { return }
        if td.isBound { panic("B1: a bound thread asked to migrate") }
        // A critical section pins the thread too (a passive reference may rely
        // on it), and the switch below would run with critnest above 0.
        if td.critnest != 0 && !BugKnobs.misuseUnchecked { panic("migrate inside a critical section") }
        KTrace.record(.migrate, UInt64(td.id), UInt64(target))
        SpinlockSection.enter()          // no interrupt until we have switched out
        Sleep.forgetTimeout(td, mine)
        td.state = .migrating               // B5: the state first, then the owner (release)
        td.cpu = target
        // The switch below is our next switch-out; its stamp tells the puller
        // (after its fence) that the saved rsp is written (D6).
        let ticket = sendToOwner(td, expectingSwitchOuts: td.context.pointee.switchOuts &+ 1)
        // Test hook (migrate suite): keep the D6 window open - RUNNING still set -
        // until the target has taken the message (so its puller is spinning on
        // RUNNING), at most handoffWindowCycles.
        if td.handoffWindowCycles != 0, let ticket { IPIQueue.waitTaken(ticket, maxCycles: td.handoffWindowCycles) }
        switchAway()
        SpinlockSection.exit()
    }
}

/// Loads that the compiler may not hoist out of a spin loop (the opaque barrier
/// call forces a fresh load each time).
enum Volatile {
    static func running(_ c: UnsafeMutablePointer<ThreadContext>) -> UInt32 {
        CPU.compilerBarrier()
        return c.pointee.running
    }
    static func switchOuts(_ c: UnsafeMutablePointer<ThreadContext>) -> UInt32 {
        CPU.compilerBarrier()
        return c.pointee.switchOuts
    }
}
