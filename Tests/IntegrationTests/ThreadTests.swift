import XCTest

/// Kernel threads, preemption, sleep, hand-off (docs/critical-sections.md, docs/ipi-queues.md).
final class ThreadTests: QEMUTestCase {
    static let suites = "run=threads,preempt,sleep,migrate"

    private func assertThreadSuites(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        for id in ["created", "unique-ids", "guard-pages", "stacks-freed", "threads-freed"] {
            assertPass(r, "threads", id, file: file, line: line)
        }
        for id in ["tick-preemption", "deferred", "outer-exit-switch", "c3-after-exit", "immediate", "trap-return"] {
            assertPass(r, "preempt", id, file: file, line: line)
        }
        assertPass(r, "preempt", "window", atLeast: 1, file: file, line: line)
        assertPass(r, "preempt", "storm", atMost: 0, file: file, line: line)
        assertPass(r, "sleep", "window", atLeast: 1, file: file, line: line)
        assertPass(r, "sleep", "lost", atMost: 0, file: file, line: line)
        for id in ["rounds", "mutex-exclusion", "mutex-window", "timeout"] { assertPass(r, "sleep", id, file: file, line: line) }
        assertPass(r, "migrate", "window", atLeast: 1, file: file, line: line)
        assertPass(r, "migrate", "hops", atLeast: 4, file: file, line: line)
        for id in ["wrong-cpu", "stamp", "stale"] { assertPass(r, "migrate", id, atMost: 0, file: file, line: line) }
        for suite in ["preempt", "sleep", "migrate"] { assertVerdict(r, suite, file: file, line: line) }
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
        assertFail(r, "sleep", "lost", atLeast: 1)
        assertVerdict(r, "sleep", success: false)
    }

    /// Negative control: critnest lowered after interrupts are back on (the C3
    /// window we once had), widened past a tick: the storm sees C3 violations.
    func testC3WindowControlIsCaught() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=preempt bug.c3_window=1", timeout: 120))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        assertFail(r, "preempt", "storm", atLeast: 1)
        assertVerdict(r, "preempt", success: false)
    }

    /// Negative control: the switch clears RUNNING before it saves rsp; the
    /// puller's stamp check after its fence catches it (D6).
    func testEarlyRunningClearControlIsCaught() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=migrate bug.handoff_early_clear=1", timeout: 120))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        assertFail(r, "migrate", "stamp", atLeast: 1)
        assertVerdict(r, "migrate", success: false)
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
