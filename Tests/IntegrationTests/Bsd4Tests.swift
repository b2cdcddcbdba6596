import XCTest

/// The bsd4 user scheduler in the kernel (docs/bsd4-scheduler.md): the seed-000
/// torture on 2, 4 and 8 CPUs, under KVM, and its negative control.
final class Bsd4Tests: QEMUTestCase {
    /// "... changed under the scan N times, to the moved lwp itself M times" → (N, M).
    private func windowCounts(_ r: QEMUResult) -> (changed: Int, becameLwp: Int) {
        guard let line = r.lines.first(where: { $0.hasPrefix("bsd4-torture: ") && $0.contains("changed under the scan") }) else {
            return (0, 0)
        }
        return (line.number(after: "changed under the scan ") ?? 0, line.number(after: "to the moved lwp itself ") ?? 0)
    }

    private func assertTorture(_ r: QEMUResult, natural: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        XCTAssertTrue(r.hasLine("End of test: SUCCESS"), file: file, line: line)
        let w = windowCounts(r)
        XCTAssertGreaterThan(w.changed, 0, "the scan saw a remote uschedcp change under it", file: file, line: line)
        // The natural window (bsd4.window_us=0) reaches the moved lwp itself
        // in about half of the runs: reported there, required when held.
        if !natural { XCTAssertGreaterThan(w.becameLwp, 0, "... to the lwp it had just moved", file: file, line: line) }
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("bsd4-torture: window hits natural ") }, "natural and held hits",
                      file: file, line: line)
        // Spurious requests are reported, not required (docs/bsd4-scheduler.md).
        XCTAssertTrue(r.lines.contains { $0.contains("spurious user-resched requests of ") && $0.contains("(reported, not required)") },
                      "the spurious-request figure", file: file, line: line)
        XCTAssertTrue(r.passes.contains { $0.hasPrefix("bsd4-torture: the " + (natural ? "natural " : "") + "window was hit") },
                      "the window check", file: file, line: line)
        for check in ["A2: queues and masks consistent", "A3: curprocmask bit <=> uschedcp",
                      "A5: every lwp in exactly one place", "A5 by each CPU at its scheduler tick",
                      "A6: rrcount restarts at each install", "A8: a running lwp in user code",
                      "the once-a-second scan runs from its thread",
                      "sleepers slept and woke", "A5: every lwp came back and exited"] {
            XCTAssertTrue(r.passes.contains { $0.hasPrefix("bsd4-torture: " + check) }, check, file: file, line: line)
        }
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  cpu 1: uschedcp ") }, "the run-queue dump", file: file, line: line)
        print("[bsd4-torture, \(r.run.accel), -smp \(r.run.smp)] "
              + r.lines.filter { $0.hasPrefix("bsd4-torture: ") }.joined(separator: " | "))
    }

    /// bsd4-fair, bsd4-refuse and bsd4-offer (docs/bsd4-scheduler.md): equal
    /// shares, refused requests sent again, A7 (bsd4-offer skips below 4 CPUs).
    private func assertChecks(_ r: QEMUResult, smp: Int, file: StaticString = #filePath, line: UInt = #line) {
        for check in ["bsd4-fair: equal nice, one CPU", "bsd4-fair: hogs recalculated",
                      "bsd4-refuse: the knob refused", "bsd4-refuse: an lwp pinned to idle CPU",
                      "bsd4-refuse: a refused wake-up that took no rdyprocmask bit"]
            + (smp >= 4 ? ["bsd4-offer: pairs of lwps pinned", "bsd4-offer: A7: no CPU offered work twice"] : []) {
            XCTAssertTrue(r.passes.contains { $0.hasPrefix(check) }, check, file: file, line: line)
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
        for check in ["bsd4-refuse: an lwp pinned to idle CPU", "bsd4-offer: A7: no CPU offered work twice",
                      "bsd4-torture: A6: rrcount restarts at each install", "bsd4-torture: A8: a running lwp in user code"] {
            XCTAssertTrue(r.fails.contains { $0.hasPrefix(check) }, "FAIL: \(check)")
        }
        XCTAssertTrue(r.hasLine("End of test: FAILURE"), "the torture's verdict")
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
