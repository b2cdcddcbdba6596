import Synchronization

// bind-torture: the seed-001 scenario (docs/binding-and-psref.md). CPU-bound
// threads that never sleep start on CPU 0, where two pinned spinners add load,
// so the balancer's statistics pass marks them for other CPUs. Each loops:
// bind, take a passive reference, spin past a time slice with a few yields
// (the switch sees its target while it is bound), check it is still on its CPU
// (B1), release (B3: the seed's panic otherwise), unbind, then run unbound for
// a while (the switch may move it) and now and then hop to a random CPU by
// itself so that the load never settles. Counted from our own threads:
// migrations at a switch while unbound (the balancer works) and switches that
// found a target on a bound thread and kept it here (the window of the race).
// With bug.migrate_ignores_bound=1 such a switch moves the thread and its
// release panics: "passive reference transferred from CPU a to CPU b".

enum BindTorture {
    static let suite = TestSuite(name: "bind-torture", kind: .normal,
                                 summary: "seed 001: balancer marks threads that then bind and hold a psref; B1, B3; the switch checks BOUND",
                                 torture: true, body: run)

    static let stop = Atomic<Bool>(false)
    /// Our own traffic: B1 violations the workers saw, references released.
    static let b1Seen = Atomic<UInt64>(0)
    static let released = Atomic<UInt64>(0)

    static func worker(_ target: PsrefTarget, _ index: Int) {
        var rng = XorShift(seed: UInt64(index) &* 0x9E37_79B9 &+ TSC.now)
        let ref = Psref()
        let slice = TSC.ticksPerMs * 1000 / UInt64(Clock.hz)           // one tick: a time slice
        while !stop.load(ordering: .relaxed) {
            let previous = Binding.bind()
            let cpu = PerCPU.currentNumber                                // stable while bound
            guard PassiveRef.tryAcquire(ref, target) else { Binding.unbind(previous); break }
            // Past a time slice (the tick preempts us), with a few yields.
            for _ in 0..<3 {
                TSC.spin(cycles: slice / 2 + UInt64(rng.below(Int(slice))))
                Scheduler.yield()
            }
            if PerCPU.currentNumber != cpu { b1Seen.wrappingAdd(1, ordering: .relaxed) }        // B1, seen by the thread
            PassiveRef.release(ref, target)
            released.wrappingAdd(1, ordering: .relaxed)
            Binding.unbind(previous)
            // Unbound: the switch may hand us to our target.
            TSC.spin(cycles: slice)
            Scheduler.yield()
            if rng.below(16) == 0, let to = SMP.online.nth(rng.below(SMP.online.count)) { Scheduler.migrate(to: to) }
        }
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 4 else { t.skip("run", reason: .needs4CPUs, "bind-torture needs at least 4 CPUs"); return }
        guard Clock.enabled else { t.skip("run", reason: .needsTick, "bind-torture needs the tick: the balancer's pass and the preemptions run on it"); return }
        if BugKnobs.migrateIgnoresBound { t.note { $0.write("negative control: the switch path migrates without checking BOUND") } }
        stop.store(false, ordering: .relaxed)
        let target = PsrefTarget("bind-torture")
        b1Seen.store(0, ordering: .relaxed)
        released.store(0, ordering: .relaxed)
        let n = 2 * cpus.count
        var workers: [Thread] = []
        var pinned: [Thread] = []
        for _ in 0..<2 {
            if let td = Thread.spawn("pinned load", cpu: 0, {
                while !BindTorture.stop.load(ordering: .relaxed) { TSC.spin(cycles: TSC.ticksPerMs); Scheduler.yield() }
            }) { pinned.append(td) }
        }
        for i in 0..<n {
            if let td = Thread.spawn("bind worker", cpu: 0, balanced: true, { BindTorture.worker(target, i) }) {
                workers.append(td)
            }
        }
        t.expect("started", workers.count == n && pinned.count == 2) { l in
            l.write("started "); l.dec(workers.count); l.write(" balanced workers and "); l.dec(pinned.count); l.write(" pinned spinners on CPU 0")
        }
        func totals() -> (moved: UInt64, kept: UInt64, b1: UInt64) {
            var r: (moved: UInt64, kept: UInt64, b1: UInt64) = (0, 0, 0)
            for td in workers {
                r.moved &+= td.switchMigrations.load(ordering: .relaxed)
                r.kept &+= td.keptBound.load(ordering: .relaxed)
                r.b1 &+= td.b1Violations.load(ordering: .relaxed)
            }
            return r
        }
        // At least 4 s (the pass needs two to call a thread CPU-bound), longer
        // (up to 15x) until both counts are above 0.
        let seconds = UInt64(max(4, KernelOptions.int("torture.seconds", default: 2)))
        let start = TSC.now
        let end = start &+ TSC.ticksPerMs &* 1000 &* seconds
        let limit = start &+ TSC.ticksPerMs &* 15_000 &* seconds
        let passes0 = Balancer.passes.load(ordering: .relaxed)
        while true {
            _ = Sleep.sleep(on: Sleep.channel(target), timeoutTicks: Clock.hz / 10)
            let now = TSC.now
            let s = totals()
            if now >= limit || (now >= end && s.moved > 0 && s.kept > 0) { break }
        }
        let elapsedMs = (TSC.now &- start) / TSC.ticksPerMs
        stop.store(true, ordering: .relaxed)
        // Retire the target while workers may still hold it: destroy waits.
        let waits = PassiveRef.destroy(target)
        for td in workers { td.join() }
        for td in pinned { td.join() }
        Balancer.waitUntilIdle()
        let s = totals()
        let seen = b1Seen.load(ordering: .relaxed), rel = released.load(ordering: .relaxed)
        Console.line { l in
            l.write("bind-torture: "); l.dec(n); l.write(" workers on "); l.dec(cpus.count); l.write(" CPUs for "); l.dec(elapsedMs)
            l.write(" ms; balancer passes "); l.dec(Balancer.passes.load(ordering: .relaxed) &- passes0)
            l.write("; references taken and released "); l.dec(rel)
            l.write("; migrated at a switch while unbound "); l.dec(s.moved)
            l.write("; bound with a target at a switch, kept "); l.dec(s.kept)
        }
        Balancer.printReport()                  // as the monitor's `balance` shows it
        t.expect("moved", s.moved, .above(0)) { l in l.write("the balancer moved unbound workers at their switch "); l.dec(s.moved); l.write(" times") }
        t.expect("window", inv: "B2", s.kept, .above(0)) { l in
            l.write("the window was hit: a switch found a marked worker bound "); l.dec(s.kept); l.write(" times and kept it (B2)")
        }
        // The value: switches that moved a bound worker plus the workers' own sightings.
        t.expect("b1", inv: "B1", s.b1 &+ seen, .equals(0)) { l in
            l.write("B1: bound workers stayed on their CPU ("); l.dec(s.b1); l.write(" switches and, independently, ")
            l.dec(seen); l.write(" of the workers' own checks saw another)")
        }
        t.expect("released", inv: "B3", rel, .above(0)) { l in
            l.write("the workers took and released "); l.dec(rel); l.write(" passive references (B3: a transfer would have panicked)")
        }
        t.note { l in l.write("psref destroy with workers still running waited "); l.dec(waits); l.write(" rounds") }
    }
}
