import Synchronization

// Changing the kernel's page tables on an SMP machine (docs/rendezvous.md,
// "TLB shootdown").
//
// Two rules. (1) One lock for the tables: two CPUs filling in the same missing
// table level at once would each install a fresh table page and one CPU's
// mapping would be lost. (2) A page that was unmapped may be reused only once no
// CPU can still translate its old address: every CPU that ever touched it may
// hold the translation in its TLB (creation, migration, or a speculative walk),
// and a stale entry would let that CPU read or write the page's next owner.
// `TLBShootdown.flushAll` empties every online CPU's TLB and returns only when
// all have done it: a rendezvous, whose mutex also serializes shootdowns (two
// CPUs each waiting with interrupts off for the other's shootdown would deadlock).

enum KernelPageTables {
    static let lock = SpinLock("kernel page tables")

    static func map(virtual va: UInt64, physical pa: UInt64, flags: UInt64) -> Bool {
        lock.lock()
        let ok = Paging.map(virtual: va, physical: pa, flags: flags)
        lock.unlock()
        return ok
    }

    /// Removes the mapping from the tables and from this CPU's TLB only. The
    /// frame must not be reused before a `TLBShootdown.flushAll()`.
    static func unmapLocal(virtual va: UInt64) -> UInt64? {
        lock.lock()
        let pa = Paging.unmap(virtual: va)
        lock.unlock()
        return pa
    }

    /// Removes the mapping; returns once no CPU can translate `va` any more.
    /// The entry is cleared BEFORE the shootdown: a CPU that walks the tables
    /// between its flush and the clear would cache the old translation again,
    /// and keep it after this returns (the control bug.tlb_flush_before_clear).
    static func unmap(virtual va: UInt64) -> UInt64? {
        if BugKnobs.tlbFlushBeforeClear {
            TLBShootdown.flushAll()                 // BUG: the entry is still there
            return unmapLocal(virtual: va)
        }
        let pa = unmapLocal(virtual: va)
        TLBShootdown.flushAll()
        return pa
    }
}

enum TLBShootdown {
    /// Shootdowns that reached other CPUs (for the suites and the monitor).
    static let count = Atomic<UInt64>(0)
    /// CPU flushes done by shootdowns, one per CPU per shootdown (the suite
    /// checks that all were done when flushAll returned).
    static let flushes = Atomic<UInt64>(0)

    /// Every online CPU drops its non-global TLB entries before this returns.
    /// Thread context, no spinlock held (the remotes spin for us).
    static func flushAll() {
        if PerCPU.locksHeld != 0 { panic("TLB shootdown while holding a spinlock") }
        guard SMP.online.count > 1, !BugKnobs.tlbLocalOnly else {
            CPU.flushTLB()                  // BUG under bug.tlb_local_only: only here
            return
        }
        count.wrappingAdd(1, ordering: .relaxed)
        Rendezvous.runOnAll(action: { _ in
            CPU.flushTLB()
            TLBShootdown.flushes.wrappingAdd(1, ordering: .releasing)
        })
    }
}
