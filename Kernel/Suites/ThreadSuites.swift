import Synchronization

// threads, preempt: kernel threads and the LWKT scheduler (issue: kernel threads).
// Work is spread over every online CPU and sized by time (TimeBudget).

enum ThreadSuite {
    static let suite = TestSuite(name: "threads", kind: .normal,
                                 summary: "create/exit/join on all CPUs, stack reuse, guard pages", body: run)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        Scheduler.waitForReaps()            // earlier suites' threads, still being freed
        let stacksBefore = KernelStacks.liveCount
        let heapBefore = Heap.statistics().allocations
        let budget = TimeBudget(milliseconds: 800)
        var created = 0, wrong = 0, batches = 0, guarded = true
        // Thread ids come from a counter: unique means strictly increasing here.
        // (No Set: its capacity math is x87 floating point with -mno-sse, which
        // the development machine's nested KVM cannot emulate.)
        var lastID = 0, idsIncreasing = true
        while !budget.expired && created < 2000 {
            let results = SharedCounters()
            var batch: [Thread] = []
            for i in 0..<16 {
                let cpu = cpus.next(atOrAfter: i) ?? 0
                guard let td = Thread.spawn("worker", cpu: cpu, {
                    // Each worker proves it ran, and on the CPU it was created for.
                    results.values[i] = UInt64(i * i + 1) | (PerCPU.currentNumber == cpu ? 0 : 1 << 63)
                }) else { break }
                if let s = td.stack, Paging.translate(s.guardPage) != nil { guarded = false }
                batch.append(td)
                if td.id <= lastID { idsIncreasing = false }
                lastID = td.id
            }
            for td in batch { td.join() }
            for i in 0..<batch.count where results.values[i] != UInt64(i * i + 1) { wrong += 1 }
            created += batch.count
            batches += 1
        }
        let n = created
        t.expect("created", n >= 16 && wrong == 0) { l in
            l.dec(n); l.write(" threads created on "); l.dec(cpus.count); l.write(" CPUs, each ran once on its CPU and was joined ("); l.dec(wrong); l.write(" wrong)")
        }
        t.expect("unique-ids", idsIncreasing, "thread ids are unique")
        t.expect("guard-pages", guarded, "every thread stack has an unmapped guard page")
        Scheduler.waitForReaps()
        let stacksAfter = KernelStacks.liveCount
        t.expect("stacks-freed", UInt64(stacksAfter), .equals(UInt64(stacksBefore))) { l in
            l.write("exited threads' stacks were freed and their slots reused ("); l.dec(stacksAfter)
            l.write(" live, "); l.dec(stacksBefore); l.write(" before)")
        }
        let heapAfter = Heap.statistics().allocations
        t.expect("threads-freed", UInt64(heapAfter), .atMost(UInt64(heapBefore + 2))) { l in
            l.write("thread objects were freed ("); l.dec(heapAfter); l.write(" heap allocations, "); l.dec(heapBefore); l.write(" before)")
        }
    }
}

enum PreemptSuite {
    static let suite = TestSuite(name: "preempt", kind: .normal,
                                 summary: "tick preemption, deferred preemption in critical sections, C3",
                                 torture: true, body: run)

    static func run(_ t: inout TestContext) {
        if BugKnobs.c3Window { t.note { $0.write("negative control: critnest lowered after interrupts are back on (C3 window)") } }
        tickPreemption(&t)
        deferredPreemption(&t)
        interruptReturnWithInterruptsOff(&t)
        criticalSectionStorm(&t)
    }

    /// Two CPU-bound threads of equal priority on one CPU: without time slicing
    /// one would finish before the other starts.
    static func tickPreemption(_ t: inout TestContext) {
        guard Clock.enabled else { t.skip("tick-preemption", reason: .needsTick, "tick preemption: tick=0 given"); return }
        let cpu = SMP.online.count > 1 ? 1 : 0
        let c = SharedCounters()   // [0], [1]: progress; [2], [3]: other's progress seen changing
        let end = TSC.now &+ TSC.ticksPerMs &* 300
        let before = Scheduler.perCPU[cpu].preemptions.load(ordering: .relaxed)
        var threads: [Thread] = []
        for me in 0..<2 {
            if let td = Thread.spawn("spinner", cpu: cpu, {
                var lastOther: UInt64 = 0
                while TSC.now < end {
                    c.values[me] &+= 1
                    CPU.compilerBarrier()
                    let other = c.values[1 - me]
                    if other != lastOther { c.values[2 + me] &+= 1; lastOther = other }
                }
            }) { threads.append(td) }
        }
        for td in threads { td.join() }
        let preemptions = Scheduler.perCPU[cpu].preemptions.load(ordering: .relaxed) &- before
        t.expect("tick-preemption", min(c.values[2], c.values[3]), .atLeast(2)) { l in
            l.write("two spinning threads on CPU "); l.dec(cpu); l.write(" interleaved (each saw the other progress ")
            l.dec(c.values[2]); l.write("/"); l.dec(c.values[3]); l.write(" times); "); l.dec(preemptions); l.write(" preemptions")
        }
    }

