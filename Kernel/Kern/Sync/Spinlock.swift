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
    /// Set by the panic thread when it went through without the lock (E4).
    let bypassed = Atomic<Bool>(false)
    /// Contention statistics, updated only on the slow path.
    let contended = Atomic<UInt64>(0)
    let spins = Atomic<UInt64>(0)
    let maxSpins = Atomic<UInt64>(0)

    init() {}

    /// `servicing`: while waiting, run this CPU's part of a pending rendezvous
    /// (every kernel SpinLock; not the console's lock, see Console).
    borrowing func lock(cpu: Int32, servicing: Bool = true) {
        let ticket = takeTicket()
        if !isServing(ticket) {
            if slowPath(ticket, servicing) { return }         // bypassed after a panic
        }
        owner.store(cpu, ordering: .relaxed)
    }

    /// The next ticket: the caller's place in the FIFO (a locked add).
    @inline(__always)
    borrowing func takeTicket() -> UInt32 { nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Whether `ticket`'s turn has come. Acquire: the critical section's loads
    /// cannot move above the load that saw the turn.
    @inline(__always)
    borrowing func isServing(_ ticket: UInt32) -> Bool { nowServing.load(ordering: .acquiring) == ticket }

    /// Waits for `ticket`. Returns true when it bypassed the lock instead: the
    /// scheduler is stopped (docs/panic.md) and this CPU is the panic owner, so
    /// whoever holds the lock was stopped and will never release it. Checked
    /// only here, after the fast attempt failed (E4: the panic thread never
    /// spins on a lock; the fast path is unchanged).
    ///
    /// While it waits (interrupts off) it runs a pending rendezvous, as FreeBSD's
    /// spin-mutex slow path lets interrupts in ("give interrupts a chance while we
    /// spin"): the holder may have joined a rendezvous from one of its own waits
    /// (an IPI send that waited for room, holding this lock), and that rendezvous
    /// needs this CPU too. docs/rendezvous.md.
    private borrowing func slowPath(_ ticket: UInt32, _ servicing: Bool) -> Bool {
        var waited: UInt64 = 0
        var dog: SpinWatchdog? = nil
        while !isServing(ticket) {
            if Panic.schedulerStopped {
                bypassed.store(true, ordering: .relaxed)     // `owner` keeps the stopped holder
                return true
            }
            if servicing {
                Rendezvous.servicePending()
                // A spinlock held for 10 s is a deadlock: say so (not for the
                // console's lock, which the report itself needs).
                if dog == nil { dog = SpinWatchdog("spinlock: held too long by CPU", other: Int(owner.load(ordering: .relaxed))) }
                dog!.check()
            }
            CPU.pause()
            waited &+= 1
        }
        contended.wrappingAdd(1, ordering: .relaxed)
        spins.wrappingAdd(waited, ordering: .relaxed)
        var seen = maxSpins.load(ordering: .relaxed)
        while waited > seen {
            let (done, now) = maxSpins.compareExchange(expected: seen, desired: waited, ordering: .relaxed)
            if done { break }
            seen = now
        }
        return false
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
        if bypassed.load(ordering: .relaxed) {
            // A lock the panic thread bypassed: it never held it, so the unlock
            // is a no-op.
            bypassed.store(false, ordering: .relaxed)
            return
        }
        owner.store(-1, ordering: .relaxed)
        // Release: every store of the critical section is visible before the next
        // holder's acquiring load sees the new ticket.
        nowServing.wrappingAdd(1, ordering: .releasing)
    }

    borrowing func isHeld(by cpu: Int32) -> Bool { owner.load(ordering: .relaxed) == cpu }
    var isLocked: Bool {
        nextTicket.load(ordering: .relaxed) != nowServing.load(ordering: .relaxed)
    }
}

struct SpinLock: ~Copyable {
    let raw = TicketLock()
    let name: StaticString

    init(_ name: StaticString) { self.name = name }

    borrowing func lock() {
        // The header stays this CPU's until unlock: interrupts are off.
        let h = SpinlockSection.enter()
        let cpu = Int32(truncatingIfNeeded: h.cpuNumber)
        // Taking a spinlock we already hold would spin forever: say so instead
        // (after a panic the owner may re-enter its own locks: bypassed).
        if raw.isHeld(by: cpu) && !Panic.schedulerStopped { recursive() }
        raw.lock(cpu: cpu)
        h.locksHeld &+= 1
    }

    borrowing func tryLock() -> Bool {
        let h = SpinlockSection.enter()
        if raw.tryLock(cpu: Int32(truncatingIfNeeded: h.cpuNumber)) {
            h.locksHeld &+= 1
            return true
        }
        if Panic.schedulerStopped {              // after a panic a try-lock succeeds (E4)
            raw.bypassed.store(true, ordering: .relaxed)
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
    /// Returns true when the lock was busy (the caller waited).
    borrowing func lockInTurn(_ whileWaiting: () -> Void) -> Bool {
        CriticalSection.enter()
        let cpu = Int32(truncatingIfNeeded: PerCPU.currentNumber)
        if raw.isHeld(by: cpu) && !Panic.schedulerStopped { recursive() }
        let ticket = raw.takeTicket()
        var waited = false
        while !raw.isServing(ticket) {
            waited = true
            whileWaiting()
        }
        SpinlockSection.enter().locksHeld &+= 1
        raw.owner.store(cpu, ordering: .relaxed)
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
