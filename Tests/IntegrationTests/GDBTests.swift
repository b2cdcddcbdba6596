import XCTest

/// scripts/quartet-gdb.py against a live kernel: QEMU with a gdb stub, the
/// monitor up, gdb in batch mode attaches, runs qcpus, qthreads and qbt on the
/// monitor thread (asleep, waiting for input), detaches; the kernel goes on
/// and `exit` ends it.
final class GDBTests: QEMUTestCase {
    private final class Box: @unchecked Sendable { var text = "" }

    static func gdbPath() -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = String(dir) + "/gdb"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    func testGdbHelpersListCPUsThreadsAndABacktrace() throws {
        // Skipped without gdb (a failure with QUARTET_REQUIRE_GDB=1).
        let gdb = try requireTool(GDBTests.gdbPath(), "gdb")
        let port = 20_000 + Int(getpid() % 10_000)
        let out = Box()
        let root = QEMU.repoRoot.path
        var run = QEMURun(smp: 4, accel: .tcg, cmdline: "", timeout: 120, stdinAfter: nil)
        run.extraArguments = ["-gdb", "tcp:127.0.0.1:\(port)"]
        run.script = [ExpectStep("quartet> ") { serial in
            let monitorID = MonitorTests.psID(named: "monitor", in: serial)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: gdb)
            p.currentDirectoryURL = URL(fileURLWithPath: root)
            p.arguments = ["-batch", "-nx", "-ex", "set pagination off", "-ex", "set architecture i386:x86-64",
                           "-ex", "file build/kernel.elf", "-ex", "target remote 127.0.0.1:\(port)",
                           "-ex", "source scripts/quartet-gdb.py", "-ex", "qcpus", "-ex", "qthreads",
                           "-ex", "qbt \(monitorID.isEmpty ? "6" : monitorID)", "-ex", "detach"]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try? p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            out.text = String(decoding: data, as: UTF8.self)
            return "ps\rexit\r"
        }]
        let r = try boot(run)
        print("[gdb]\n" + out.text)
        XCTAssertEqual(r.status, 1, "the kernel went on after gdb detached: \(r.statusDescription)")
        let lines = out.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("CPU ") && $0.contains("(vCPU ") }.count, 4, "qcpus: one line per CPU")
        XCTAssertTrue(lines.contains { $0.contains(" monitor ") && $0.contains("sleeping") }, "qthreads lists the monitor")
        XCTAssertEqual(lines.filter { $0.contains("  idle ") }.count, 4, "qthreads lists four idle threads")
        XCTAssertTrue(lines.contains { $0.hasPrefix("#") && $0.contains("monitor (sleeping)") }, "qbt header")
        XCTAssertTrue(lines.contains { $0.contains("switchAway") }, "qbt starts in the switch")
        XCTAssertTrue(lines.contains { $0.contains("MonitorInput") || $0.contains("Sleep") }, "qbt shows why it sleeps")
    }
}
