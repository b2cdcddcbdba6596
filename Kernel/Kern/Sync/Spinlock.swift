import Synchronization

// Spinlocks. Two layers:
//   TicketLock  the raw fair lock (FIFO tickets, `pause` while waiting), owner CPU
//               and contention statistics. Usable before per-CPU data exists.
//   SpinLock    TicketLock inside spinlock_enter/spinlock_exit (docs/critical-sections.md):
//               interrupts off on this CPU while held, and a critical section, so
//               the holder is never preempted or interrupted into a deadlock.
// Both are statically initialisable (a global or static `let` lives in .data) and
// ~Copyable: a lock has an identity and must never be copied.

struct TicketLock: ~Copyable {
    let nextTicket = Atomic<UInt32>(0)
    let nowServing = Atomic<UInt32>(0)
    /// CPU that holds the lock, or -1: for debugging and "held by me" checks.
    let owner = Atomic<Int32>(-1)
    /// Who went through this lock without taking it after a panic (E4), and how
    /// many of those passes its unlocks have not yet matched:
    /// `passes << 32 | (cpu + 1)`, 0 when none. Only the panic owner writes it
    /// (it is the only CPU that bypasses, E1), and only its own unlock consumes
    /// it: a laggard CPU that holds the lock and did not stop releases it for
    /// real, whatever the panic thread did meanwhile.
    let bypass = Atomic<UInt64>(0)
    /// A ticket the panic owner abandoned (it panicked while waiting with it),
    /// `1 << 32 | ticket`, 0 when none: the unlock that serves it serves the
    /// next one instead (TicketWaits).
    let abandoned = Atomic<UInt64>(0)
    /// Contention statistics, updated only on the slow path.
    let contended = Atomic<UInt64>(0)
    let spins = Atomic<UInt64>(0)
    let maxSpins = Atomic<UInt64>(0)
    /// TSC cycles spent waiting for a turn (the monitor's `locks`, wait-ms).
    let waitCycles = Atomic<UInt64>(0)

    init() {}

    /// The fast path is one compare-and-swap of `nextTicket` from the ticket
    /// being served: it succeeds only when nobody holds or waits, so FIFO order
    /// is kept. Only when it fails does the lock look at the panic (one load),
    /// and only then does it queue with a ticket. The panic thread takes NO
    /// ticket when it bypasses: a ticket it took and then abandoned would be
    /// served one day with nobody to release it, and a laggard's real unlock
    /// would hand the lock to that ghost (docs/panic.md, E4).
    /// `servicing`: while waiting, run this CPU's part of a pending rendezvous
    /// (every kernel SpinLock; not the console's lock, see Console).
    borrowing func lock(cpu: Int32, servicing: Bool = true) {
        if tryLock(cpu: cpu) || bypassIfSchedulerStopped(cpu: cpu) { return }
        waitForTurn(cpu: cpu, servicing: servicing)
    }

