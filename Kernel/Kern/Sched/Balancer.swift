import Synchronization

// The load balancer's statistics pass (NetBSD sched_lwp_stats + sched_balance;
// docs/binding-and-psref.md). About once a second a thread on CPU 0 looks at
// every balanced thread; one that ran on two consecutive passes without
// sleeping is CPU-bound, and if its CPU is busier than the least loaded one by
// more than one thread it gets that CPU as its migration target. The move itself
// happens at the thread's next switch (Scheduler.switchAway), which is where
// BOUND is checked (B2). Here BOUND is read from another CPU: a hint, checked
// at marking time only, exactly as NetBSD does.
//
// Who writes what:
//   the pass (lock held)   the threads' stat* fields and hogPasses, their target
//   each CPU's tick        its CPUScheduler.load, the running thread's ticksRun
//   the thread itself      sleeps, BOUND
//
// Each pass also publishes a report (loads, marks) in one of two buffers that
// readers (the monitor's `balance`, the suites) look at under a passive
// reference; the pass refills the other buffer only after psref destroy says no
// reader is left in it (PassiveRef.swift).

final class BalanceReport {
    let target = PsrefTarget("balance report")
    var pass: UInt64 = 0
    var loads: [Int] = []
    var marked = 0, skippedBound = 0, hogs = 0
}

enum Balancer {
    static let lock = SpinLock("balancer")
    nonisolated(unsafe) private static var threads: [Thread] = []
    nonisolated(unsafe) private static var reports: [BalanceReport] = []
    private static let current = Atomic<Int>(-1)
    private static let started = Atomic<Bool>(false)
    /// Totals over all passes.
    static let passes = Atomic<UInt64>(0)
    static let marked = Atomic<UInt64>(0)
    static let skippedBound = Atomic<UInt64>(0)
    /// Report buffers whose destroy found a reader still in them and waited.
    static let waitedForReaders = Atomic<UInt64>(0)

    static func register(_ td: Thread) {
        lock.lock()
        threads.append(td)
        let spawn = Clock.enabled && !started.load(ordering: .relaxed)
        if spawn { started.store(true, ordering: .relaxed) }
        lock.unlock()
        if spawn { startThread() }
    }

    static func unregister(_ td: Thread) {
        lock.lock()
        if let i = threads.firstIndex(where: { $0 === td }) { threads.remove(at: i) }
        let last = threads.isEmpty
        lock.unlock()
        if last { Sleep.wakeup(wakeChannel) }         // let the pass's thread leave now
    }

    /// The pass's thread sleeps here between passes.
    private static let wakeChannel: UInt = 0x5EED_BA1A

    /// Waits (bounded) until the pass's thread has left: suites call it so that
    /// no pass (a cpusync) runs into the next suite.
    static func waitUntilIdle(milliseconds: UInt64 = 3000) {
        let budget = TSC.now &+ TSC.ticksPerMs &* milliseconds
        while started.load(ordering: .acquiring) && TSC.now < budget { Scheduler.yield() }
    }

    /// The pass's thread runs while balanced threads exist (it sleeps on the
    /// tick: without the tick there is no pass). It leaves when the last one
    /// is gone, so an idle kernel has no 1 Hz cross-call (each report's psref
    /// destroy is a cpusync, which a CPU spinning with interrupts off - the
    /// litmus suite - would hold up).
    private static func startThread() {
        if reports.isEmpty { reports = [BalanceReport(), BalanceReport()] }
        let failForTest = failNextStart.exchange(false, ordering: .relaxed)
        let td = failForTest ? nil : Thread.spawn("balancer", priority: Thread.highPriority, cpu: 0) {
            while true {
                _ = Sleep.sleep(on: Balancer.wakeChannel, timeoutTicks: Clock.hz)
                Balancer.lock.lock()
                let idle = Balancer.threads.isEmpty
                if idle { Balancer.started.store(false, ordering: .relaxed) }
                Balancer.lock.unlock()
                if idle { return }
                Balancer.pass()
            }
        }
        if td == nil {
            // No thread (no stack memory): not started, so that the next
            // balanced thread to register tries again.
            startFailures.wrappingAdd(1, ordering: .relaxed)
            lock.withLock { started.store(false, ordering: .relaxed) }
        }
    }

    /// Test hook (bind-rules): the next start fails as if spawn had no memory.
    static let failNextStart = Atomic<Bool>(false)
    static let startFailures = Atomic<UInt64>(0)
    static var isRunning: Bool { started.load(ordering: .relaxed) }

    /// The monitor's bind/unbind: pin `td` to `cpu` (or unpin with -1) under
    /// the pass's lock, so a pass that read "not pinned" cannot mark it after
    /// this returns; a target it marked before is dropped here.
    static func setAffinity(_ td: Thread, _ cpu: Int) {
        lock.withLock {
            td.affinity.store(cpu, ordering: .relaxed)
            td.pinned.store(cpu >= 0, ordering: .relaxed)
            td.migrateTarget.store(-1, ordering: .relaxed)
            td.migrateTargetMarkedMs.store(0, ordering: .relaxed)
        }
    }

    /// A target older than this many ticks (one pass period) is dropped by the
    /// switch that finds it (Scheduler.migrateAtSwitch).
    static let targetExpiryTicks = Clock.hz

    /// True if the pass chose `td`'s target more than targetExpiryTicks ago.
    /// A target set another way (a suite's, marked 0) never expires. Called
    /// after the target was loaded with acquire (migrateAtSwitch), so the mark
    /// read here is at least as new as that target (markTarget's order). The
    /// mark may come from another CPU's clock: a mark ahead of ours (TSC skew)
    /// is fresh, never "expired" by an unsigned wrap.
    static func targetExpired(_ td: Thread) -> Bool {
        let marked = td.migrateTargetMarkedMs.load(ordering: .acquiring)
        let now = Clock.uptimeMilliseconds
        return marked != 0 && now > marked && now - marked > targetExpiryTicks * 1000 / Clock.hz
    }