    /// A wake-up of a higher-priority thread inside a critical section only sets
    /// owepreempt; the outermost critical_exit switches to it; then C3 holds.
    static func deferredPreemption(_ t: inout TestContext) {
        let c = SharedCounters()   // [0] = high-priority thread ran, [1..] = observations
        guard let high = Thread.create("high", priority: Thread.highPriority, cpu: PerCPU.currentNumber, {
            c.values[0] = 1
        }) else { t.expect("spawn", false, "create a high-priority thread"); return }
        let me = Thread.current
        CriticalSection.enter()
        Scheduler.schedule(high)                 // runnable here, higher priority than us
        let ranInside = c.values[0]
        let owed = me.owepreempt
        CriticalSection.exit()                   // the deferred preemption happens here
        let ranAfter = c.values[0]
        let c3 = me.critnest == 0 && !me.owepreempt
        high.join()
        t.expect("deferred", inv: "C3", ranInside == 0 && owed) { $0.write("wake-up inside a critical section deferred (owepreempt set, thread not run)") }
        t.expect("outer-exit-switch", inv: "C3", ranAfter == 1) { $0.write("the outer critical_exit switched to the woken thread") }
        t.expect("c3-after-exit", inv: "C3", c3) { $0.write("C3: critical_exit returned with critnest 0 and owepreempt 0") }

        // Without a critical section the same wake-up preempts at once.
        let d = SharedCounters()
        if let high2 = Thread.create("high", priority: Thread.highPriority, cpu: PerCPU.currentNumber, { d.values[0] = 1 }) {
            Scheduler.schedule(high2)
            let immediate = d.values[0]
            high2.join()
            t.expect("immediate", immediate == 1, "outside a critical section the wake-up preempts immediately")
        }
    }

    /// The way out of an interrupt must not switch into code that had interrupts
    /// off, even with a preemption owed (InterruptReturn). A trap taken with IF
    /// clear, critnest 0 and a higher-priority thread queued (a page fault of a
    /// probe read, which the trap path recovers; the development machine's nested
    /// KVM cannot emulate INT3): the high thread may run only once this thread
    /// turns interrupts back on.
    static func interruptReturnWithInterruptsOff(_ t: inout TestContext) {
        let c = SharedCounters()
        guard let high = Thread.create("high", priority: Thread.highPriority, cpu: PerCPU.currentNumber, {
            c.values[0] = 1
        }) else { t.expect("spawn", false, "create a high-priority thread"); return }
        let me = Thread.current
        CPU.disableInterrupts()
        CriticalSection.enterRaw()
        Scheduler.schedule(high)                     // queued here; owepreempt set, not taken
        CriticalSection.exitRaw()                    // critnest 0, owepreempt 1, IF 0
        let owed = me.owepreempt
        let faulted = CPU.probeRead(FaultSuites.unmappedAddress) == nil   // #PF, returns into IF = 0 code
        let ranInTrapReturn = c.values[0]
        CPU.enableInterrupts()
        Scheduler.preemptIfOwed()
        let ranAfter = c.values[0]
        high.join()
        t.expect("trap-return", owed && faulted && ranInTrapReturn == 0 && ranAfter == 1) { l in
            l.write("a trap returning into interrupts-off code did not switch (owed "); l.write(owed ? "yes" : "no")
            l.write(", switched in the trap return: "); l.write(ranInTrapReturn == 0 ? "no" : "YES"); l.write(")")
        }
    }

    /// Every CPU: threads loop critical_enter/exit with nesting while ticks and
    /// wake-ups request preemptions; C3 is checked after every outer exit. The
    /// race window is an outer exit that found a preemption owed and took it:
    /// counted per thread, it must happen.
    static func criticalSectionStorm(_ t: inout TestContext) {
        guard Clock.enabled else { t.skip("storm", inv: "C3", reason: .needsTick, "critical-section storm: its preemptions come from the tick (tick=0 given)"); return }
        // By that CPU's storm threads (two per CPU, each adding once at its end
        // with interrupts off): [0, cpu] C3 violations, [1, cpu] outer exits,
        // [2, cpu] deferred preemptions taken.
        let c = CPUCounters(kinds: 3)
        let end = TSC.now &+ TSC.ticksPerMs &* 400
        var threads: [Thread] = []
        SMP.online.forEach { cpu in
            for k in 0..<2 {
                if let td = Thread.spawn("critstorm", cpu: cpu, {
                    let me = Thread.current
                    var n: UInt64 = 0, bad: UInt64 = 0
                    while TSC.now < end {
                        CriticalSection.enter()
                        if k == 0 { CriticalSection.enter(); CPU.pause(); CriticalSection.exit() }
                        for _ in 0..<20 { CPU.pause() }
                        CriticalSection.exit()
                        if me.critnest != 0 || me.owepreempt { bad &+= 1 }
                        n &+= 1
                    }
                    let flags = CPU.saveFlagsAndDisableInterrupts()
                    c[0, cpu] &+= bad; c[1, cpu] &+= n; c[2, cpu] &+= me.deferredPreemptions
                    CPU.restoreFlags(flags)
                }) { threads.append(td) }
            }
        }
        for td in threads { td.join() }
        let cpus = SMP.online
        let violations = c.sum(0, over: cpus), exits = c.sum(1, over: cpus), deferred = c.sum(2, over: cpus)
        Console.line { l in
            l.write("preempt: storm: "); l.dec(exits); l.write(" outer critical_exits, "); l.dec(deferred)
            l.write(" took a deferred preemption"); l.write(violations > 0 ? ", !!! C3 violations " : ", C3 violations "); l.dec(violations)
        }
        t.expect("window", inv: "C3", deferred, .above(0)) { l in l.write("the window was exercised: "); l.dec(deferred); l.write(" outer critical_exits took an owed preemption") }
        t.expect("storm", inv: "C3", violations, .equals(0)) { l in
            l.write("C3 held after "); l.dec(exits); l.write(" outer critical_exits under preemption ("); l.dec(violations); l.write(" violations)")
        }
    }
}
