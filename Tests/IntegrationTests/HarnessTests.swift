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

    private func result(_ serial: String, smp: Int = 4, cmdline: String = "run=all", accel: Accel = .tcg) -> QEMUResult {
        QEMUResult(run: QEMURun(smp: smp, accel: accel, cmdline: cmdline), commandLine: [], status: 1, timedOut: false,
                   elapsed: 0, serial: serial.replacingOccurrences(of: "\n", with: "\r\n"), stderr: "")
    }

    func testCheckRecordParsing() {
        let r = result("""
            PASS: ipiq-wakeup: D5: every message processed
            CHECK suite=ipiq-wakeup id=lost inv=D5 value=0 bound==0 result=pass
            SKIP: ipiq-flood: needs at least 2 CPUs
            CHECK suite=ipiq-flood id=run inv=- result=skip reason=needs-2-cpus
            CHECK suite=litmus id=forbidden.IRIW inv=- value=3 bound=<=0 result=fail
            CHECK suite=x id=y inv=- value=3 result=pass
            CHECK suite=x id=y inv=- result=skip
            CHECK suite=x id=y inv=- result=maybe
            """)
        XCTAssertEqual(r.records.count, 3)
        let lost = r.record(suite: "ipiq-wakeup", id: "lost")
        XCTAssertEqual(lost?.value, 0)
        XCTAssertEqual(lost?.bound, "=0")
        XCTAssertEqual(lost?.inv, "D5")
        XCTAssertTrue(lost?.passed ?? false)
        XCTAssertEqual(r.record(suite: "ipiq-flood", id: "run")?.reason, "needs-2-cpus")
        XCTAssertEqual(r.record(suite: "litmus", id: "forbidden.IRIW")?.bound, "<=0")
        XCTAssertEqual(r.malformedRecords.count, 3, "a value without a bound, a skip without a reason, an unknown result")
    }

    /// Every SKIP must be one the configuration explains: a needs-2-cpus skip
    /// at -smp 4 fails the run; at -smp 1 it is accounted for.
    func testUnexpectedSkipIsAProblem() {
        let serial = """
            PASS: a: one
            CHECK suite=a id=one inv=- result=pass
            SKIP: ipiq-flood: needs at least 2 CPUs
            CHECK suite=ipiq-flood id=run inv=- result=skip reason=needs-2-cpus
            SUMMARY: 2 tests, 0 unexpected failures, 1 skipped
            """
        let four = result(serial, smp: 4)
        XCTAssertEqual(four.recordProblems(allowedSkips: SkipReasons.allowed(for: four.run)).count, 1)
        XCTAssertTrue(four.recordProblems(allowedSkips: SkipReasons.allowed(for: four.run)).first?.hasPrefix("unexpected SKIP: ipiq-flood/run") ?? false)
        let one = result(serial, smp: 1)
        XCTAssertEqual(one.recordProblems(allowedSkips: SkipReasons.allowed(for: one.run)), [])
        XCTAssertTrue(SkipReasons.allowed(for: QEMURun(smp: 4, cmdline: "run=all tick=0")).contains("needs-tick"))
        XCTAssertFalse(SkipReasons.allowed(for: QEMURun(smp: 4, cmdline: "run=all")).contains("needs-tick"))
        XCTAssertTrue(SkipReasons.allowed(for: QEMURun(smp: 4, accel: .kvm)).contains("kvm-window"))
        XCTAssertFalse(SkipReasons.allowed(for: QEMURun(smp: 4)).contains("run-order"))
        // A human line without its record, or the other way round.
        let unpaired = result("PASS: a: one\nSUMMARY: 1 tests, 0 unexpected failures, 0 skipped")
        XCTAssertEqual(unpaired.recordProblems(allowedSkips: []).count, 2)
    }

    /// run=all against run=list: a listed suite with no passing check in the
    /// run=all boot (it printed nothing, or only skipped) is reported.
    func testListedSuiteWithoutAPassIsAProblem() {
        let list = result("""
            console                     formatting: decimal, hex, padding, truncation
            fault-pf            [fatal] read an unmapped kernel address: #PF report
            bench               [bench] figures
            ipiq-flood                  two CPUs flood each other
            memory map (from the boot loader):
            """)
        XCTAssertEqual(list.listedNormalSuites, ["console", "ipiq-flood"])
        let silent = result("""
            == suite console: formatting
            PASS: console: decimal zero
            CHECK suite=console id=dec-zero inv=- result=pass
            == suite ipiq-flood: two CPUs
            """)
        XCTAssertEqual(silent.unprovenSuites(["console", "ipiq-flood"], allowAllSkipped: true).count, 1)
        let skipped = result("""
            CHECK suite=console id=dec-zero inv=- result=pass
            CHECK suite=ipiq-flood id=run inv=- result=skip reason=needs-2-cpus
            """, smp: 1)
        XCTAssertEqual(skipped.unprovenSuites(["console", "ipiq-flood"], allowAllSkipped: true), [])
        XCTAssertEqual(skipped.unprovenSuites(["console", "ipiq-flood"], allowAllSkipped: false).count, 1)
        // A suite that needs tick=0 may only skip in a ticking boot (the tick=0 boot proves it), never in a tick=0 one.
        let noTick = "CHECK suite=wait-migrate id=run inv=- result=skip reason=needs-no-tick"
        XCTAssertEqual(result(noTick).unprovenSuites(["wait-migrate"], allowAllSkipped: false), [])
        XCTAssertEqual(result(noTick, cmdline: "run=all tick=0").unprovenSuites(["wait-migrate"], allowAllSkipped: false).count, 1)
    }

    /// A KVM half is never dropped silently: no test picks its accelerators from
    /// whether KVM is usable (the idiom "KVM usable ? [.tcg, .kvm] : [.tcg]" made a
    /// machine without KVM pass the test); they loop over Accel.halves, and
    /// QEMUTestCase.boot turns a KVM boot without KVM into a skip.
    func testNoTestDropsItsKVMHalfSilently() throws {
        let dir = QEMU.repoRoot.appendingPathComponent("Tests/IntegrationTests")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".swift") {
            guard name != "QEMURunner.swift" else { continue }
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let needle = "kvm" + "Usable"          // this file must not match itself
            XCTAssertFalse(text.contains(needle), "\(name) reads Accel.\(needle): its KVM half could be dropped silently")
        }
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
