// Boot foundation: banner, memory map, command line, test runner, fault reports, monitor.
// Each test boots build/kernel.elf in QEMU (see QEMURunner.swift); run `make` first.
import Foundation
import XCTest

final class BootTests: QEMUTestCase {
    static let nonFatalSuites = ["console", "pages", "heap", "paging", "smp", "ipiq-rules", "spinlock-torture",
                                 "threads", "preempt", "sleep", "migrate", "ipiq-torture", "ipiq-flood",
                                 "ipiq-wakeup", "wait-wakeup", "cpusync", "rendezvous", "rendezvous-preempt", "rendezvous-handoff", "tlb-shootdown", "nmi", "litmus"]
    static let fatalSuites = ["fault-pf", "fault-de", "fault-trap", "fault-stack", "fault-null",
                              "fault-thread-stack", "fault-ipi-yield", "fault-all-cpus", "panic-basic",
                              "panic-lockheld", "panic-lockpaths", "panic-all", "panic-rendezvous", "panic-nested",
                              "panic-heaplock", "panic-header", "panic-halt", "panic-midline",
                              "panic-haltfirst", "panic-deadstopper", "panic-ghost", "halt-midline",
                              "rv-nested-action", "rv-nested-cpusync"]

    /// "memory: N MiB usable, ..." → N.
    private func usableMiB(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        guard let l = r.lines.first(where: { $0.hasPrefix("memory: ") && $0.contains(" MiB usable, ") }) else {
            XCTFail("no 'memory: N MiB usable, ...' line", file: file, line: line); return nil
        }
        let n = Int(l.dropFirst("memory: ".count).prefix(while: { $0.isNumber }))
        XCTAssertNotNil(n, "cannot read the usable size from '\(l)'", file: file, line: line)
        return n
    }

    /// "  0xSTART - 0xEND  available  SIZE"
    private func availableRegions(_ r: QEMUResult) -> [String] {
        r.lines.filter { l in
            let t = l.split(separator: " ")
            return l.hasPrefix("  0x") && t.count >= 5 && t[1] == "-" && t[3] == "available"
                && QEMUTestCase.isHex(String(t[0])) && QEMUTestCase.isHex(String(t[2]))
        }
    }

    // MARK: boot output