    /// The next ticket: the caller's place in the FIFO (a locked add).
    @inline(__always)
    borrowing func takeTicket() -> UInt32 { nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Whether `ticket`'s turn has come. Acquire: the critical section's loads
    /// cannot move above the load that saw the turn.
    @inline(__always)
    borrowing func isServing(_ ticket: UInt32) -> Bool { nowServing.load(ordering: .acquiring) == ticket }

    /// The slow path's first step, after the fast attempt failed: if the
    /// scheduler is stopped (docs/panic.md) this CPU is the panic owner, and
    /// whoever holds the lock was stopped (or is a laggard that will release it
    /// on its own): go through without the lock and without a ticket, and
    /// record the pass for this CPU's matching unlock (E4: the panic thread
    /// never spins on a lock). `owner` keeps the holder, for the dump.
    borrowing func bypassIfSchedulerStopped(cpu: Int32) -> Bool {
        guard Panic.schedulerStopped else { return false }
        let passes = bypass.load(ordering: .relaxed) >> 32
        bypass.store((passes &+ 1) << 32 | UInt64(UInt32(bitPattern: cpu &+ 1)), ordering: .relaxed)
        return true
    }

    /// Queues with a ticket and waits for it, then owns the lock.
    ///
    /// While it waits (interrupts off) it runs a pending rendezvous, as FreeBSD's
    /// spin-mutex slow path lets interrupts in ("give interrupts a chance while we
    /// spin"): the holder may have joined a rendezvous from one of its own waits
    /// (an IPI send that waited for room, holding this lock), and that rendezvous
    /// needs this CPU too. docs/rendezvous.md. No panic test in the loop: the
    /// panic owner never comes back here (panic never returns). But a CPU
    /// waiting here CAN become the panic owner (the watchdog's panic, a panic in
    /// a serviced rendezvous action): its ticket is recorded (TicketWaits) and
    /// the panic retires it, so that it never becomes a ghost holder.
    borrowing func waitForTurn(cpu: Int32, servicing: Bool) {
        let ticket = takeTicket()
        let start = TSC.now
        var waited: UInt64 = 0
        if servicing {
            TicketWaits.recording(address, ticket, cpu: cpu) {
                var dog: SpinWatchdog? = nil
                while !isServing(ticket) {
                    Rendezvous.servicePending()
                    // A spinlock held for 10 s is a deadlock: say so (not for the
                    // console's lock, which the report itself needs).
                    if dog == nil { dog = SpinWatchdog("spinlock: held too long by CPU", other: Int(owner.load(ordering: .relaxed))) }
                    dog!.check()
                    CPU.pause()
                    waited &+= 1
                }
            }
        } else {
            while !isServing(ticket) { CPU.pause(); waited &+= 1 }
        }
        owner.store(cpu, ordering: .relaxed)
        contended.wrappingAdd(1, ordering: .relaxed)
        spins.wrappingAdd(waited, ordering: .relaxed)
        waitCycles.wrappingAdd(TSC.now &- start, ordering: .relaxed)
        KTrace.record(.spinWait, TSC.now &- start)
        var seen = maxSpins.load(ordering: .relaxed)
        while waited > seen {
            let (done, now) = maxSpins.compareExchange(expected: seen, desired: waited, ordering: .relaxed)
            if done { break }
            seen = now
        }
    }

    borrowing func tryLock(cpu: Int32) -> Bool {
        let serving = nowServing.load(ordering: .acquiring)
        // Take a ticket only if it is the one being served right now.
        let (taken, _) = nextTicket.compareExchange(expected: serving, desired: serving &+ 1,
                                                    ordering: .acquiring)
        if taken { owner.store(cpu, ordering: .relaxed) }
        return taken
    }

    borrowing func unlock() {
        // One load on the fast path (same cache line as the tickets); non-zero
        // only after the panic owner went through this lock.
        let b = bypass.load(ordering: .relaxed)
        if b != 0 && unlockOfABypass(b) { return }
        owner.store(-1, ordering: .relaxed)
        // Release: every store of the critical section is visible before the next
        // holder's acquiring load sees the new ticket. Sequentially consistent
        // (a locked add either way on x86): it pairs with retire's store of
        // `abandoned` then load of `nowServing` (store buffering: one of the two
        // sees the other).
        let served = nowServing.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
        skipIfAbandoned(served)
    }

    /// The lock's address (a static or class field: it does not move), for
    /// TicketWaits.
    var address: UnsafeRawPointer { withUnsafePointer(to: self) { UnsafeRawPointer($0) } }

    /// The panic owner abandons `ticket` (it was waiting with it when it
    /// panicked): if it is being served, the owner holds the lock and releases
    /// it; otherwise the unlock that serves it passes it on (skipIfAbandoned).
    /// Exactly one of the two serves the next ticket: the compare-and-swap of
    /// `abandoned` back to 0 decides.
    borrowing func retire(_ ticket: UInt32) {
        let mark = 1 << 32 | UInt64(ticket)
        abandoned.store(mark, ordering: .sequentiallyConsistent)
        if nowServing.load(ordering: .sequentiallyConsistent) == ticket,
           abandoned.compareExchange(expected: mark, desired: 0, ordering: .sequentiallyConsistent).exchanged {
            owner.store(-1, ordering: .relaxed)
            nowServing.wrappingAdd(1, ordering: .releasing)
        }
    }

    /// After a real release that now serves `served`: if that is the abandoned
    /// ticket, nobody will release it; serve the next one.
    @inline(__always)
    private borrowing func skipIfAbandoned(_ served: UInt32) {
        let a = abandoned.load(ordering: .sequentiallyConsistent)
        guard a != 0, UInt32(truncatingIfNeeded: a) == served,
              abandoned.compareExchange(expected: a, desired: 0, ordering: .sequentiallyConsistent).exchanged else { return }
        nowServing.wrappingAdd(1, ordering: .releasing)
    }

    /// Whether this unlock matches a pass of the panic owner (E4): a no-op that
    /// consumes the pass, for THAT CPU only. Any other CPU's unlock (a laggard
    /// that did not stop and really holds the lock) is a real release. Passes
    /// are consumed first: a lock the panic owner really holds and went
    /// through again is released by its outermost unlock.
    private borrowing func unlockOfABypass(_ b: UInt64) -> Bool {
        guard Int32(truncatingIfNeeded: b & 0xFFFF_FFFF) &- 1 == currentCPUNumberForLocks() else { return false }
        let passes = b >> 32 &- 1
        bypass.store(passes == 0 ? 0 : passes << 32 | b & 0xFFFF_FFFF, ordering: .relaxed)
        return true
    }

    borrowing func isHeld(by cpu: Int32) -> Bool { owner.load(ordering: .relaxed) == cpu }
    var isLocked: Bool {
        nextTicket.load(ordering: .relaxed) != nowServing.load(ordering: .relaxed)
    }
    /// The panic owner's passes not yet matched by its unlocks (for the suites).
    var bypassPasses: UInt64 { bypass.load(ordering: .relaxed) >> 32 }
}

struct SpinLock: ~Copyable {
    let raw = TicketLock()
    let name: StaticString

