import XCTest

/// The serial monitor, driven expect-style through QEMU's serial port: every
/// command, the line editor, and bad input of every kind.
final class MonitorTests: QEMUTestCase {
    /// The number after "#" in the last line of `serial` that starts with `prefix`.
    static func id(after prefix: String, in serial: String) -> String {
        // "\r\n" is one Character in Swift: drop the CRs before splitting lines.
        let line = serial.replacingOccurrences(of: "\r", with: "").split(separator: "\n").last { $0.hasPrefix(prefix) } ?? ""
        guard let hash = line.firstIndex(of: "#") else { return "0" }
        return String(line[line.index(after: hash)...].prefix { $0.isNumber })
    }

    /// The id `ps` printed for the first thread named `name`.
    static func psID(named name: String, in serial: String) -> String {
        let row = serial.replacingOccurrences(of: "\r", with: "").split(separator: "\n").first { $0.contains("  " + name + " ") } ?? ""
        return String(row.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber })
    }

    /// Text between the first line starting with `command`'s echo and the next prompt.
    private func answer(_ r: QEMUResult, to command: String, last: Bool = false) -> [String] {
        let match = { (l: String) in l.hasSuffix("quartet> " + command) }
        guard let i = last ? r.lines.lastIndex(where: match) : r.lines.firstIndex(where: match) else { return [] }
        let rest = r.lines[(i + 1)...]
        return Array(rest.prefix { !$0.hasPrefix("quartet> ") })
    }

    func testInspectionCommandsWithTheDemoRunning() throws {
        let commands = ["help", "cpus", "ps", "runq", "ipiq", "locks", "mem", "uptime", "balance", "options", "trace cpu 1"]
        var script = commands.map { ExpectStep.command($0) }
        script.append(.command { "trace " + MonitorTests.psID(named: "demo reporter", in: $0) })
        script.append(.command("exit"))
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "demo=bsd4", timeout: 90, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        let help = answer(r, to: "help")
        for c in ["cpus", "ps", "runq", "ipiq", "locks", "mem", "trace", "run", "spawn", "nice", "bind", "unbind", "kill", "top",
                  "ktrace", "panic", "halt", "reboot", "uptime", "exit", "list", "demo", "balance", "options"] {
            XCTAssertTrue(help.contains { $0.hasPrefix("  " + c + " ") }, "help lists \(c)")
        }
        let cpus = answer(r, to: "cpus")
        XCTAssertEqual(cpus.filter { $0.hasSuffix("  running") || $0.hasSuffix("  stopped") }.count, 4, "one row per CPU: \(cpus)")
        XCTAssertTrue(cpus.contains { $0.contains("monitor") }, "CPU 0 runs the monitor: \(cpus)")
        let ps = answer(r, to: "ps")
        XCTAssertTrue(ps.contains { $0.contains(" hog ") && $0.contains(" -10 ") }, "ps shows the nice -10 hog with its nice: \(ps)")
        XCTAssertTrue(ps.contains { $0.contains("interactive") }, "ps shows the interactive lwp")
        XCTAssertTrue(ps.contains { $0.contains("monitor") && $0.contains("running") })
        XCTAssertTrue(answer(r, to: "runq").contains { $0.hasPrefix("  cpu 1: uschedcp ") }, "runq shows the designations")
        XCTAssertTrue(answer(r, to: "ipiq").contains { $0.hasPrefix("ring occupancy") })
        XCTAssertTrue(answer(r, to: "locks").contains { $0.hasPrefix("bsd4_spin") })
        XCTAssertTrue(answer(r, to: "mem").contains { $0.hasPrefix("memory: ") })
        XCTAssertTrue(answer(r, to: "uptime").contains { $0.hasPrefix("uptime: ") && $0.contains(" CPUs online") })
        XCTAssertTrue(answer(r, to: "balance").contains { $0.hasPrefix("balance: no pass yet") })
        XCTAssertTrue(answer(r, to: "options").contains { $0 == "cmdline: demo = bsd4" })
        let traceCPU = answer(r, to: "trace cpu 1")
        XCTAssertTrue(traceCPU.contains { $0.hasPrefix("trace: CPU 1") }, "\(traceCPU)")
        XCTAssertTrue(traceCPU.contains { $0.contains("ControlCommands.backtraceHere") }, "a symbolized frame: \(traceCPU)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("trace: #") && $0.contains("(demo reporter), sleeping") }, "trace of a sleeping thread")
        XCTAssertTrue(r.lines.contains { $0.contains("Sleep.sleep") && $0.hasPrefix("    #") }, "its backtrace names Sleep.sleep")
    }

    func testControlCommands() throws {
        let script: [ExpectStep] = [
            .command("spawn hog 1"),
            .command("spawn lwp 5"),
            .command { "nice " + MonitorTests.id(after: "spawn: lwp", in: $0) + " 3" },
            .command { "bind " + MonitorTests.id(after: "spawn: hog", in: $0) + " 2" },
            .command("ktrace start"), .command("ktrace stop"), .command("ktrace dump"),
            .command("run console"), .command("run ipiq-torture torture.seconds=1"), .command("run nosuch"),
            .command("run console bogus=1"), .command("run console bug.ipiq_nofence=1"),
            .command("ps"),
            .command { "unbind " + MonitorTests.id(after: "spawn: hog", in: $0) },
            .command("ps"),
            .command { "kill " + MonitorTests.id(after: "spawn: hog", in: $0) },
            .command("top"), ExpectStep("top: every second") { _ in "q" },
            .command("ps"),
            .command("exit"),
        ]
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "", timeout: 120, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("spawn: hog #") && $0.hasSuffix(" on CPU 1") })
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("spawn: lwp #") && $0.hasSuffix(" nice 5") })
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("nice: #") && $0.hasSuffix(" now 3") })
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("bind: #") && $0.contains("moves to CPU 2") })
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("kill: #") && $0.hasSuffix("asked to stop") })
        XCTAssertTrue(r.hasLine("ktrace: recording") && r.hasLine("ktrace: stopped") && r.hasLine("ktrace: end"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("K ") && $0.contains(" switch ") }, "the dump has events")
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("SUMMARY: ") }.count, 2, "run returned to the prompt twice")
        XCTAssertTrue(r.hasLine("run: unknown suite 'nosuch' ('list' shows them)"))
        XCTAssertTrue(r.hasLine("run: unknown option 'bogus' ('options' lists them)"))
        XCTAssertTrue(r.hasLine("run: option 'bug.ipiq_nofence' takes effect only at boot (put it on the kernel command line)"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  ipiq-torture: 1 s on 4 CPUs") }, "the override was in force")
        XCTAssertTrue(r.hasLine("top: stopped"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("top: every second") })
        // The bound hog moved to CPU 2 (ps before the kill), and is gone after it.
        let hogID = MonitorTests.id(after: "spawn: hog", in: r.serial.replacingOccurrences(of: "\r", with: ""))
        let rows = r.lines.filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix(hogID + "  hog") }
        XCTAssertTrue(rows.contains { $0.contains("running      2") || $0.contains("runnable     2") }, "hog on CPU 2: \(rows)")
        // ps shows the affinity bind gave (column aff), and "-" after unbind.
        XCTAssertTrue(rows.contains { $0.contains("      2     no    2 ") }, "ps shows affinity 2: \(rows)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("unbind: #" + hogID) && $0.hasSuffix("may run anywhere again") })
        XCTAssertTrue(rows.contains { $0.contains("     no    - ") }, "ps shows no affinity after unbind: \(rows)")
        let lastPS = answer(r, to: "ps", last: true)
        XCTAssertFalse(lastPS.isEmpty, "the last ps answered")
        XCTAssertFalse(lastPS.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(hogID + "  hog") }, "killed hog gone: \(lastPS)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("   ") && $0.contains(" lwp ") && $0.contains("     3 ") }, "the lwp's nice is 3")
    }

    func testBadInputGetsOneLineErrors() throws {
        let long = String(repeating: "x", count: 200)
        let paste = String(repeating: "uptime\r", count: 20)
        let script: [ExpectStep] = [
            ExpectStep("quartet> ") { _ in "\u{01}\u{02}\u{80}\u{ff}garbage\r" },
            ExpectStep("quartet> ") { _ in long + "\r" },
            .command("trace 5 6"),
            ExpectStep("quartet> ") { _ in paste },
            .command("xyzzy"), .command("nice"), .command("nice x 3"), .command("nice 1 99"), .command("trace cpu 9"),
            .command("bind 1 99"), .command("kill 1"), .command("ktrace bogus"), .command("spawn dragon"),
            .command("nice 1 3"), .command("trace 99999"), .command("exit 300"),
            ExpectStep("quartet> ") { _ in "uptime\r" }, ExpectStep("quartet> ") { _ in "\u{1B}[A\r" },
            .command("exit"),
        ]
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "", timeout: 90, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine(containing: "unknown command 'garbage' (try 'help')"), "control bytes dropped")
        XCTAssertFalse(r.serial.unicodeScalars.contains { $0 == "\u{01}" || $0 == "\u{02}" }, "control bytes not echoed")
        XCTAssertTrue(r.hasLine("line too long (max 120)"))
        XCTAssertTrue(r.hasLine("line discarded: longer than 120 bytes"), "a cut line is not run")
        XCTAssertFalse(r.hasLine(containing: "unknown command 'xxxxxxxx"), "the cut line did not run")
        XCTAssertTrue(r.hasLine("usage: trace <thread-id> | cpu <n>"))
        XCTAssertGreaterThanOrEqual(r.lines.filter { $0.hasPrefix("uptime: ") }.count, 22, "20 pasted + typed + recalled")
        XCTAssertTrue(r.hasLine(containing: "unknown command 'xyzzy' (try 'help')"))
        XCTAssertTrue(r.hasLine("usage: nice <id> <n>"))
        for text in ["nice: id: expected", "nice: n: expected a number from -20 to 20", "trace: cpu", "bind: cpu",
                     "kill: #1 (main) is not a workload", "ktrace: expected start, stop, dump or clear", "spawn: expected hog, sleeper or lwp",
                     "nice: #1 (main) is not a user-class lwp", "trace: no thread #99999", "exit: code: expected a number from 0 to 255"] {
            XCTAssertTrue(r.lines.contains { $0.contains(text) }, "an error line containing '\(text)'")
        }
    }

    func testCtrlCStopsTop() throws {
        // Ctrl-C only after the second refresh: top must have redrawn once.
        let script: [ExpectStep] = [.command("top"), ExpectStep("top: every second") { _ in "" },
                                    ExpectStep("cpu  thread") { _ in "" }, ExpectStep("cpu  thread") { _ in "\u{03}" },
                                    .command("exit")]
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "", timeout: 60, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine("top: stopped"))
        XCTAssertGreaterThanOrEqual(r.lines.filter { $0.hasPrefix("cpu  thread") }.count, 2, "top refreshed the CPU table")
    }

    func testCtrlCStopsARunBetweenSuites() throws {
        let script: [ExpectStep] = [.command("run rendezvous-preempt rendezvous-preempt"),
                                    ExpectStep("== suite rendezvous-preempt") { _ in "\u{03}" }, .command("exit")]
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "", timeout: 90, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine("run: interrupted (Ctrl-C) before rendezvous-preempt"))
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("== suite rendezvous-preempt") }.count, 1, "the second run did not start")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("SUMMARY: ") }, "the first one finished and summed up")
    }

    func testPanicHaltAndReboot() throws {
        let p = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "ktrace=1", timeout: 60, stdinAfter: nil)
            .with(script: [.command("panic hello from the monitor")]))
        assertPanic(p, "monitor: hello from the monitor")
        XCTAssertTrue(p.hasLine("panic: the event trace up to the panic follows"), "ktrace=1: the trace at panic")
        XCTAssertTrue(p.lines.contains { $0.hasPrefix("K 0 ") && $0.contains(" switch ") } && p.hasLine("ktrace: end"))
        let b = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "", timeout: 60, stdinAfter: nil).with(script: [.command("reboot")]))
        XCTAssertTrue(b.hasLine("reboot: resetting"))
        XCTAssertEqual(b.status, 0, "a reset under -no-reboot ends QEMU with status 0: \(b.statusDescription)")
        XCTAssertFalse(b.timedOut)
        var halt = QEMURun(smp: 2, accel: .tcg, cmdline: "", timeout: 8, stdinAfter: nil).with(script: [.command("halt")])
        halt.expectsTimeout = true
        let h = try boot(halt)
        XCTAssertTrue(h.hasLine("halt: stopping every CPU"))
        XCTAssertTrue(h.timedOut, "a halted machine keeps QEMU running until it is stopped")
    }
}

