import XCTest

/// The bsd4 user scheduler in the kernel (docs/bsd4-scheduler.md): the seed-000
/// torture on 2, 4 and 8 CPUs, under KVM, and its negative control.
final class Bsd4Tests: QEMUTestCase {
    /// The seed-000 torture's records (Bsd4Torture.swift): the window hit
    /// (`window`; `window-lwp`, the moved lwp itself, only when the window is
    /// held), A2, A3, A5, A6, A8 with no violation and each checked, the scan
    /// in its thread, the sleepers, every lwp exited; the verdict derived from them.
    private func assertTorture(_ r: QEMUResult, natural: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        assertVerdict(r, "bsd4-torture", file: file, line: line)
        let suite = "bsd4-torture"
        assertPass(r, suite, "window", atLeast: 1, file: file, line: line)
        // The natural window (bsd4.window_us=0) reaches the moved lwp itself
        // in about half of the runs: reported there (a note), required when held.
        if natural {
            XCTAssertNil(r.record(suite: suite, id: "window-lwp"), "natural window: the moved lwp itself is a note", file: file, line: line)
        } else {
            assertPass(r, suite, "window-lwp", atLeast: 1, file: file, line: line)
        }
        for id in ["a2", "a3", "a5-scan", "a5-tick", "a6", "a8", "scan-in-interrupt", "exited"] {
            assertPass(r, suite, id, atMost: 0, file: file, line: line)
        }
        for id in ["a3-checked", "a5-tick-checked", "a6-checked", "a8-checked", "second-scans", "sleeps"] {
            assertPass(r, suite, id, atLeast: 1, file: file, line: line)
        }
        assertPass(r, suite, "created", file: file, line: line)
        // Notes, not checks: the hits apart (scripts/races.sh reads this line)
        // and the spurious requests, reported, not required (docs/bsd4-scheduler.md).
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("bsd4-torture: window hits natural ") }, "natural and held hits",
                      file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.contains("spurious user-resched requests of ") && $0.contains("(reported, not required)") },
                      "the spurious-request figure", file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  cpu 1: uschedcp ") }, "the run-queue dump", file: file, line: line)
        print("[bsd4-torture, \(r.run.accel), -smp \(r.run.smp)] "
              + r.lines.filter { $0.hasPrefix("bsd4-torture: ") }.joined(separator: " | "))
    }

    /// bsd4-fair, bsd4-refuse and bsd4-offer (docs/bsd4-scheduler.md): neither
    /// equal-nice hog starved, recalculation through ASTs and the scan; refused
    /// requests sent again; A7 (bsd4-offer skips below 4 CPUs: needs-4-cpus).
    private func assertChecks(_ r: QEMUResult, smp: Int, file: StaticString = #filePath, line: UInt = #line) {
        assertPass(r, "bsd4-fair", "created", file: file, line: line)
        assertPass(r, "bsd4-fair", "no-starve", atLeast: 334, file: file, line: line)
        assertPass(r, "bsd4-fair", "recalc-rate", atMost: 49, file: file, line: line)
        assertPass(r, "bsd4-fair", "recalc-min", atLeast: 5, file: file, line: line)
        assertPass(r, "bsd4-refuse", "refused", atLeast: 1, file: file, line: line)
        assertPass(r, "bsd4-refuse", "ready-bit", file: file, line: line)
        assertPass(r, "bsd4-refuse", "designated", atLeast: 9, atMost: 9, file: file, line: line)
        if smp >= 4 {
            assertPass(r, "bsd4-offer", "rounds", atLeast: 20, atMost: 20, file: file, line: line)
            assertPass(r, "bsd4-offer", "a7", atMost: 0, file: file, line: line)
            assertPass(r, "bsd4-offer", "a7-offers", atLeast: 1, file: file, line: line)
        } else {
            assertRecord(r, "bsd4-offer", "run", result: "skip", reason: "needs-4-cpus", file: file, line: line)
        }
        print("[bsd4 checks, -smp \(smp)] " + r.passes.filter { $0.hasPrefix("bsd4-fair") || $0.hasPrefix("bsd4-refuse")
                                                                || $0.hasPrefix("bsd4-offer") }.joined(separator: " | "))
    }

    func testTortureUnderTCGWith2And4And8CPUs() throws {
        for smp in [2, 4, 8] {
            let r = try boot(QEMURun(smp: smp, accel: .tcg, cmdline: "run=bsd4-fair,bsd4-refuse,bsd4-offer,bsd4-torture",
                                     timeout: 300))
            assertTorture(r)
            assertChecks(r, smp: smp)
        }
    }

    /// Without the widened window (bsd4.window_us=0) the race is still hit:
    /// the natural window, from resetpriority's unlock to the second read.
    func testTortureHitsTheNaturalWindowUnderTCG() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=bsd4-torture bsd4.window_us=0", timeout: 240))
        assertTorture(r, natural: true)
    }

    func testTortureUnderKVM() throws {
        try requireKVM()
        let r = try boot(QEMURun(smp: 4, accel: .kvm, cmdline: "run=bsd4-torture", timeout: 300))
        assertTorture(r)
    }

    /// Negative control, five runs: DragonFly's 2008 assertion on the remote
    /// CPU's uschedcp, after resetpriority dropped the lock, panics with the
    /// seed's message every time.
    func testRemoteAssertionPanicsFiveTimesOutOfFive() throws {
        for _ in 1...5 {
            let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=bsd4-torture bug.bsd4_remote_assert=1", timeout: 240))
            XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.bsd4_remote_assert puts a known bug back on purpose"))
            assertPanic(r, "assertion: dd->uschedcp != lp in bsd4_resetpriority")
            assertFrame(r, naming: "Bsd4Clock.scan")
        }
    }

    /// Negative controls for the checks that had only hand mutations, in one
    /// boot (each knob breaks one suite's check and no other's): a refused
    /// request lost (bsd4-refuse), the rdyprocmask bit cleared after the
    /// unlock (bsd4-offer, A7), rrcount carried over an install (A6) and the
    /// helper above the lwps (A8), both in bsd4-torture. Every one of them
    /// must FAIL, by its own check.
    func testBsd4ControlsFailTheirChecks() throws {
        let knobs = ["bug.bsd4_refuse_lost", "bug.bsd4_late_ready_clear", "bug.bsd4_rr_carry", "bug.bsd4_helper_high"]
        let r = try boot(QEMURun(smp: 4, accel: .tcg,
                                 cmdline: "run=bsd4-refuse,bsd4-offer,bsd4-torture " + knobs.map { $0 + "=1" }.joined(separator: " "),
                                 timeout: 300))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        for knob in knobs {
            XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: \(knob) puts a known bug back on purpose"), knob)
        }
        assertFail(r, "bsd4-refuse", "designated")
        assertFail(r, "bsd4-offer", "a7", atLeast: 1)
        assertFail(r, "bsd4-torture", "a6", atLeast: 1)
        assertFail(r, "bsd4-torture", "a8", atLeast: 1)
        assertVerdict(r, "bsd4-torture", success: false)
        print("[bsd4 controls] " + r.fails.joined(separator: " | "))
    }

    /// The `make run` demo: the first share report lists every lwp, the
    /// monitor still answers (`sched` shows the queues and designations, `exit`
    /// leaves with success). Scheduling outcomes, not timings: the nice -10 hog
    /// out-earns the nice 19 one, and the interactive lwp keeps a better
    /// priority than every hog.
    func testDemoReportsSharesWhileTheMonitorWorks() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "demo=bsd4", timeout: 120,
                                 stdin: Array("sched\nexit\n".utf8), stdinAfter: "interactive nice"))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        let rows = r.lines.filter { $0.hasPrefix("  lwp ") && $0.contains(" share ") }.prefix(6)
        XCTAssertEqual(rows.count, 6, "one report row per lwp")
        func field(_ row: String, _ name: String) -> Int? {
            guard let range = row.range(of: name + " ") else { return nil }
            return Int(row[range.upperBound...].trimmingCharacters(in: .whitespaces)
                .prefix { $0 == "-" || $0.isNumber })
        }
        let hogs = rows.filter { $0.contains(" hog ") }
        let share = { (nice: Int) in hogs.first { field($0, "nice") == nice }.flatMap { field($0, "share") } }
        if let strong = share(-10), let weak = share(19) {
            XCTAssertGreaterThan(strong, weak, "nice -10 out-earns nice 19: \(rows)")
        } else {
            XCTFail("no nice -10 / nice 19 rows: \(rows)")
        }
        if let interactive = rows.first(where: { $0.contains(" interactive ") }).flatMap({ field($0, "priority") }) {
            for hog in hogs { XCTAssertLessThan(interactive, field(hog, "priority") ?? 0, "interactive beats \(hog)") }
        } else {
            XCTFail("no interactive row: \(rows)")
        }
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("bsd4: 6 lwps, runqcount ") }, "sched answered")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  cpu 0: uschedcp none") }, "CPU 0 (the monitor's) runs no lwp")
    }

    /// The monitor's `sched` command prints the scheduler state before any lwp
    /// exists (and does not crash).
    func testMonitorSchedBeforeAnyLwp() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, stdin: Array("sched\nexit\n".utf8)))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine(containing: "bsd4: not started"), "sched before any lwp")
    }
}
