import XCTest

/// Kernel threads, preemption, sleep, hand-off (issue: kernel threads).
final class ThreadTests: QEMUTestCase {
    static let suites = "run=threads,preempt,sleep,migrate"

    private func assertThreadSuites(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        for needle in ["PASS: threads: thread objects were freed",
                       "PASS: preempt: the outer critical_exit switched to the woken thread",
                       "PASS: preempt: C3: critical_exit returned with critnest 0 and owepreempt 0",
                       "PASS: sleep: no lost wake-ups (0 ",
                       "PASS: migrate: D6: every write made before a hand-off was seen after it (0 stale)"] {
            XCTAssertTrue(r.hasLine(containing: needle), "missing: \(needle)", file: file, line: line)
        }
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

    func testThreadStackOverflowIsReported() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=fault-thread-stack"))
        assertFault(r, vectorName: "#DF double fault")
        XCTAssertTrue(r.hasLine(containing: "kernel stack overflow: fault address"))
    }
}