final class PanicMonitorTests: QEMUTestCase {
    /// panic=monitor: after `panic x` the post-mortem prompt answers; `trace cpu 1`
    /// prints the stopped CPU's symbolized backtrace.
    func testPostMortemMonitorTracesAStoppedCPU() throws {
        let step = { (line: String) in ExpectStep("panic> ") { _ in line + "\r" } }
        let script: [ExpectStep] = [.command("panic x"), step("trace cpu 1"), step("cpus"), step("ps"), step("locks"),
                                    step("ktrace dump"), step("bogus"), step("exit")]
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "panic=monitor", timeout: 60, stdinAfter: nil).with(script: script))
        XCTAssertEqual(r.status, 5, "exit from the post-mortem monitor leaves with the panic status: \(r.statusDescription)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: monitor: x") })
        guard let at = r.lines.firstIndex(where: { $0.hasSuffix("panic> trace cpu 1") }) else { return XCTFail("no trace cpu 1 echo") }
        let answer = r.lines[(at + 1)...].prefix { !$0.hasPrefix("panic> ") }
        XCTAssertTrue(answer.contains { $0.hasPrefix("CPU 1: stopped at rip 0x") }, "\(answer)")
        XCTAssertTrue(answer.contains { $0.hasPrefix("    #1  0x") && $0.contains("  ") && ($0.contains("static ") || $0.contains("(")) },
                      "a symbolized frame: \(answer)")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("per-CPU state:") }, "cpus")
        XCTAssertTrue(r.lines.contains { $0.contains("monitor") && $0.contains("running") && $0.contains(" cpu 0") }, "ps")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("bsd4_spin") }, "locks")
        XCTAssertTrue(r.hasLine("ktrace: end"), "ktrace dump")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("unknown command (cpus, ps, trace cpu N") })
    }
}

extension QEMURun {
    func with(script: [ExpectStep]) -> QEMURun {
        var r = self
        r.script = script
        return r
    }
}
