import XCTest

/// Kernel threads, preemption, sleep, hand-off (docs/critical-sections.md, docs/ipi-queues.md).
final class ThreadTests: QEMUTestCase {
    static let suites = "run=threads,preempt,sleep,migrate"

    private func assertThreadSuites(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        for needle in ["PASS: threads: thread objects were freed",
                       "PASS: preempt: the outer critical_exit switched to the woken thread",
                       "PASS: preempt: C3: critical_exit returned with critnest 0 and owepreempt 0",
                       "PASS: preempt: a trap returning into interrupts-off code did not switch",
                       "PASS: preempt: the window was exercised: ",
                       "PASS: sleep: no lost wake-ups (0 ",
                       "PASS: migrate: the window was hit: ",
                       "PASS: migrate: D6: the switch-out stamp was current after the puller's fence (0 behind)",
                       "PASS: migrate: D6: every write made before a hand-off was seen after it (0 stale)"] {
            XCTAssertTrue(r.hasLine(containing: needle), "missing: \(needle)", file: file, line: line)
        }
        XCTAssertEqual(r.lines.filter { $0 == "End of test: SUCCESS" }.count, 3, "preempt, sleep and migrate", file: file, line: line)
    }

    func testThreadSuitesPassUnderTCG() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: ThreadTests.suites, timeout: 120))
        assertThreadSuites(r)
    }

    func testThreadSuitesPassUnderKVM() throws {
        try requireKVM()
        let r = try boot(QEMURun(smp: 4, accel: .kvm, cmdline: ThreadTests.suites, timeout: 180))
        assertThreadSuites(r)
    }

    /// Negative control: without the sleep interlock, wake-ups are lost.
    func testDroppedSleepInterlockLosesWakeups() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=sleep bug.sleep_nointerlock=1", timeout: 120))
        XCTAssertEqual(r.status, 3, "the sleep suite must fail: \(r.statusDescription)")
        let report = r.lines.first { $0.hasPrefix("sleep: ") && $0.contains(" pairs, rounds ") }
        XCTAssertTrue(report?.contains("!!! lost wake-ups ") ?? false, "lost wake-ups reported: \(report ?? "none")")
        XCTAssertTrue(r.fails.contains { $0.hasPrefix("sleep: no lost wake-ups (") })
    }

    /// Negative control: critnest lowered after interrupts are back on (the C3
    /// window we once had), widened past a tick: the storm sees C3 violations.
    func testC3WindowControlIsCaught() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=preempt bug.c3_window=1", timeout: 120))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        XCTAssertTrue(r.hasLine(containing: "!!! C3 violations "))
        XCTAssertTrue(r.fails.contains { $0.hasPrefix("preempt: C3 held after ") })
        XCTAssertTrue(r.hasLine("End of test: FAILURE"))
    }

    /// Negative control: the switch clears RUNNING before it saves rsp; the
    /// puller's stamp check after its fence catches it (D6).
    func testEarlyRunningClearControlIsCaught() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=migrate bug.handoff_early_clear=1", timeout: 120))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        XCTAssertTrue(r.hasLine(containing: "!!! switch-out stamp behind after the fence "))
        XCTAssertTrue(r.fails.contains { $0.hasPrefix("migrate: D6: the switch-out stamp was current after the puller's fence (") })
        XCTAssertTrue(r.hasLine("End of test: FAILURE"))
    }

    /// A handler that yields inside thread-context IPI processing: named panic.
    func testHandlerThatYieldsPanics() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=fault-ipi-yield tick=0"))
        assertPanic(r, "context switch inside IPI message processing (a handler slept or yielded)")
        // Frame #0 is where panic() captured its registers: the function that
        // asserted (panic itself may be inlined into it).
        assertFrame(r, naming: "static Scheduler.switchAway()", index: 0)
        assertFrame(r, naming: "FaultSuites.ipiHandlerYields")
    }

    func testThreadStackOverflowIsReported() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=fault-thread-stack"))
        assertFault(r, vectorName: "#DF double fault")
        XCTAssertTrue(r.hasLine(containing: "kernel stack overflow: fault address"))
        assertFrame(r, naming: "static FaultSuites.recurse(_:)", index: 0)
    }
}
