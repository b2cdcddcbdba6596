import XCTest
@testable import QuartetCore

// The deterministic simulator (Kernel/Core/Bsd4/Bsd4Simulator.swift) driving the
// whole core: nice orders CPU hogs, sleepers end with better priorities than
// hogs, classes and masks are respected, and A2, A3, A5 hold (after every
// simulated millisecond in one test, every 7th elsewhere). The shares are
// printed, so `swift test` shows them.

private func hogs(_ nices: [Int]) -> [Bsd4SimLwpSpec] {
    nices.map { Bsd4SimLwpSpec(niceOrRtprio: $0) }
}

/// Runs with the invariant checks on (every `checkEveryMs` simulated ms: each
/// check walks all 96 lists, slow in a debug build) and fails on a violation.
private func simulate(_ w: Bsd4SimWorkload, checkEveryMs: Int = 7,
                      file: StaticString = #filePath, line: UInt = #line) -> Bsd4SimResult {
    let sim = Bsd4Simulator(w)
    sim.checkEveryMs = checkEveryMs
    let r = sim.run()
    XCTAssertNil(r.violation, file: file, line: line)
    return r
}

private func printTable(_ title: String, _ labels: [String], _ r: Bsd4SimResult) {
    print("bsd4 simulation: \(title)")
    print("  lwp                  %CPU  priority  estcpu  batch")
    for i in 0..<labels.count {
        let pct = "\(r.cpuPermille(i) / 10).\(r.cpuPermille(i) % 10)"
        let cols = [labels[i].padding(toLength: 18, withPad: " ", startingAt: 0),
                    String(repeating: " ", count: max(0, 6 - pct.count)) + pct,
                    String(format: "%8d", r.lwps[i].priority), String(format: "%6d", r.lwps[i].estcpu),
                    String(format: "%5d", r.lwps[i].batch)]
        print("  " + cols.joined(separator: "  "))
    }
}

final class Bsd4SimulationTests: XCTestCase {
    /// 8 CPU hogs (nice 0, 0, 0, 10, 10, 10, 20, 20) on 3 CPUs for a simulated minute.
    /// Every lwp of a better nice group gets more CPU than every lwp of a worse
    /// one; lwps of equal nice are within 50 thousandths of one CPU (5 percentage
    /// points) of their group's mean; no CPU idles while lwps wait.
    func testNiceOrdersTheSharesOfCPUHogs() {
        let nices = [0, 0, 0, 10, 10, 10, 20, 20]
        let r = simulate(Bsd4SimWorkload(cpus: 3, durationMs: 60_000, lwps: hogs(nices)), checkEveryMs: 13)
        printTable("8 CPU hogs on 3 CPUs, 60 s (tolerance for equal nice: 5 points)",
                   nices.map { "hog nice \($0)" }, r)
        let groups = [0, 10, 20].map { nice in nices.indices.filter { nices[$0] == nice }.map { r.cpuPermille($0) } }
        for g in groups {
            let mean = g.reduce(0, +) / g.count
            for share in g { XCTAssertLessThanOrEqual(abs(share - mean), 50, "equal nice: \(g)") }
        }
        XCTAssertGreaterThan(groups[0].min()!, groups[1].max()!, "nice 0 over nice 10: \(groups)")
        XCTAssertGreaterThan(groups[1].min()!, groups[2].max()!, "nice 10 over nice 20: \(groups)")
        // Work conservation: the 3 CPUs were busy all the time (the first
        // millisecond goes to the helpers starting the lwps).
        let used = r.lwps.reduce(0) { $0 + $1.cpuMs }
        XCTAssertGreaterThanOrEqual(used, 3 * 60_000 - 3)
        // Every hog's estcpu is near ESTCPUMAX: priorities differ by nice and batch.
        for l in r.lwps { XCTAssertGreaterThan(l.estcpu, 12_000) }
    }

