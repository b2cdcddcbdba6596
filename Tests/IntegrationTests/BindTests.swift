import XCTest

/// Binding, the balancer and passive references (docs/binding-and-psref.md):
/// bind-torture and bind-rules on 4 and 8 CPUs under TCG and 4 under KVM, the
/// balancer's effect, and the seed-001 control.
final class BindTests: QEMUTestCase {
    /// bind-rules' checks with the tick on (each one's id).
    static let bindRulesChecks = ["nesting", "bound-stays", "psref-cpu", "sleep-stays", "unbound-moves", "destroy-waits",
                                  "destroy-sleeps", "b6-setup", "interrupts-off-stays", "target-expires", "fresh-target-moves",
                                  "affinity-drops-target", "affinity-moves", "affinity-ignores-target", "affinity-bound-stays",
                                  "balancer-restart"]

    private func assertBinding(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        assertVerdict(r, "bind-torture", file: file, line: line)
        let moved = assertPass(r, "bind-torture", "moved", atLeast: 1, file: file, line: line)           // the balancer moved unbound workers
        let kept = assertPass(r, "bind-torture", "window", atLeast: 1, file: file, line: line)           // a switch found a marked worker bound
        assertPass(r, "bind-torture", "b1", atMost: 0, file: file, line: line)
        assertPass(r, "bind-torture", "released", atLeast: 1, file: file, line: line)
        for id in BindTests.bindRulesChecks { assertPass(r, "bind-rules", id, file: file, line: line) }
        print("[bind-torture records] moved \(moved?.value ?? 0), kept \(kept?.value ?? 0)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("balance: pass ") && $0.contains(", load per CPU 0:") },
                      "the balancer's report, read under a psref", file: file, line: line)
        print("[bind-torture, \(r.run.accel), -smp \(r.run.smp)] "
              + r.lines.filter { $0.hasPrefix("bind-torture: ") || $0.hasPrefix("balance: ") }.joined(separator: " | "))
    }

    /// wake-migrate's checks: the window was hit, and no stale wake queued a
    /// thread on a CPU that did not own it.
    private func assertWakeMigrate(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertVerdict(r, "wake-migrate", file: file, line: line)
        for id in ["started", "all-out", "moved", "window", "once-out"] { assertPass(r, "wake-migrate", id, file: file, line: line) }
        for id in ["owner", "handoff-stamp", "once-lost", "once-owner"] { assertPass(r, "wake-migrate", id, atMost: 0, file: file, line: line) }
        assertPass(r, "wake-migrate", "once-rounds", atLeast: 10, file: file, line: line)
        print("[wake-migrate, -smp \(r.run.smp)] " + r.lines.filter { $0.hasPrefix("wake-migrate: ") }.joined(separator: " | "))
    }

    func testBindingUnderTCGWith4And8CPUs() throws {
        for smp in [4, 8] {
            let r = try boot(QEMURun(smp: smp, accel: .tcg, cmdline: "run=bind-rules,wake-migrate,bind-torture", timeout: 300))
            assertBinding(r)
            assertWakeMigrate(r)
        }
    }

