import Synchronization

// The tickets a CPU is waiting with (docs/panic.md, E4, "a ticket holder that
// becomes the panic owner"). A ticket wait can panic: the spin watchdog after
// 10 s, a rendezvous serviced from the wait, lockInTurn's `whileWaiting`. Panic
// never returns, so that ticket is abandoned: one day it is served with nobody
// to release it, and a laggard's real unlock would hand the lock to that ghost,
// held for good. Each such wait records its ticket in a node on its own stack,
// chained per CPU (nested waits: an action serviced from one wait takes another
// lock); the panic owner retires every ticket of its chain once it has the
// claim (TicketLock.retire: released if already served, else skipped by the
// unlock that serves it).

struct TicketWait {
    let lock: UnsafeRawPointer               // the TicketLock (a static or class field: it does not move)
    let ticket: UInt32
    var outer: UnsafeMutablePointer<TicketWait>?
}

enum TicketWaits {
    /// Per CPU: the innermost wait, or nil. Allocated before the APs start;
    /// before that (nil) nothing is recorded.
    nonisolated(unsafe) static var innermost: UnsafeMutablePointer<UnsafeMutablePointer<TicketWait>?>? = nil

    static func initialize() {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<TicketWait>?>.allocate(capacity: PerCPU.maxCPUs)
        p.initialize(repeating: nil, count: PerCPU.maxCPUs)
        innermost = p
    }

    /// Runs `wait` with (lock, ticket) recorded for this CPU (interrupts off or
    /// a critical section: the CPU does not change).
    @inline(__always)
    static func recording(_ lock: UnsafeRawPointer, _ ticket: UInt32, cpu: Int32, _ wait: () -> Void) {
        guard let slots = innermost else { wait(); return }
        let slot = slots + Int(cpu)
        var node = TicketWait(lock: lock, ticket: ticket, outer: slot.pointee)
        withUnsafeMutablePointer(to: &node) { n in
            slot.pointee = n
            wait()
            slot.pointee = n.pointee.outer
        }
    }

    /// The panic owner, right after its claim: retire every ticket this CPU
    /// was waiting with (its stack frames stay: panic never returns).
    static func abandonAll(cpu: Int) {
        guard let slots = innermost, cpu >= 0, cpu < PerCPU.maxCPUs else { return }
        var w = slots[cpu]
        slots[cpu] = nil
        while let n = w {
            n.pointee.lock.assumingMemoryBound(to: TicketLock.self).pointee.retire(n.pointee.ticket)
            w = n.pointee.outer
        }
    }
}
