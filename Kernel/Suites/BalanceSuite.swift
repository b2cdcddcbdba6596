import Synchronization

// balance: the balancer's effect (docs/binding-and-psref.md). 2 x ncpu CPU
// hogs that never sleep nor yield all start on CPU 0; the statistics pass marks
// them and their switches (the tick's round robin) hand them out, until each
// CPU runs about two. Half of them spin almost all the time inside critical
// sections: the tick's preemption is deferred to their outermost
// critical_exit, and they must move there too (a target dropped at a deferred
// preemption would keep them on CPU 0 for good). Printed every half second;
// checked at the end: every CPU within one of the even share, and the moves
// were the balancer's (switch migrations of our hogs, of both kinds).

enum BalanceSuite {
    static let suite = TestSuite(name: "balance", kind: .normal,
                                 summary: "2 x ncpu hogs (half in critical sections) started on CPU 0 end spread about evenly (the pass marks, the switch moves)",
                                 torture: true, body: run)

    static let stop = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "balance needs a second CPU"); return }
        guard Clock.enabled else { t.skip("run", reason: .needsTick, "balance needs the tick: the pass and the round robin run on it"); return }
        stop.store(false, ordering: .relaxed)
        let n = 2 * cpus.count
        var hogs: [Thread] = []
        for i in 0..<n {
            let critical = i % 2 == 1
            if let td = Thread.spawn("hog", cpu: 0, balanced: true, {
                while !BalanceSuite.stop.load(ordering: .relaxed) {
                    if critical {
                        CriticalSection.enter()
                        TSC.spin(cycles: TSC.ticksPerMs / 10)
                        CriticalSection.exit()
                    } else {
                        TSC.spin(cycles: TSC.ticksPerMs / 10)
                    }
                }
            }) { hogs.append(td) }
        }
        t.expect("started", UInt64(hogs.count), .equals(UInt64(n))) { l in l.write("started "); l.dec(hogs.count); l.write(" hogs on CPU 0") }
        func spread() -> [Int] {
            var per = [Int](repeating: 0, count: Scheduler.perCPU.count)
            for td in hogs where td.cpu < per.count { per[td.cpu] += 1 }
            return per
        }
        func even(_ per: [Int]) -> Bool {
            var ok = true
            cpus.forEach { c in if per[c] < 1 || per[c] > 3 { ok = false } }
            return ok
        }
        // Up to 10 s, reported every half second; done once even for 1 s.
        let start = TSC.now
        var evenSince: UInt64? = nil
        var per = spread()
        while TSC.now &- start < TSC.ticksPerMs &* 10_000 {
            _ = Sleep.sleep(on: Sleep.channel(Thread.current), timeoutTicks: Clock.hz / 2)
            per = spread()
            let ms = (TSC.now &- start) / TSC.ticksPerMs
            Console.line { l in
                l.write("balance: "); l.dec(ms); l.write(" ms:")
                cpus.forEach { c in l.write(" cpu"); l.dec(c); l.write("="); l.dec(per[c]) }
            }
            if even(per) {
                if evenSince == nil { evenSince = ms }
                if ms - evenSince! >= 1000 { break }
            } else {
                evenSince = nil
            }
        }
        stop.store(true, ordering: .relaxed)
        for td in hogs { td.join() }
        Balancer.waitUntilIdle()
        var moves: UInt64 = 0, criticalMoves: UInt64 = 0, deferred: UInt64 = 0
        for (i, td) in hogs.enumerated() {
            moves &+= td.switchMigrations.load(ordering: .relaxed)
            if i % 2 == 1 { criticalMoves &+= td.switchMigrations.load(ordering: .relaxed); deferred &+= td.deferredPreemptions }
        }
        t.expect("even", even(per)) { l in
            l.write("each CPU runs about two hogs (1..3):")
            cpus.forEach { c in l.write(" cpu"); l.dec(c); l.write("="); l.dec(per[c]) }
            if let e = evenSince { l.write("; even from "); l.dec(e); l.write(" ms") }
        }
        t.expect("moves", moves, .atLeast(UInt64(n - 3))) { l in
            l.write("the hogs were moved by their own switches "); l.dec(moves); l.write(" times (at least "); l.dec(n - 3); l.write(")")
        }
        // Of the n/2 hogs in critical sections, all but one CPU's share move.
        let criticalNeeded = UInt64(max(1, n / 2 - 2))
        // The deferred count is reported, not checked: any kernel preempts a
        // thread that is always in a critical section at its critical_exit.
        // The moves are what tells a dropped target (bug.balance_drops_deferred).
        t.expect("critical-moves", criticalMoves, .atLeast(criticalNeeded)) { l in
            l.write("the hogs in critical sections moved "); l.dec(criticalMoves); l.write(" times (at least "); l.dec(criticalNeeded)
            l.write("), preempted "); l.dec(deferred); l.write(" times at their outermost critical_exit")
        }
    }
}
