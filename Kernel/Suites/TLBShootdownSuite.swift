import Synchronization

// tlb-shootdown: an unmapped page must be unreachable from every CPU before
// unmap returns (docs/rendezvous.md, "TLB shootdown"). Each round maps a page,
// has every CPU read it (so each TLB holds the translation), unmaps it, and has
// every CPU read the old address again through a probe that reports a page fault
// instead of ending the kernel. A read that still succeeds went through a stale
// TLB entry: it would reach the frame's next owner. The readers are one thread
// per CPU for the whole suite, so no thread is created (and no stack reclaimed,
// with a shootdown of its own) between the unmap and the second reads. A second
// part checks the same for freed kernel stacks: a thread runs on another CPU and
// exits, its stack is reclaimed, and that CPU must no longer read the stack.
// Negative control `bug.tlb_local_only=1` invalidates only the unmapping CPU's TLB.
//
// The window: remote CPUs that held the translation right before the unmap
// (their first read succeeded). Under TCG every vCPU keeps its own software TLB,
// so stale entries are real; a hypervisor that re-walks the guest's tables on
// every change (shadow paging) hides them, which the suite reports.

enum TLBShootdownSuite {
    static let suite = TestSuite(name: "tlb-shootdown", kind: .normal,
                                 summary: "unmap and stack reclaim invalidate every CPU's TLB before they return", body: run)

    nonisolated(unsafe) static var address: UInt64 = 0x0000_0180_0000_0000   // PML4 slot 3, a page per round

    /// The readers' orders: a round number and what to read; each reader
    /// answers in its slot of `done` and `result`.
    final class Orders {
        let round = Atomic<UInt64>(0)
        let stop = Atomic<Bool>(false)
        var va: UInt64 = 0
        let done = SharedCounters()        // [cpu] last round answered
        let result = SharedCounters()      // [cpu] 1 = read succeeded
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("needs at least 2 CPUs"); return }
        if BugKnobs.tlbLocalOnly { t.note { $0.write("negative control: unmapping invalidates only the calling CPU's TLB") } }
        let me = PerCPU.currentNumber
        let o = Orders()
        var readers: [Thread] = []
        cpus.forEach { cpu in
            guard cpu != me else { return }        // this CPU reads for itself in `ask`
            if let td = Thread.spawn("tlb-reader", cpu: cpu, { TLBShootdownSuite.reader(o) }) { readers.append(td) }
        }
        let c = SharedCounters()   // [0] rounds, [1] remote reads before (primed), [2] stale reads after, [3] bad first reads
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
            ask(o, cpus, va)
            cpus.forEach { cpu in
                if o.result.values[cpu] == 0 { c.values[3] &+= 1 } else if cpu != me { c.values[1] &+= 1 }
            }
            _ = KernelPageTables.unmap(virtual: va)
            ask(o, cpus, va)
            cpus.forEach { if o.result.values[$0] != 0 { c.values[2] &+= 1 } }
            TLBShootdown.flushAll()                    // no stale entry outlives the round
            PhysicalMemory.freePage(frame)
            c.values[0] &+= 1
        }
        o.stop.store(true, ordering: .releasing)
        for td in readers { td.join() }
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
        let staleStack = freedStack(&t, cpus)
        Console.print(stale == 0 && primed > 0 && bad == 0 && !staleStack ? "End of test: SUCCESS" : "End of test: FAILURE")
    }

    /// Gives every reader the next round, reads on this CPU too, and waits for
    /// all answers (a reader on this CPU could not run while we spin).
    static func ask(_ o: Orders, _ cpus: CPUMask, _ va: UInt64) {
        o.va = va
        let r = o.round.wrappingAdd(1, ordering: .releasing).newValue
        let me = PerCPU.currentNumber
        if cpus.contains(me) {
            o.result.values[me] = CPU.probeRead(va) != nil ? 1 : 0
            o.done.values[me] = r
        }
        _ = spinUntil(milliseconds: 5000) {
            var all = true
            cpus.forEach { CPU.compilerBarrier(); if o.done.values[$0] != r { all = false } }
            return all
        }
    }

    /// One per CPU: waits for a round (yielding: interrupts on, no new threads),
    /// probes the address, answers.
    static func reader(_ o: Orders) {
        let me = PerCPU.currentNumber
        var seen: UInt64 = 0
        while !o.stop.load(ordering: .acquiring) {
            let r = o.round.load(ordering: .acquiring)
            if r == seen { Scheduler.yield(); CPU.pause(); continue }
            seen = r
            o.result.values[me] = CPU.probeRead(o.va) != nil ? 1 : 0
            CPU.compilerBarrier()
            o.done.values[me] = r
        }
    }

    /// A stack another CPU ran on, freed and reclaimed: that CPU may no longer
    /// read it (KernelStacks.reclaim's shootdown). Returns true when it could.
    /// The reader on that CPU exists before the stack is freed, so no new stack
    /// can take the freed slot before the probe.
    static func freedStack(_ t: inout TestContext, _ cpus: CPUMask) -> Bool {
        guard let other = cpus.nth(cpus.count - 1), other != PerCPU.currentNumber else { return false }
        let o = Orders()
        guard let reader = Thread.spawn("stack-reader", cpu: other, { TLBShootdownSuite.reader(o) }) else {
            t.check(false, "spawn the stack reader"); return false
        }
        let s = SharedCounters()
        guard let td = Thread.spawn("stack-owner", cpu: other, {
            var local = InlineArray<16, UInt64>(repeating: 7)
            CPU.compilerBarrier()
            s.values[0] = UInt64(UInt(bitPattern: withUnsafeMutablePointer(to: &local) { $0 }))
            s.values[1] = local[3]
        }) else { t.check(false, "spawn the stack owner"); return false }
        td.join()
        let address = s.values[0]
        Scheduler.waitForReaps()                         // its stack retired, then reclaimed (shootdown)
        let unmapped = Paging.translate(address) == nil
        ask(o, CPUMask(other), address)
        let readable = o.result.values[other] != 0
        o.stop.store(true, ordering: .releasing)
        reader.join()
        guard unmapped else { t.skip("freed stack: its slot was mapped again before the probe"); return false }
        t.check(address != 0 && !readable) { l in
            l.write("a reclaimed kernel stack is unreachable from the CPU it ran on ("); l.write(readable ? "STILL READABLE" : "faults")
            l.write(")")
        }
        return readable
    }
}