    init(_ name: StaticString) { self.name = name }

    borrowing func lock() {
        // The header stays this CPU's until unlock: interrupts are off.
        let h = SpinlockSection.enter()
        let cpu = Int32(truncatingIfNeeded: h.cpuNumber)
        if !raw.tryLock(cpu: cpu) { lockSlow(cpu) }
        h.locksHeld &+= 1
    }

    /// The lock was busy. After a panic the panic owner goes through at once,
    /// before any check (E4); the spinlock section and the held count around
    /// it stay as for a real acquisition, so its unlock balances them.
    private borrowing func lockSlow(_ cpu: Int32) {
        if raw.bypassIfSchedulerStopped(cpu: cpu) { return }
        // Taking a spinlock we already hold would spin forever: say so instead.
        if raw.isHeld(by: cpu) { recursive() }
        raw.waitForTurn(cpu: cpu, servicing: true)
    }

    borrowing func tryLock() -> Bool {
        let h = SpinlockSection.enter()
        let cpu = Int32(truncatingIfNeeded: h.cpuNumber)
        // After a panic a try-lock succeeds (E4): a pass, as in lock().
        if raw.tryLock(cpu: cpu) || raw.bypassIfSchedulerStopped(cpu: cpu) {
            h.locksHeld &+= 1
            return true
        }
        SpinlockSection.exit()
        return false
    }

    /// A fair acquisition for a lock that is waited on across whole all-CPU
    /// operations (the rendezvous mutex): the ticket is taken inside a critical
    /// section, so the waiter is neither switched out nor moved while its turn
    /// comes up, with interrupts left as the caller had them, so it keeps
    /// answering IPIs; `whileWaiting` runs on every pass. FIFO: with many CPUs
    /// an unfair try-lock loop starved some initiators for tens of seconds.
    /// After a panic the panic owner goes through a busy lock at once, before
    /// the recursion check and without a ticket, like lock() (E4).
    /// Returns true when the lock was busy (the caller waited).
    borrowing func lockInTurn(_ whileWaiting: () -> Void) -> Bool {
        CriticalSection.enter()
        let cpu = Int32(truncatingIfNeeded: PerCPU.currentNumber)
        var waited = false
        if !raw.tryLock(cpu: cpu) && !raw.bypassIfSchedulerStopped(cpu: cpu) {
            if raw.isHeld(by: cpu) { recursive() }
            let ticket = raw.takeTicket()
            // whileWaiting may panic: the ticket is recorded (TicketWaits).
            TicketWaits.recording(raw.address, ticket, cpu: cpu) {
                while !raw.isServing(ticket) {
                    waited = true
                    whileWaiting()
                }
            }
            raw.owner.store(cpu, ordering: .relaxed)
        }
        SpinlockSection.enter().locksHeld &+= 1
        CriticalSection.exit()               // the spinlock section's own nesting holds on
        return waited
    }