    /// Sets a balancer target marked at `ms` (the pass: now; a suite: a time
    /// in the past, to see it expire).
    static func markTarget(_ td: Thread, _ cpu: Int, atMs ms: UInt64 = Clock.uptimeMilliseconds) {
        td.migrateTargetMarkedMs.store(max(1, ms), ordering: .relaxed)
        td.migrateTarget.store(cpu, ordering: .releasing)     // the mark first: a switch that sees the target sees its mark
    }

    /// One statistics pass, then its report.
    static func pass() {
        var loads = Scheduler.perCPU.map { $0.load.load(ordering: .relaxed) }
        let online = SMP.online
        var r = (marked: 0, skipped: 0, hogs: 0)
        lock.lock()
        for td in threads {
            let sleeps = td.sleeps.load(ordering: .relaxed), ticks = td.ticksRun.load(ordering: .relaxed)
            let hog = sleeps == td.statSleeps && ticks != td.statTicks
            td.statSleeps = sleeps
            td.statTicks = ticks
            td.hogPasses = hog ? td.hogPasses + 1 : 0
            if !hog && !td.pinned.load(ordering: .relaxed) {
                // No longer a hog: a target chosen earlier would move it at its
                // next preemption on stale figures. Only if it is still ours
                // (the switch may be taking it right now).
                let t = td.migrateTarget.load(ordering: .relaxed)
                if t >= 0 && td.migrateTarget.compareExchange(expected: t, desired: -1, ordering: .relaxed).exchanged {
                    td.migrateTargetMarkedMs.store(0, ordering: .relaxed)
                }
            }
            guard td.hogPasses >= 2, !td.pinned.load(ordering: .relaxed),
                  td.migrateTarget.load(ordering: .relaxed) < 0 else { continue }
            r.hogs += 1
            if td.isBound { r.skipped += 1; continue }          // a hint: the switch checks again (B2)
            let from = td.cpu
            guard online.contains(from), let to = leastLoaded(loads, online), loads[from] > loads[to] + 1 else { continue }
            markTarget(td, to)
            loads[from] -= 1
            loads[to] += 1
            r.marked += 1
        }
        lock.unlock()
        passes.wrappingAdd(1, ordering: .relaxed)
        marked.wrappingAdd(UInt64(r.marked), ordering: .relaxed)
        skippedBound.wrappingAdd(UInt64(r.skipped), ordering: .relaxed)
        publish(loads: loads, marked: r.marked, skipped: r.skipped, hogs: r.hogs)
    }

    private static func leastLoaded(_ loads: [Int], _ online: CPUMask) -> Int? {
        var best = -1
        online.forEach { c in if c < loads.count && (best < 0 || loads[c] < loads[best]) { best = c } }
        return best < 0 ? nil : best
    }

    /// Fills the buffer readers are not sent to any more, once no reader is
    /// left in it, and makes it current.
    private static func publish(loads: [Int], marked: Int, skipped: Int, hogs: Int) {
        let cur = current.load(ordering: .acquiring)
        let spare = reports[cur == 0 ? 1 : 0]
        if PassiveRef.destroy(spare.target) > 0 { waitedForReaders.wrappingAdd(1, ordering: .relaxed) }
        spare.pass = passes.load(ordering: .relaxed)
        spare.loads = loads
        spare.marked = marked
        spare.skippedBound = skipped
        spare.hogs = hogs
        PassiveRef.reinitialize(spare.target)
        current.store(cur == 0 ? 1 : 0, ordering: .releasing)
    }

    /// The monitor's `balance` (and the suites'): the latest report, read under
    /// a passive reference.
    static func printReport() {
        let shown: Bool? = withReport { r in
            Console.line { l in
                l.write("balance: pass "); l.dec(r.pass); l.write(", load per CPU")
                for (c, v) in r.loads.enumerated() { l.write(" "); l.dec(c); l.write(":"); l.dec(v) }
                l.write("; CPU-bound "); l.dec(r.hogs); l.write(", marked "); l.dec(r.marked)
                l.write(", bound at marking "); l.dec(r.skippedBound)
            }
            Console.line { l in
                l.write("balance: totals: passes "); l.dec(passes.load(ordering: .relaxed)); l.write(", marked ")
                l.dec(marked.load(ordering: .relaxed)); l.write(", bound at marking "); l.dec(skippedBound.load(ordering: .relaxed))
                l.write(", report buffers that waited for a reader "); l.dec(waitedForReaders.load(ordering: .relaxed))
            }
            return true
        }
        if shown == nil { Console.print("balance: no pass yet (the balancer starts with the first balanced thread)") }
    }

    /// Runs `body` on the latest report under a passive reference (bound, so
    /// the reference stays on this CPU), or returns nil before the first pass.
    static func withReport<R>(_ body: (BalanceReport) -> R) -> R? {
        let previous = Binding.bind()
        defer { Binding.unbind(previous) }
        let ref = Psref()
        while true {
            let flags = CPU.saveFlagsAndDisableInterrupts()     // load + acquire: no cross-call between
            let i = current.load(ordering: .acquiring)
            guard i >= 0 else { CPU.restoreFlags(flags); return nil }
            let report = reports[i]
            let ok = PassiveRef.tryAcquire(ref, report.target)
            CPU.restoreFlags(flags)
            guard ok else { continue }                          // being recycled: take the new one
            let result = body(report)
            PassiveRef.release(ref, report.target)
            return result
        }
    }
}
