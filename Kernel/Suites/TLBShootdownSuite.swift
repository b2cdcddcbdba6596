// tlb-shootdown: an unmapped page must be unreachable from every CPU before
// unmap returns (docs/rendezvous.md, "TLB shootdown"). Each round maps a page,
// has every CPU read it (so each TLB holds the translation), unmaps it, and has
// every CPU read the old address again through a probe that reports a page fault
// instead of ending the kernel. A read that still succeeds went through a stale
// TLB entry: it would reach the frame's next owner. Negative control
// `bug.tlb_local_only=1` invalidates only the unmapping CPU's TLB.
//
// The window: remote CPUs that held the translation right before the unmap
// (their first read succeeded). Under TCG every vCPU keeps its own software TLB,
// so stale entries are real; a hypervisor that re-walks the guest's tables on
// every change (shadow paging) hides them, which the suite reports.

enum TLBShootdownSuite {
    static let suite = TestSuite(name: "tlb-shootdown", kind: .normal,
                                 summary: "unmap invalidates every CPU's TLB before it returns", body: run)

    nonisolated(unsafe) static var address: UInt64 = 0x0000_0180_0000_0000   // PML4 slot 3, a page per round

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("needs at least 2 CPUs"); return }
        if BugKnobs.tlbLocalOnly { t.note { $0.write("negative control: unmapping invalidates only the calling CPU's TLB") } }
        let c = SharedCounters()   // [0] rounds, [1] remote reads before (primed), [2] stale reads after, [3] bad first reads
        let me = PerCPU.currentNumber
        let budget = TimeBudget(milliseconds: 400)
        while !budget.expired && c.values[0] < 50 {
            address &+= 4096
            let va = address
            guard let frame = PhysicalMemory.allocateZeroedPage() else { break }
            let marker = 0x7EB0_0000 &+ c.values[0]
            AddressSpace.virtual(frame).storeBytes(of: marker, as: UInt64.self)
            guard KernelPageTables.map(virtual: va, physical: frame, flags: PageFlags.writable) else {
                PhysicalMemory.freePage(frame); break
            }
            SuiteThreads.runOnEveryCPU("tlb-reader") {
                let v = CPU.probeRead(va)
                if v != marker { c.values[3] &+= 1 } else if PerCPU.currentNumber != me { c.values[1] &+= 1 }
            }
            _ = KernelPageTables.unmap(virtual: va)
            SuiteThreads.runOnEveryCPU("tlb-reader") {
                if CPU.probeRead(va) != nil { c.values[2] &+= 1 }
            }
            TLBShootdown.flushAll()                    // no stale entry outlives the round
            PhysicalMemory.freePage(frame)
            c.values[0] &+= 1
        }
        let (rounds, primed, stale, bad) = (c.values[0], c.values[1], c.values[2], c.values[3])
        Console.line { l in
            l.write("tlb-shootdown: "); l.dec(rounds); l.write(" rounds on "); l.dec(cpus.count); l.write(" CPUs, ")
            l.dec(primed); l.write(" remote TLBs held the page before the unmap, ")
            l.write(stale > 0 ? "!!! stale reads after it " : "stale reads after it "); l.dec(stale)
        }
        t.check(rounds > 0 && bad == 0) { l in
            l.dec(rounds); l.write(" pages mapped and read on every CPU ("); l.dec(bad); l.write(" wrong first reads)")
        }
        t.check(primed > 0) { l in l.write("the window was hit: "); l.dec(primed); l.write(" remote CPUs had just used the translation") }
        t.check(stale == 0) { l in
            l.write("after unmap no CPU could read the page ("); l.dec(stale); l.write(" reads through a stale TLB entry)")
        }
        Console.print(stale == 0 && primed > 0 && bad == 0 ? "End of test: SUCCESS" : "End of test: FAILURE")
    }
}
