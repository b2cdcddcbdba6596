import Synchronization

// A fair ticket spinlock. Statically initialisable (a global `let` of this type
// lives in .data, no lazy initialiser), so the console can use it before the heap
// exists. ~Copyable: a lock has an identity and must never be copied.
//
// This is the raw lock; SpinLock.withLock adds interrupt masking. The critical
// section accounting of SPEC.md section 3 (spinlock_enter/exit) arrives with SMP.

struct TicketLock: ~Copyable {
    let nextTicket = Atomic<UInt32>(0)
    let nowServing = Atomic<UInt32>(0)
    /// CPU that holds the lock, or -1: for debugging and for "held by me" checks.
    let owner = Atomic<Int32>(-1)
    /// Spins (pause loops) spent waiting, summed over all acquisitions.
    let spins = Atomic<UInt64>(0)

    init() {}

    borrowing func lock(cpu: Int32) {
        let ticket = nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue
        var waited: UInt64 = 0
        // Acquire: the critical section's loads cannot move above this load.
        while nowServing.load(ordering: .acquiring) != ticket {
            CPU.pause()
            waited &+= 1
        }
        if waited != 0 { spins.wrappingAdd(waited, ordering: .relaxed) }
        owner.store(cpu, ordering: .relaxed)
    }

    borrowing func tryLock(cpu: Int32) -> Bool {
        let serving = nowServing.load(ordering: .acquiring)
        // Take the ticket only if it is the one being served right now.
        let (exchanged, _) = nextTicket.compareExchange(
            expected: serving, desired: serving &+ 1, ordering: .acquiring)
        if exchanged { owner.store(cpu, ordering: .relaxed) }
        return exchanged
    }

    borrowing func unlock() {
        owner.store(-1, ordering: .relaxed)
        // Release: every store of the critical section is visible before the next
        // holder's acquiring load sees the new ticket.
        nowServing.wrappingAdd(1, ordering: .releasing)
    }

    borrowing func isHeld(by cpu: Int32) -> Bool {
        owner.load(ordering: .relaxed) == cpu
    }
}
