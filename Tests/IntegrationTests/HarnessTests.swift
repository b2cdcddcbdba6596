// Checks of the QEMU harness itself: output parsing, and the timeout that must
// stop a kernel that never exits.
import Foundation
import XCTest

final class HarnessTests: QEMUTestCase {
    func testSerialParsing() {
        let serial = "\r\nbanner\r\nPASS: a: one\r\nSKIP: a: two\nFAIL: b: three\r\n"
            + "SUMMARY: 3 tests, 1 unexpected failures, 1 skipped\r\n"
        let r = QEMUResult(run: QEMURun(), commandLine: [], status: 3, timedOut: false,
                           elapsed: 0, serial: serial, stderr: "")
        XCTAssertEqual(r.lines, ["", "banner", "PASS: a: one", "SKIP: a: two", "FAIL: b: three",
                                 "SUMMARY: 3 tests, 1 unexpected failures, 1 skipped", ""])
        XCTAssertEqual(r.passes, ["a: one"])
        XCTAssertEqual(r.skips, ["a: two"])
        XCTAssertEqual(r.fails, ["b: three"])
        XCTAssertEqual(r.summary, QEMUSummary(tests: 3, failures: 1, skipped: 1))
        XCTAssertNil(QEMUResult.parseSummary("SUMMARY: 3 tests"))
        XCTAssertNil(QEMUResult.parseSummary("SUMMARY: x tests, 1 unexpected failures, 0 skipped"))
    }

    func testTimeoutStopsAKernelThatNeverExits() throws {
        // Without run= the kernel waits in the monitor forever (stdin is empty).
        let r = try QEMU.boot(QEMURun(smp: 1, cmdline: "", timeout: 3))
        XCTAssertTrue(r.timedOut, "the monitor should have waited until the timeout: \(r.statusDescription)")
        XCTAssertLessThan(r.elapsed, 10, "QEMU was not stopped promptly after the timeout")
        XCTAssertTrue(r.hasLine(containing: "quartet> "), "serial output before the timeout is kept")
        if !r.timedOut { print(r.log) }
    }
}
