import Synchronization

// The `make run` demo (`demo=bsd4` on the command line): CPU hogs with different
// nice values and one interactive lwp under the bsd4 scheduler, their CPU shares
// printed every few seconds while the monitor prompt stays usable (the lwps keep
// off CPU 0, where the monitor polls). The monitor's `demo off` silences the
// reports, `sched` shows the queues.

enum Bsd4Demo {
    static let hogNices = [-10, 0, 0, 10, 19]
    static let reporting = Atomic<Bool>(true)
    static let periodSeconds: UInt64 = 5
    /// The user chunk of a hog and of the interactive lwp, in µs (TSC time).
    static let hogChunkUs: UInt64 = 500
    static let interactiveChunkUs: UInt64 = 2_000

    static func setReporting(_ on: Bool) { reporting.store(on, ordering: .relaxed) }

    static func start() {
        var mask = SMP.online
        if mask.count > 1 { mask.remove(0) }
        var lwps: [Lwp] = []
        for (i, nice) in hogNices.enumerated() {
            let cpu = mask.nth(i % mask.count) ?? 0
            if let lp = Bsd4Scheduler.spawn("hog", nice: nice, mask: mask, cpu: cpu, { lp in
                while true {
                    Bsd4Scheduler.userret(lp)
                    TSC.spin(cycles: TSC.ticksPerMs * Bsd4Demo.hogChunkUs / 1000)
                    lp.progress.wrappingAdd(1, ordering: .relaxed)
                }
            }) { lwps.append(lp) }
        }
        // Interactive: 2 ms of work, then 30 ms asleep (a keystroke's worth).
        if let lp = Bsd4Scheduler.spawn("interactive", nice: 0, mask: mask, cpu: mask.first ?? 0, { lp in
            while true {
                Bsd4Scheduler.userret(lp)
                TSC.spin(cycles: TSC.ticksPerMs * Bsd4Demo.interactiveChunkUs / 1000)
                lp.progress.wrappingAdd(1, ordering: .relaxed)
                Bsd4Scheduler.sleep(lp, ticks: 3 * Clock.hz / 100)
            }
        }) { lwps.append(lp) }
        Console.line { l in
            l.write("demo: "); l.dec(hogNices.count); l.write(" CPU hogs (nice")
            for n in hogNices { l.write(" "); l.dec(n) }
            l.write(") and 1 interactive lwp on "); l.dec(mask.count)
            l.write(" CPUs; shares every 5 s ('demo off' stops them, 'sched' shows the queues)")
        }
        Thread.spawn("demo reporter", cpu: 0) { report(lwps) }
    }

    /// "share" is what bsd4 charged (scheduler ticks, sampled by the timer);
    /// "held" the user chunks finished, in TSC time: the wall-clock share the
    /// lwp's thread held its CPU. Under a host that does not run every vCPU
    /// all the time, timer ticks are lost and share falls below held
    /// (docs/bsd4-scheduler.md, "The demo's figures").
    private static func report(_ lwps: [Lwp]) {
        var last = lwps.map { _ in UInt64(0) }
        var lastProgress = lwps.map { _ in UInt64(0) }
        var lastTime = Bsd4Scheduler.now
        while true {
            _ = Sleep.sleep(on: Sleep.channel(Thread.current), timeoutTicks: periodSeconds * Clock.hz)
            let now = Bsd4Scheduler.now
            let span = UInt64(max(1, now - lastTime))
            lastTime = now
            Bsd4Scheduler.lock.lock()
            let rows = lwps.map { ($0.id, $0.name, $0.nice, $0.priority, $0.est.estcpu, $0.runTicks) }
            Bsd4Scheduler.lock.unlock()
            let progress = lwps.map { $0.progress.load(ordering: .relaxed) }
            defer {
                for (i, r) in rows.enumerated() { last[i] = r.5 }
                lastProgress = progress
            }
            guard reporting.load(ordering: .relaxed) else { continue }
            Console.line { l in
                l.write("demo: CPU share over the last "); l.dec(span / UInt64(Bsd4.estcpuFreq)); l.write(" s (100% = one CPU)")
            }
            for (i, r) in rows.enumerated() {
                let pct = (r.5 &- last[i]) * 100 / span
                Console.line { l in
                    l.write("  lwp "); l.dec(r.0, width: 3); l.write(" "); l.padRight(r.1, width: 12)
                    l.write("nice "); l.dec(r.2, width: 3); l.write("  share "); l.dec(pct, width: 3); l.write("%")
                    l.write("  priority "); Bsd4Dump.writePriority(&l, r.3); l.write("  estcpu "); l.dec(r.4)
                    let chunk = i < hogNices.count ? hogChunkUs : interactiveChunkUs
                    let spanUs = span * UInt64(1_000_000 / Bsd4.estcpuFreq)
                    l.write("  held "); l.dec((progress[i] &- lastProgress[i]) * chunk * 100 / spanUs); l.write("%")
                }
            }
        }
    }
}
