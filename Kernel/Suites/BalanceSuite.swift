import Synchronization

// balance: the balancer's effect (docs/binding-and-psref.md). 2 x ncpu CPU
// hogs that never sleep nor yield all start on CPU 0; the statistics pass marks
// them and their switches (the tick's round robin) hand them out, until each
// CPU runs about two. Printed every half second; checked at the end: every CPU
// within one of the even share, and the moves were the balancer's (switch
// migrations of our hogs).

enum BalanceSuite {
    static let suite = TestSuite(name: "balance", kind: .normal,
                                 summary: "2 x ncpu hogs started on CPU 0 end spread about evenly (the pass marks, the switch moves)",
                                 body: run)

    static let stop = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("balance needs a second CPU"); return }
        guard Clock.enabled else { t.skip("balance needs the tick: the pass and the round robin run on it"); return }
        stop.store(false, ordering: .relaxed)
        let n = 2 * cpus.count
        var hogs: [Thread] = []
        for _ in 0..<n {
            if let td = Thread.spawn("hog", cpu: 0, balanced: true, {
                while !BalanceSuite.stop.load(ordering: .relaxed) { TSC.spin(cycles: TSC.ticksPerMs / 10) }
            }) { hogs.append(td) }
        }
        t.check(hogs.count == n) { l in l.write("started "); l.dec(hogs.count); l.write(" hogs on CPU 0") }
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
        var moves: UInt64 = 0
        for td in hogs { moves &+= td.switchMigrations.load(ordering: .relaxed) }
        t.check(even(per)) { l in
            l.write("each CPU runs about two hogs (1..3):")
            cpus.forEach { c in l.write(" cpu"); l.dec(c); l.write("="); l.dec(per[c]) }
            if let e = evenSince { l.write("; even from "); l.dec(e); l.write(" ms") }
        }
        t.check(moves >= UInt64(n - 3)) { l in
            l.write("the hogs were moved by their own switches "); l.dec(moves); l.write(" times (at least "); l.dec(n - 3); l.write(")")
        }
        Console.print(even(per) && moves >= UInt64(n - 3) ? "End of test: SUCCESS" : "End of test: FAILURE")
    }
}