    /// An lwp that sleeps most of the time ends with a better (numerically lower)
    /// priority than every CPU hog, and still gets the CPU it asks for.
    func testASleeperEndsWithABetterPriorityThanTheHogs() {
        var w = Bsd4SimWorkload(cpus: 2, durationMs: 60_000, lwps: hogs([0, 0, 0]))
        // 30 ms of CPU every 200 ms: 15 % of a CPU, and long enough bursts to be
        // caught by the 50 Hz clock (its estcpu is charged, not zero).
        w.lwps.append(Bsd4SimLwpSpec(niceOrRtprio: 0, pattern: .periodic(runMs: 30, sleepMs: 170)))
        let r = simulate(w)
        printTable("3 hogs and a sleeper on 2 CPUs, 60 s",
                   ["hog nice 0", "hog nice 0", "hog nice 0", "sleeper 30ms/170ms"], r)
        let sleeper = r.lwps[3]
        for hog in r.lwps[0..<3] { XCTAssertLessThan(sleeper.priority, hog.priority) }
        XCTAssertGreaterThan(sleeper.estcpu, 0)
        XCTAssertLessThan(sleeper.estcpu, r.lwps[0].estcpu)
        XCTAssertEqual(r.cpuPermille(3), 150, "the sleeper never waits: 30 of every 200 ms")
        // Its priority stayed better than the hogs' for the whole second half.
        for s in r.samples where s.timeMs >= 30_000 {
            XCTAssertLessThan(s.priority[3], s.priority[0..<3].min()!, "at \(s.timeMs) ms")
        }
    }

    /// Everything at once for 5 s, checked after every simulated millisecond:
    /// hogs, sleepers short and long, late starts, all three classes, masks.
    func testInvariantsHoldAfterEveryMillisecond() {
        var w = Bsd4SimWorkload(cpus: 4, durationMs: 5_000, lwps: hogs([0, 3, 7, 12, 20, -5]))
        w.lwps += [
            Bsd4SimLwpSpec(pattern: .periodic(runMs: 3, sleepMs: 17)),
            Bsd4SimLwpSpec(niceOrRtprio: 5, pattern: .periodic(runMs: 45, sleepMs: 1500)),
            Bsd4SimLwpSpec(pattern: .periodic(runMs: 1, sleepMs: 0)),
            Bsd4SimLwpSpec(cls: .realtime, niceOrRtprio: 2, pattern: .periodic(runMs: 20, sleepMs: 80)),
            Bsd4SimLwpSpec(cls: .idle, niceOrRtprio: 4, cpuMaskBits: 0b1000),
            Bsd4SimLwpSpec(niceOrRtprio: 1, cpuMaskBits: 0b0011, startMs: 777),
            Bsd4SimLwpSpec(niceOrRtprio: -10, pattern: .periodic(runMs: 250, sleepMs: 1100), cpuMaskBits: 0b0110,
                           startMs: 1500),
        ]
        let sim = Bsd4Simulator(w)
        while sim.nowMs < w.durationMs {
            sim.step()
            if let v = sim.invariantViolation() { XCTFail("at \(sim.nowMs) ms: \(v)"); return }
        }
        let c = sim.result.counters
        // The run went through the interesting paths.
        XCTAssertGreaterThan(c.steals, 0)
        XCTAssertGreaterThan(c.pokesRemote, 0)
        XCTAssertGreaterThan(c.remoteResched, 0)
        XCTAssertGreaterThan(c.sleptLong, 0)
        XCTAssertGreaterThan(c.spuriousIPIs, 0)
    }