    borrowing func unlock() {
        let h = PerCPU.local                   // interrupts are off: this CPU's
        h.locksHeld &-= 1
        raw.unlock()
        SpinlockSection.exit(h)
    }

    /// The unlock of a lock taken with `lockInTurn` whose waiters may halt:
    /// `wakeWaiters` runs after the release (the locked add is its W1 fence) and
    /// BEFORE the spinlock section closes. The section's exit may take a
    /// preemption owed since the lock was taken (or one an IPI held off by the
    /// section brings): woken later, a halted waiter would sleep until this
    /// thread ran again, which with tick=0 and a busy higher-priority thread is
    /// never.
    borrowing func unlockInTurn(_ wakeWaiters: () -> Void) {
        let h = PerCPU.local                   // interrupts are off: this CPU's
        h.locksHeld &-= 1
        raw.unlock()
        if !BugKnobs.rendezvousLateWake { wakeWaiters() }
        SpinlockSection.exit(h)
        if BugKnobs.rendezvousLateWake { wakeWaiters() }      // BUG: after a possible switch
    }

    borrowing func withLock<R>(_ body: () -> R) -> R {
        lock()
        let r = body()
        unlock()
        return r
    }

    private borrowing func recursive() -> Never {
        let n = name
        panic("recursive spinlock acquisition") { $0.write(n) }
    }
}

/// spinlock_enter / spinlock_exit (FreeBSD order, docs/critical-sections.md). The nesting
/// count and saved RFLAGS are the running thread's, as in FreeBSD: the CPU keeps
/// the running thread's copy in its per-CPU header (gs:24, gs:32), so they work
/// from the first instruction after GS is set, before any thread exists, and the
/// context switch saves and restores them per thread (LWKTScheduler).
enum SpinlockSection {
    /// Returns this CPU's header, valid until the matching exit (interrupts
    /// are off from here). Interrupts go off before the header is read, so
    /// the count, the flags and the critical section are all this CPU's; a
    /// nested enter saves flags it then ignores (interrupts were off already).
    @discardableResult
    static func enter() -> LocalHeader {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let h = PerCPU.local
        let count = h.spinlockCount
        if count == 0 {
            h.spinlockFlags = flags
            h.spinlockCount = 1
            CriticalSection.enter(thread: h.currentThread)
        } else {
            h.spinlockCount = count + 1
        }
        return h
    }

    static func exit() { exit(PerCPU.local) }

    /// `h`: this CPU's header, read with interrupts off (they are, until the
    /// outermost exit restores them).
    static func exit(_ h: LocalHeader) {
        let count = h.spinlockCount
        precondition(count > 0, "spinlock_exit without spinlock_enter")
        if count == 1 {
            // critical_exit FIRST, as FreeBSD does: a preemption owed since the
            // matching enter is taken inside it, with interrupts still off and
            // the lock itself already released. Only then restore RFLAGS, from
            // the header read again if it switched: the switch may have brought
            // this thread back on another CPU (its count and flags travel with it).
            let switched = CriticalSection.exitInSpinlockSection(thread: h.currentThread)
            let now = switched ? PerCPU.local : h
            let flags = now.spinlockFlags
            now.spinlockCount = 0
            CPU.restoreFlags(flags)
        } else {
            h.spinlockCount = count - 1
        }
    }

    static var depth: Int { Int(GSBase.read(PerCPUHeader.spinlockCount)) }
}