    func testBootPrintsBannerMemoryMapCommandLineAndMemorySummary() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=console tick=1"))
        assertPassed(r)
        XCTAssertTrue(r.hasLine("Quartet: an x86-64 SMP microkernel in Embedded Swift"), "boot banner")
        guard let mapHeader = r.lines.firstIndex(of: "memory map (from the boot loader):") else {
            return XCTFail("no memory map header")
        }
        let regions = availableRegions(r)
        XCTAssertFalse(regions.isEmpty, "no 'available' region in the memory map")
        if let first = regions.first, let at = r.lines.firstIndex(of: first) {
            XCTAssertGreaterThan(at, mapHeader, "available region listed before the memory map header")
        }
        XCTAssertTrue(r.hasLine("cmdline: run = console"), "parsed command line for run=")
        XCTAssertTrue(r.hasLine("cmdline: tick = 1"), "parsed command line for tick=")
        XCTAssertFalse(r.hasLine(containing: "unknown option 'run'"), "run is a known option")
        XCTAssertFalse(r.hasLine(containing: "cmdline: error:"), "a well-formed command line")
        if let mib = usableMiB(r) {
            XCTAssertTrue((200...256).contains(mib), "usable memory \(mib) MiB with -m 256")
        }
        // Order: banner, map, cmdline, memory, then the suite.
        let order = ["Quartet: an x86-64", "memory map (from", "cmdline: run = console", "memory: ", "== suite console"]
        let positions = order.map { p in r.lines.firstIndex { $0.hasPrefix(p) } ?? -1 }
        XCTAssertEqual(positions, positions.sorted(), "boot output out of order: \(zip(order, positions).map { "\($0)@\($1)" })")
        XCTAssertFalse(positions.contains(-1), "missing boot output: \(zip(order, positions).map { "\($0)@\($1)" })")
    }

    /// The kernel found its symbol table (scripts/symbols.sh wrote it into .ksymtab)
    /// and says so after the memory summary: "symbols: N functions (K KiB table)".
    func testBootReportsTheSymbolTable() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=console"))
        assertPassed(r)
        XCTAssertFalse(r.hasLine(containing: "symbols: no table"), "the table was refused")
        let lines = r.lines(startingWith: "symbols: ")
        XCTAssertEqual(lines.count, 1, "one symbols line: \(lines)")
        guard let l = lines.first else { return }
        let words = l.split(separator: " ")
        XCTAssertTrue(words.count == 6 && words[2] == "functions" && words[3].hasPrefix("(") && words[4] == "KiB"
                      && words[5] == "table)", "not 'symbols: N functions (K KiB table)': '\(l)'")
        if words.count == 6, let n = Int(words[1]), let k = Int(words[3].dropFirst()) {
            XCTAssertGreaterThan(n, 1000, "the kernel has more than 1000 functions")
            XCTAssertGreaterThan(k, 16, "a table of \(n) functions in \(k) KiB")
        } else {
            XCTFail("cannot read N and K from '\(l)'")
        }
        let order = ["memory: heap ", "symbols: ", "acpi: ", "== suite console"]
        let positions = order.map { p in r.lines.firstIndex { $0.hasPrefix(p) } ?? -1 }
        XCTAssertEqual(positions, positions.sorted(), "out of order: \(zip(order, positions).map { "\($0)@\($1)" })")
        XCTAssertFalse(positions.contains(-1), "missing: \(zip(order, positions).map { "\($0)@\($1)" })")
    }

    func testNoOptionsIsReported() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "", stdin: "exit\n"))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertTrue(r.hasLine("cmdline: (no options)"))
    }

    // MARK: run=all

    /// The normal suites as `run=list` names them (booted once per test process):
    /// what run=all must run, instead of a list kept by hand.
    nonisolated(unsafe) private static var listed: [String]? = nil
    private func listedNormalSuites(file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        if let l = BootTests.listed { return l }
        let r = try boot(QEMURun(smp: 1, cmdline: "run=list"))
        XCTAssertEqual(r.status, 1, r.statusDescription, file: file, line: line)
        let l = r.listedNormalSuites
        XCTAssertTrue(l.contains("console") && l.contains("litmus"), "run=list parsed: \(l)", file: file, line: line)
        BootTests.listed = l
        return l
    }

    /// A run=all boot passed (every skip accounted for) and every normal suite of
    /// run=list has a passing check in it; `allowAllSkipped`: a suite may instead
    /// have only skips this configuration allows (one CPU, tick=0, ...).
    /// run-order is allowed here only: in run=all a thread an earlier suite
    /// left can take state a later check needs (tlb-shootdown's freed-stack
    /// slot was mapped again once, under the nested KVM); the suites' own
    /// boots (RendezvousTests, SMPTests) do not allow it.
    private func assertRunAll(_ r: QEMUResult, allowAllSkipped: Bool,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        assertPassed(r, alsoAllowing: ["run-order"], file: file, line: line)
        assertEveryListedSuiteRan(r, listed: try listedNormalSuites(file: file, line: line),
                                  allowAllSkipped: allowAllSkipped, file: file, line: line)
        assertSuitesRan(r, [], file: file, line: line)
    }

    func testRunAllPassesUnderTCGWith4CPUs() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=all", timeout: 180))
        try assertRunAll(r, allowAllSkipped: false)
        assertRecord(r, "wait-migrate", "run", result: "skip", reason: "needs-no-tick")
    }

    func testRunAllPassesUnderKVMWith4CPUs() throws {
        try requireKVM()
        // Longer timeout: on the development machine's nested KVM (kvm_pvm, shadow paging) QEMU
        // needs ~5-7 s before the first byte, and page-table-heavy work is slow.
        let r = try boot(QEMURun(smp: 4, accel: .kvm, cmdline: "run=all", timeout: 240))
        try assertRunAll(r, allowAllSkipped: false)
        assertRecord(r, "wait-migrate", "run", result: "skip", reason: "needs-no-tick")
    }

    /// With the periodic tick off, suites that need it say SKIP instead of hanging.
    func testRunAllPassesWithoutTheTick() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=all tick=0", timeout: 180))
        try assertRunAll(r, allowAllSkipped: true)
        assertRecord(r, "smp", "ticks", result: "skip", reason: "needs-tick")
        // The suites that need tick=0 (they only skip, needs-no-tick, in the ticking boots) are proven here.
        assertVerdict(r, "wait-migrate")
        assertVerdict(r, "rendezvous-handoff")
        assertRecord(r, "preempt", "tick-preemption", result: "skip", reason: "needs-tick")
        assertRecord(r, "preempt", "storm", result: "skip", reason: "needs-tick")
        assertRecord(r, "sleep", "timeout", result: "skip", reason: "needs-tick")
    }

    func testRunAllPassesWithOneCPU() throws {
        let r = try boot(QEMURun(smp: 1, accel: .tcg, cmdline: "run=all", timeout: 120))
        try assertRunAll(r, allowAllSkipped: true)
        for suite in ["spinlock-torture", "ipiq-torture", "ipiq-flood", "ipiq-wakeup"] {
            assertRecord(r, suite, "run", result: "skip", reason: "needs-2-cpus")
        }
    }

    func testRunAllPassesWith64MiB() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=all", timeout: 180, memoryMiB: 64))
        try assertRunAll(r, allowAllSkipped: true)
        if let mib = usableMiB(r) {
            XCTAssertTrue((40...64).contains(mib), "usable memory \(mib) MiB with -m 64")
        }
    }

    func testRunSeveralSuitesByName() throws {
        let r = try boot(QEMURun(smp: 2, cmdline: "run=heap,console"))
        assertPassed(r)
        assertSuitesRan(r, ["heap", "console"])
        XCTAssertFalse(r.hasLine(containing: "== suite pages"), "only the named suites run")
    }

    /// `suites` started and each has a passing check; no fatal suite ran.
    private func assertSuitesRan(_ r: QEMUResult, _ suites: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
        for s in suites {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("== suite \(s): ") }, "suite \(s) did not start",
                          file: file, line: line)
            XCTAssertTrue(r.records(suite: s).contains(where: \.passed), "suite \(s) has no passing check",
                          file: file, line: line)
        }
        for s in BootTests.fatalSuites {
            XCTAssertFalse(r.lines.contains { $0.hasPrefix("== suite \(s):") }, "fatal suite \(s) ran",
                           file: file, line: line)
        }
    }

    // MARK: run=list and unknown suites

    func testRunListNamesEverySuiteAndExitsWithSuccess() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=list"))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        for s in BootTests.nonFatalSuites {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix(s + " ") && !$0.contains("[fatal]") },
                          "suite \(s) not listed (as non-fatal)")
        }
        for s in BootTests.fatalSuites {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix(s + " ") && $0.contains("[fatal]") },
                          "fatal suite \(s) not listed with [fatal]")
        }
        XCTAssertFalse(r.hasLine(containing: "== suite "), "run=list must not run suites")
        XCTAssertEqual(r.fails, [])
    }

    func testUnknownSuiteFails() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=nosuchsuite"))
        XCTAssertEqual(r.status, 3, "an unknown suite is a test failure (code 1): \(r.statusDescription)")
        XCTAssertTrue(r.fails.contains { $0.hasPrefix("runner: unknown suite 'nosuchsuite'") },
                      "no 'FAIL: runner: unknown suite' line; FAIL lines: \(r.fails)")
        XCTAssertEqual(r.summary?.failures, 1, "SUMMARY should count the failure")
    }

    func testUnknownSuiteAmongKnownOnesStillFails() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=console,nosuchsuite"))
        XCTAssertEqual(r.status, 3, r.statusDescription)
        XCTAssertTrue(r.fails.contains { $0.hasPrefix("runner: unknown suite 'nosuchsuite'") }, "\(r.fails)")
    }

    // MARK: command line errors

    func testUnknownOptionIsReportedAndIgnored() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=console bogus=1"))
        assertPassed(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("cmdline: unknown option 'bogus' ignored") },
                      "no 'cmdline: unknown option 'bogus' ignored' line")
        XCTAssertTrue(r.hasLine("cmdline: run = console"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("== suite console:") })
    }

    func testMalformedCommandLineWordsAreReportedAndSkipped() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=console key=\"unterminated BAD!=1"))
        assertPassed(r)
        let errors = r.lines(startingWith: "cmdline: error: ")
        XCTAssertTrue(errors.contains { $0.contains("unterminated quote") && $0.contains("key=\"unterminated") },
                      "no error for the unterminated quote: \(errors)")
        XCTAssertTrue(errors.contains { $0.contains("'BAD!=1'") }, "no error for the bad key: \(errors)")
        XCTAssertEqual(errors.count, 2, "exactly two malformed words: \(errors)")
        XCTAssertTrue(r.hasLine("cmdline: run = console"), "the valid word is still parsed")
        XCTAssertFalse(r.hasLine(containing: "cmdline: key ="), "a malformed word must not become an option")
        XCTAssertFalse(r.hasLine(containing: "cmdline: BAD"), "a malformed word must not become an option")
    }

    // MARK: fault reports

    /// A fault suite's only check, `faulted`, is recorded only when its fault
    /// did not come (a FAIL); a fault report ends the kernel before any record.
    private func assertNoCheck(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.records, [], "no check record before the fault", file: file, line: line)
        XCTAssertEqual(r.malformedRecords, [], file: file, line: line)
    }

    func testPageFaultReport() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=fault-pf"))
        assertFault(r, vectorName: "#PF page fault")
        assertNoCheck(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("FAULT: #PF page fault (vector 14)") })
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  error code ") && $0.contains("cr2 0x") },
                      "a page fault report names cr2")
        // The suite body's own frame is not on the rbp chain: cpu_touch (NASM)
        // keeps no frame, so the chain goes from it to the body's caller.
        assertFrame(r, naming: "cpu_touch", index: 0)
        assertFrame(r, naming: "static TestRunner.runSuites(", index: 1)
        assertFrame(r, naming: "static Boot.main()")
    }

    func testDivideErrorReport() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=fault-de"))
        assertFault(r, vectorName: "#DE divide error")
        assertNoCheck(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("FAULT: #DE divide error (vector 0)") })
        assertFrame(r, naming: "cpu_divide_by_zero", index: 0)
    }

    func testNullPointerReport() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=fault-null"))
        assertFault(r, vectorName: "#PF page fault")
        assertNoCheck(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  error code ") && $0.hasSuffix("cr2 0x0000000000000008") },
                      "expected cr2 0x0000000000000008 for the null dereference")
    }

    func testSwiftTrapReport() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=fault-trap"))
        assertFault(r, vectorName: "#UD invalid opcode")
        assertNoCheck(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("FAULT: #UD invalid opcode (vector 6)") })
        XCTAssertTrue(r.hasLine(containing: "ud2 at rip: a Swift runtime trap"), "the trap is named")
        assertFrame(r, naming: "FaultSuites.swiftTrap", index: 0)     // the suite body traps itself
    }

    func testKernelStackOverflowReport() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "run=fault-stack"))
        assertFault(r, vectorName: "#DF double fault")
        assertNoCheck(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("FAULT: #DF double fault (vector 8)") })
        XCTAssertTrue(r.lines.contains {
            $0.contains("kernel stack overflow: fault address 0x") && $0.contains("is the guard page below a kernel stack")
        }, "the overflow into the guard page is diagnosed")
        assertFrame(r, naming: "static FaultSuites.recurse(_:)", index: 0)
        assertFrame(r, naming: "static FaultSuites.recurse(_:)", index: 1)
    }

    func testFaultOnSMPBootIsReported() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=fault-pf"))
        assertFault(r, vectorName: "#PF page fault")
        assertNoCheck(r)
    }

    /// Every CPU faults at once: one whole report (assertFault demands exactly one
    /// FAULT line and every register), no report cut off by another CPU's.
    func testEveryCPUFaultingAtOnceGivesOneWholeReport() throws {
        for accel in Accel.halves {
            let r = try boot(QEMURun(smp: 4, accel: accel, cmdline: "run=fault-all-cpus", timeout: 90))
            assertFault(r, vectorName: "#PF page fault")
            assertNoCheck(r)
            XCTAssertFalse(r.hasLine(containing: "recursive fault"), "a second CPU's fault cut the report (\(accel))")
            // The owner's backtrace, then one per CPU it stopped.
            XCTAssertEqual(r.lines.filter { $0.hasPrefix("  backtrace (rbp chain") }.count, 4, "four backtraces (\(accel))")
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("stop: NMI to CPUs ") && $0.contains("; all 3 stopped in ") }, "\(accel)")
        }
    }

    // MARK: benchmarks

    /// run=bench completes and prints every figure (values are not judged).
    func testBenchmarksPrintEveryFigure() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=bench bench.ms=100", timeout: 120))
        assertPassed(r)
        // Every measurement's check: at least one sample (the figures are not judged).
        for key in ["ipi.roundtrip", "ipi.roundtrip.halt", "ipiq.roundtrip", "ipiq.roundtrip.spin", "ipiq.roundtrip.halt",
                    "ipi.broadcast", "rendezvous.all", "cpusync.all", "cpusync.all.spin", "cpusync.all.halt",
                    "switch.yield", "atomic.pair", "spin.uncontended", "crit.pair", "wakeup.remote", "wakeup.roundtrip",
                    "mem.pingpong", "heap.alloc64", "thread.lifecycle"] {
            assertPass(r, "bench", "samples.\(key)", atLeast: 1)
        }
        for id in ["ipiq-oneway", "rendezvous-contended", "record"] { assertPass(r, "bench", id) }
        assertPass(r, "bench", "contended.2", atLeast: 1)
        assertPass(r, "bench", "contended.4", atLeast: 1)
        assertPass(r, "bench-fastpath", "parts")
        assertPass(r, "bench-fastpath", "paths")
        assertPass(r, "bench-scale", "boot-online")
        assertPass(r, "bench-scale", "ipiq-alltoall", atLeast: 1)
        // bsd4's benchmark (not yet on check ids): its figure line.
        XCTAssertTrue(r.passes.contains { $0.hasPrefix("bench: bsd4 with 10000 queued lwps: select ") }, "no bsd4 figure")
        // The machine-readable lines (docs/benchmarks.md) the host tool reads:
        // one per measurement, each with its statistics.
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("BENCHENV: system=quartet smp=4 tsc_mhz=") && $0.contains(" cpu=") })
        for id in ["boot.online", "atomic.pair", "spin.uncontended", "fast.gsread", "crit.pair", "heap.alloc64",
                   "spin.contended2", "spin.fairness2", "spin.contended4", "spin.fairness4", "switch.yield",
                   "wakeup.remote", "wakeup.roundtrip", "thread.lifecycle", "ipi.roundtrip", "mem.pingpong",
                   "ipiq.roundtrip", "ipiq.coalesced", "ipiq.perip", "ipi.broadcast", "rendezvous.all", "cpusync.all",
                   "bsd4.select.10", "bsd4.setrunq.10000", "ktrace.on", "ipiq.alltoall"] {
            let line = r.lines.first { $0.hasPrefix("BENCH: id=\(id) unit=") }
            XCTAssertNotNil(line, "no BENCH line for \(id)")
            if let line {
                XCTAssertNotNil(line.range(of: #" median=[0-9.]+ p99=[0-9.]+ n=[1-9][0-9]* "#, options: .regularExpression), line)
                XCTAssertTrue(line.contains(" label="), line)
            }
        }
    }

    // MARK: monitor

    func testMonitorCommandsUnknownInputAndExit() throws {
        let r = try boot(QEMURun(smp: 2, cmdline: "", stdin: "help\nlist\nxyzzy\n\u{01}\u{02}garbage\nexit\n"))
        XCTAssertEqual(r.status, 1, "exit leaves QEMU with success: \(r.statusDescription)")
        XCTAssertTrue(r.hasLine(containing: "quartet> "), "no monitor prompt")
        for cmd in ["help", "list", "run <suite>", "mem", "options", "exit [code]"] {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("  " + cmd) }, "help does not describe '\(cmd)'")
        }
        for s in BootTests.nonFatalSuites + BootTests.fatalSuites {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix(s + " ") }, "list does not name \(s)")
        }
        XCTAssertTrue(r.lines.contains { $0.contains("unknown command 'xyzzy'") }, "no unknown-command line for xyzzy")
        XCTAssertTrue(r.lines.contains { $0.contains("unknown command '") && $0.contains("garbage'") },
                      "no unknown-command line for the control-character line")
        XCTAssertFalse(r.serial.unicodeScalars.contains { $0 == "\u{01}" || $0 == "\u{02}" },
                       "control characters echoed raw to the console")
        XCTAssertFalse(r.hasLine(containing: "unknown command 'help'"))
        XCTAssertFalse(r.hasLine(containing: "unknown command 'exit'"))
    }

    func testMonitorExitWithCode() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "", stdin: "exit 3\n"))
        XCTAssertEqual(r.status, 7, "exit 3 → QEMU status (3 << 1) | 1: \(r.statusDescription)")
    }

    func testMonitorRunsASuite() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "", stdin: "run console\nexit\n"))
        assertPassed(r)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("== suite console:") })
        XCTAssertTrue(r.lines.contains { $0.hasSuffix("quartet> exit") }, "run returned to the prompt")
    }

    func testMonitorMemAndOptions() throws {
        let r = try boot(QEMURun(smp: 1, cmdline: "tick=1", stdin: "mem\noptions\nexit\n"))
        XCTAssertEqual(r.status, 1, r.statusDescription)
        XCTAssertGreaterThanOrEqual(r.lines.filter { $0.hasPrefix("memory: ") && $0.contains(" MiB usable, ") }.count, 2,
                                    "mem repeats the memory summary")
        XCTAssertGreaterThanOrEqual(r.lines.filter { $0 == "cmdline: tick = 1" }.count, 2,
                                    "options repeats the parsed command line")
        // Every known option in a key column wide enough for the longest key:
        // the description starts at the same column on every line.
        let options = r.lines.filter { $0.hasPrefix("  ") && $0.contains("=") && $0.dropFirst(2).first?.isLetter == true }
        XCTAssertGreaterThan(options.count, 10, "the known options are listed")
        let columns = Set(options.map { l -> Int in
            let key = l.dropFirst(2).prefix { $0 != " " }
            let rest = l.dropFirst(2 + key.count)
            return 2 + key.count + rest.prefix { $0 == " " }.count
        })
        XCTAssertEqual(columns.count, 1, "descriptions start in one column: \(options)")
        XCTAssertTrue(options.allSatisfy { l in l.dropFirst(2).prefix { $0 != " " }.count + 2 < (columns.first ?? 0) },
                      "at least two spaces between every key and its description")
    }
}

extension QEMUTestCase {
    static func isHex(_ s: String) -> Bool {
        s.count > 2 && s.hasPrefix("0x") && s.dropFirst(2).allSatisfy { $0.isHexDigit }
    }
}