    func testSameWorkloadSameResult() {
        var w = Bsd4SimWorkload(cpus: 3, durationMs: 20_000, lwps: hogs([0, 5, 10, -3]))
        w.lwps.append(Bsd4SimLwpSpec(niceOrRtprio: 0, pattern: .periodic(runMs: 7, sleepMs: 31)))
        w.lwps.append(Bsd4SimLwpSpec(niceOrRtprio: 2, pattern: .periodic(runMs: 40, sleepMs: 2500), startMs: 1234))
        w.lwps.append(Bsd4SimLwpSpec(cls: .idle, niceOrRtprio: 1, cpuMaskBits: 0b100))
        let a = simulate(w), b = simulate(w)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.samples.count, 200)
        XCTAssertTrue(a.samples.allSatisfy { $0.cpuPermille.allSatisfy { (0...1000).contains($0) } })
    }

    /// An lwp that sleeps 3 s at a time wakes through the "slept more than a
    /// second" branch: its estcpu is halved at each wake-up.
    func testLongSleepsTakeTheHalvingBranch() {
        var w = Bsd4SimWorkload(cpus: 1, durationMs: 30_000, lwps: hogs([0]))
        w.lwps.append(Bsd4SimLwpSpec(niceOrRtprio: 0, pattern: .periodic(runMs: 200, sleepMs: 3000)))
        let r = simulate(w)
        // Woken 9 times (every 3.2 s), each after more than a second.
        XCTAssertEqual(r.counters.sleptLong, 9)
        XCTAssertLessThan(r.lwps[1].priority, r.lwps[0].priority)
        // A sleeper of less than a second never takes that branch.
        var short = Bsd4SimWorkload(cpus: 1, durationMs: 10_000, lwps: hogs([0]))
        short.lwps.append(Bsd4SimLwpSpec(pattern: .periodic(runMs: 10, sleepMs: 900)))
        XCTAssertEqual(simulate(short).counters.sleptLong, 0)
    }

    func testClassesComeBeforeNice() {
        // A realtime hog owns a CPU against normal hogs at nice -20; an idle-class
        // hog gets nothing while normal hogs keep both CPUs busy.
        var w = Bsd4SimWorkload(cpus: 2, durationMs: 20_000, lwps: hogs([-20, -20]))
        w.lwps.append(Bsd4SimLwpSpec(cls: .realtime, niceOrRtprio: 10))
        w.lwps.append(Bsd4SimLwpSpec(cls: .idle, niceOrRtprio: 0))
        let r = simulate(w)
        XCTAssertGreaterThanOrEqual(r.cpuPermille(2), 999)
        XCTAssertEqual(r.lwps[3].cpuMs, 0)
        XCTAssertEqual(r.lwps[2].priority, 10)
        XCTAssertEqual(r.lwps[3].priority, 256)
        // With a CPU to spare, the idle hog gets it.
        var spare = Bsd4SimWorkload(cpus: 2, durationMs: 10_000, lwps: hogs([0]))
        spare.lwps.append(Bsd4SimLwpSpec(cls: .idle, niceOrRtprio: 0))
        let s = simulate(spare)
        XCTAssertGreaterThanOrEqual(s.cpuPermille(1), 999)
    }

    func testCPUMasksAreRespected() {
        // Two hogs pinned to CPU 0 share it; the third, free to go anywhere, gets CPU 1.
        var w = Bsd4SimWorkload(cpus: 2, durationMs: 20_000)
        w.lwps = [Bsd4SimLwpSpec(cpuMaskBits: 0b01), Bsd4SimLwpSpec(cpuMaskBits: 0b01), Bsd4SimLwpSpec()]
        let r = simulate(w)
        printTable("2 hogs pinned to CPU 0 and 1 free hog on 2 CPUs, 20 s",
                   ["hog cpuset=0", "hog cpuset=0", "hog anywhere"], r)
        XCTAssertEqual(r.cpuPermille(0) + r.cpuPermille(1), 1000, accuracy: 2)
        XCTAssertEqual(r.cpuPermille(0), 500, accuracy: 60)
        XCTAssertGreaterThanOrEqual(r.cpuPermille(2), 995)
        // A mask beyond the simulated CPUs is cut to them: an lwp allowed only on
        // CPU 5 of a 2-CPU machine never runs.
        var out = Bsd4SimWorkload(cpus: 2, durationMs: 2_000, lwps: hogs([0]))
        out.lwps.append(Bsd4SimLwpSpec(cpuMaskBits: 1 << 5))
        XCTAssertEqual(simulate(out).lwps[1].cpuMs, 0)
    }
}