    /// Without the tick: psref destroy must sleep (not poll) so that a
    /// lower-priority holder on its own CPU runs and releases.
    func testBindRulesWithoutTheTick() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=bind-rules tick=0", timeout: 90))
        assertPassed(r)
        assertPass(r, "bind-rules", "destroy-sleeps")
        assertPass(r, "bind-rules", "interrupts-off-stays")
        assertRecord(r, "bind-rules", "sleep-stays", result: "skip", reason: "needs-tick")
        assertRecord(r, "bind-rules", "balancer-restart", result: "skip", reason: "needs-tick")
    }

    /// Negative control, three runs: a wake message is handled as a hand-off
    /// (no re-check of the owner, the code before B5); a stale wake queues the
    /// thread on the CPU it left and a B5 check panics.
    func testWakeAsHandoffControlPanicsOnB5() throws {
        for _ in 1...3 {
            let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=wake-migrate bug.wake_as_handoff=1", timeout: 120))
            XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.wake_as_handoff puts a known bug back on purpose"))
            assertPanic(r, "B5: ")
            XCTAssertTrue(r.hasLine("FAIL: wake-migrate: the suite ended in the panic above"))
        }
    }

    /// Negative control: a preempted thread moves whatever the interrupt state
    /// of its code (before B6); bind-rules' B6 check fails.
    func testMoveWithInterruptsOffControlFailsB6() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=bind-rules bug.move_with_interrupts_off=1", timeout: 90))
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.move_with_interrupts_off puts a known bug back on purpose"))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        XCTAssertEqual(r.records.filter(\.failed).map(\.id), ["interrupts-off-stays"], "only B6 fails")
        assertFail(r, "bind-rules", "interrupts-off-stays")
    }

    /// Negative control: the switch drops a balancer target before its
    /// critical-section test; the hogs in critical sections never move.
    func testBalanceDropsDeferredControlFails() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=balance bug.balance_drops_deferred=1", timeout: 120))
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.balance_drops_deferred puts a known bug back on purpose"))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        assertFail(r, "balance", "critical-moves")
        assertVerdict(r, "balance", success: false)
    }

    /// Negative control: with the misuse checks off each case reaches its
    /// "did not panic" FAIL (leak is left out: without its watchdog it hangs).
    func testMisuseUncheckedControlFailsEachCase() throws {
        for misuse in ["exit-holding", "double-destroy", "release-unbound", "migrate-critical"] {
            let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=bind-misuse bind.misuse=\(misuse) bug.misuse_unchecked=1", timeout: 60))
            XCTAssertEqual(r.status, 3, "\(misuse): \(r.statusDescription)")
            assertFail(r, "bind-misuse", "named-panic")
        }
    }

    /// Each misuse ends in its named panic (bind-misuse, one boot each).
    func testMisuseEndsInNamedPanics() throws {
        let cases = [("exit-holding", "thread exited holding passive references: thread #"),
                     ("double-destroy", "psref destroy: the target is already draining"),
                     ("release-unbound", "psref_release: the thread may migrate (neither bound nor in a critical section)"),
                     ("migrate-critical", "migrate inside a critical section"),
                     ("leak", "psref destroy: a passive reference to the target is never released (leaked?)")]
        for (misuse, message) in cases {
            let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=bind-misuse bind.misuse=\(misuse)", timeout: 90))
            assertPanic(r, message)
        }
    }

    func testBindingUnderKVM() throws {
        try requireKVM()
        let r = try boot(QEMURun(smp: 4, accel: .kvm, cmdline: "run=bind-rules,bind-torture", timeout: 400))
        assertBinding(r)
    }

    /// The monitor's `balance` before any balanced thread: a clear answer.
    func testMonitorBalanceBeforeAnyPass() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "", timeout: 60,
                                 stdin: Array("balance\nexit\n".utf8), stdinAfter: "quartet> "))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine(containing: "balance: no pass yet (the balancer starts with the first balanced thread)"))
    }

    /// 8 hogs started on CPU 0 of 4 end two per CPU (within one), moved by
    /// their own switches.
    func testBalancerSpreadsHogsStartedOnCPU0() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=balance", timeout: 120))
        assertPassed(r)
        assertVerdict(r, "balance")
        assertPass(r, "balance", "started", atLeast: 8, atMost: 8)
        assertPass(r, "balance", "even")
        assertPass(r, "balance", "moves", atLeast: 5)
        let last = r.lines.last { $0.hasPrefix("balance: ") && $0.contains(" ms: cpu0=") } ?? ""
        let per = last.split(separator: " ").filter { $0.hasPrefix("cpu") }.compactMap { Int($0.split(separator: "=").last ?? "") }
        XCTAssertEqual(per.count, 4, "one count per CPU: \(last)")
        XCTAssertEqual(per.reduce(0, +), 8, "every hog counted: \(last)")
        XCTAssertTrue(per.allSatisfy { (1...3).contains($0) }, "each CPU runs about two hogs: \(last)")
        // hogs that spin inside critical sections move at their outermost critical_exit
        assertPass(r, "balance", "critical-moves", atLeast: 2)
        print("[balance] " + r.lines.filter { $0.hasPrefix("balance: ") }.joined(separator: " | "))
    }

    /// Negative control, five runs each: the switch path migrates without
    /// checking BOUND; a bound worker holding a passive reference moves and its
    /// release panics with the seed's message, and the suite reports FAILURE.
    func testMigrateIgnoringBoundFailsFiveTimesOutOfFive() throws {
        for suite in ["bind-torture", "bind-rules"] {
            for _ in 1...5 {
                let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=\(suite) bug.migrate_ignores_bound=1", timeout: 300))
                XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.migrate_ignores_bound puts a known bug back on purpose"))
                assertPanic(r, "B3 violated in psref_release: passive reference transferred from CPU ")
                assertFrame(r, naming: "PassiveRef.release")
                XCTAssertTrue(r.hasLine("FAIL: \(suite): the suite ended in the panic above"))
                XCTAssertTrue(r.hasLine("End of test: FAILURE"))
            }
        }
    }
}
