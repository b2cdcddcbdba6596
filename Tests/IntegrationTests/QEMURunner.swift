// Host-side harness that boots build/kernel.elf in QEMU and parses its serial output.
// Conventions (kvm-unit-tests, docs/testing.md): PASS:/FAIL:/SKIP: lines,
// a SUMMARY line, and isa-debug-exit: QEMU status (code << 1) | 1, so 1 = success,
// 3 = test failures, 5 = kernel fault/panic, 0 = the kernel never reached the device.
//
// Environment overrides: QUARTET_KERNEL (path of the kernel ELF), QEMU (the binary).
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Accel: String {
    case tcg, kvm

    var qemuArguments: [String] {
        switch self {
        case .tcg: return ["-accel", "tcg,thread=multi", "-cpu", "max"]
        case .kvm: return ["-accel", "kvm", "-cpu", Accel.kvmCPU]
        }
    }

    /// `-cpu` under KVM. Plain `host` makes QEMU 7.2 abort on hosts whose KVM refuses
    /// IA32_ARCH_CAPABILITIES ("failed to set MSR 0x10a", kvm_buf_set_msrs assertion;
    /// seen on the development machine's kvm_pvm). Dropping that one CPUID bit is harmless for
    /// the kernel and a no-op elsewhere. QUARTET_KVM_CPU overrides it.
    static var kvmCPU: String {
        if let c = ProcessInfo.processInfo.environment["QUARTET_KVM_CPU"], !c.isEmpty { return c }
        return "host,-arch-capabilities"
    }

    /// KVM is usable when /dev/kvm is readable and writable by this user.
    /// QUARTET_KVM_DEVICE names another path (a missing one shows what a test
    /// does on a machine without KVM).
    static var kvmUsable: Bool {
        let fm = FileManager.default
        let dev = ProcessInfo.processInfo.environment["QUARTET_KVM_DEVICE"].flatMap { $0.isEmpty ? nil : $0 } ?? "/dev/kvm"
        return fm.isReadableFile(atPath: dev) && fm.isWritableFile(atPath: dev)
    }

    /// The accelerators of a test with a TCG and a KVM half, KVM last. Where KVM
    /// is not usable the KVM boot does not start: QEMUTestCase.boot ends the test
    /// as skipped there (after the TCG half ran and was asserted), never as a pass.
    static let halves: [Accel] = [.tcg, .kvm]
}

/// One QEMU boot.
struct QEMURun {
    var smp: Int = 1
    var accel: Accel = .tcg
    var cmdline: String = ""
    var timeout: TimeInterval = 60
    var memoryMiB: Int = 256
    /// Bytes written to the serial port (QEMU's stdin); nil leaves stdin empty (/dev/null).
    var stdin: [UInt8]? = nil
    /// Write `stdin` once this text has appeared on the serial output (nil: immediately).
    /// The default waits for the monitor prompt, which is how a person types: the
    /// kernel keeps bytes that arrive before it initialises the UART (it clears only
    /// the transmit FIFO), but the 16550's receive FIFO holds just 16 of them.
    var stdinAfter: String? = "quartet> "
    /// Expect-style input, after `stdin` (if any): each step waits for its text
    /// to appear after the point where the previous step's text was found, then
    /// sends what its closure makes of the serial output so far (so a step can
    /// use a thread id an earlier command printed). A step whose text never
    /// appears before the timeout stops the script.
    var script: [ExpectStep] = []
    /// The boot is meant to run until the timeout (a halted machine).
    var expectsTimeout = false
    /// More QEMU arguments (e.g. a gdb stub).
    var extraArguments: [String] = []

    init(smp: Int = 1, accel: Accel = .tcg, cmdline: String = "", timeout: TimeInterval = 60,
         memoryMiB: Int = 256, stdin: [UInt8]? = nil, stdinAfter: String? = "quartet> ") {
        self.smp = smp
        self.accel = accel
        self.cmdline = cmdline
        self.timeout = timeout
        self.memoryMiB = memoryMiB
        self.stdin = stdin
        self.stdinAfter = stdinAfter
    }

    init(smp: Int = 1, accel: Accel = .tcg, cmdline: String = "", timeout: TimeInterval = 60,
         memoryMiB: Int = 256, stdin: String, stdinAfter: String? = "quartet> ") {
        self.init(smp: smp, accel: accel, cmdline: cmdline, timeout: timeout,
                  memoryMiB: memoryMiB, stdin: Array(stdin.utf8), stdinAfter: stdinAfter)
    }

    var description: String {
        "-smp \(smp) -m \(memoryMiB) \(accel.rawValue) -append '\(cmdline)'"
            + (stdin.map { " stdin \($0.count) bytes" } ?? "")
    }
}

extension String {
    /// The number right after `label` (which ends where the digits begin),
    /// e.g. "kept " in "... bound with a target at a switch, kept 3": 3.
    func number(after label: String) -> Int? {
        guard let r = range(of: label) else { return nil }
        return Int(self[r.upperBound...].prefix { $0.isNumber })
    }

    /// The number right before `label`, e.g. " halts" in "...: 61203 halts, ...": 61203.
    func number(before label: String) -> Int? {
        guard let r = range(of: label) else { return nil }
        return Int(String(self[..<r.lowerBound].reversed().prefix { $0.isNumber }.reversed()))
    }
}

struct ExpectStep {
    let waitFor: String
    let send: (String) -> String
    init(_ waitFor: String, _ send: @escaping (String) -> String) { self.waitFor = waitFor; self.send = send }
    /// Waits for the next monitor prompt, then types `line` and Enter.
    static func command(_ line: String) -> ExpectStep { ExpectStep("quartet> ") { _ in line + "\r" } }
    static func command(_ make: @escaping (String) -> String) -> ExpectStep { ExpectStep("quartet> ") { make($0) + "\r" } }
}

struct QEMUSummary: Equatable {
    var tests: Int
    var failures: Int
    var skipped: Int
}

struct QEMUResult {
    var run: QEMURun
    var commandLine: [String]
    /// QEMU's exit status, or the signal number when `signaled` (meaningless when timedOut).
    var status: Int32
    /// QEMU died from a signal (an abort, or our SIGKILL after a timeout).
    var signaled: Bool
    var timedOut: Bool
    var elapsed: TimeInterval
    /// Everything QEMU wrote to stdout: the serial console.
    var serial: String
    /// QEMU's own diagnostics.
    var stderr: String
    /// Serial lines, carriage returns removed.
    var lines: [String]
    /// Messages after "PASS: ", "FAIL: ", "SKIP: ".
    var passes: [String]
    var fails: [String]
    var skips: [String]
    var summary: QEMUSummary?

    init(run: QEMURun, commandLine: [String], status: Int32, signaled: Bool = false, timedOut: Bool,
         elapsed: TimeInterval, serial: String, stderr: String) {
        self.run = run
        self.commandLine = commandLine
        self.status = status
        self.signaled = signaled
        self.timedOut = timedOut
        self.elapsed = elapsed
        self.serial = serial
        self.stderr = stderr
        // "\r\n" is one Character in Swift: split on both forms.
        let lines = serial.split(omittingEmptySubsequences: false,
                                 whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
            var s = Substring($0)
            while s.last == "\r" { s = s.dropLast() }
            return String(s)
        }
        self.lines = lines
        func after(_ prefix: String) -> [String] {
            lines.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        passes = after("PASS: ")
        fails = after("FAIL: ")
        skips = after("SKIP: ")
        summary = lines.lazy.compactMap(QEMUResult.parseSummary).last
    }

    /// "SUMMARY: N tests, F unexpected failures, S skipped"
    static func parseSummary(_ line: String) -> QEMUSummary? {
        guard line.hasPrefix("SUMMARY: ") else { return nil }
        let numbers = line.dropFirst("SUMMARY: ".count)
            .split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count == 3, line.contains(" tests, "), line.contains(" unexpected failures, "),
              line.hasSuffix(" skipped") else { return nil }
        return QEMUSummary(tests: numbers[0], failures: numbers[1], skipped: numbers[2])
    }

    /// Lines starting with `prefix` (after leading spaces are removed when `trimmed`).
    func lines(startingWith prefix: String, trimmed: Bool = false) -> [String] {
        lines.filter { (trimmed ? $0.drop(while: { $0 == " " }) : Substring($0)).hasPrefix(prefix) }
    }

    func hasLine(_ line: String) -> Bool { lines.contains(line) }
    func hasLine(containing text: String) -> Bool { lines.contains { $0.contains(text) } }

    /// The backtrace frame lines ("    #N  0x%016x", then "  NAME + 0xOFFSET" when
    /// the kernel's symbol table covers the address), in order; nil for a line
    /// that starts like a frame but does not parse.
    var backtraceFrames: [BacktraceFrame?] {
        lines.filter { $0.hasPrefix("    #") }.map(BacktraceFrame.init)
    }

    var statusDescription: String {
        if timedOut { return "timed out after \(run.timeout) s" }
        if signaled { return "QEMU was killed by signal \(status) (see its stderr)" }
        switch status {
        case 0: return "status 0: the kernel never reached isa-debug-exit (hang, reset, triple fault)"
        case let s where s & 1 == 1: return "status \(s): the kernel exited with code \(s >> 1)"
        default: return "status \(status): QEMU itself failed"
        }
    }

    var log: String {
        var s = "qemu: \(commandLine.joined(separator: " "))\n"
        s += "result: \(statusDescription), \(String(format: "%.2f", elapsed)) s\n"
        s += "---- serial ----\n" + serial
        if !serial.hasSuffix("\n") { s += "\n" }
        if !stderr.isEmpty { s += "---- qemu stderr ----\n" + stderr + (stderr.hasSuffix("\n") ? "" : "\n") }
        return s
    }
}

/// One parsed backtrace frame line.
struct BacktraceFrame {
    var index: Int
    var address: String
    /// The demangled name the kernel printed, and the offset ("0x4f"); nil for a bare frame.
    var name: String?
    var offset: String?

    init?(_ line: String) {
        let body = line.dropFirst("    #".count)
        let digits = body.prefix(while: { $0.isNumber })
        let afterDigits = body.dropFirst(digits.count)
        let rest = afterDigits.drop(while: { $0 == " " })
        let address = String(rest.prefix(18))
        guard let n = Int(digits), rest.count < afterDigits.count, QEMUTestCase.isHex64(address) else { return nil }
        index = n
        self.address = address
        let tail = rest.dropFirst(18)
        if tail.isEmpty { return }
        // "  NAME + 0xOFFSET": the name may itself contain " + " (operators), so split at the last one.
        guard tail.hasPrefix("  "), let plus = tail.range(of: " + 0x", options: .backwards) else { return nil }
        let name = String(tail[tail.index(tail.startIndex, offsetBy: 2)..<plus.lowerBound])
        let offset = String(tail[plus.upperBound...])
        guard !name.isEmpty, !offset.isEmpty, offset.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.name = name
        self.offset = "0x" + offset
    }

    /// A Swift name as `swift-demangle --simplified` prints it: a signature
    /// ("static Boot.main()") or a closure ("closure #1 in ..."). Assembly names
    /// (cpu_touch, trap_common) have neither parentheses nor blanks; a mangled
    /// name starts with "$".
    var namesDemangledSwift: Bool {
        guard let name, !name.hasPrefix("$") else { return false }
        return name.contains("(") || name.contains(" in ")
    }
}

enum Environment {
    /// VAR=1 in the environment.
    static func flag(_ name: String) -> Bool { ProcessInfo.processInfo.environment[name] == "1" }
}

enum QEMUError: Error, CustomStringConvertible {
    case kernelMissing(String)
    case qemuMissing(String?)
    case launchFailed(String)
    case kvmHalfNotRun

    var description: String {
        switch self {
        case .kernelMissing(let path): return "kernel \(path) not found: run `make` first"
        case .qemuMissing(let override?):
            return "QEMU=\(override) is not an executable; integration tests cannot run"
        case .qemuMissing(nil):
            return "qemu-system-x86_64 is not on PATH (apt-get install qemu-system-x86); integration tests cannot run"
        case .launchFailed(let why): return "could not start QEMU: \(why)"
        case .kvmHalfNotRun: return "the KVM half did not run (KVM not usable; the TCG half failed already)"
        }
    }
}

/// Thread-safe growing byte buffer with a condition for "text has appeared".
private final class OutputBuffer: @unchecked Sendable {
    private let cond = NSCondition()
    private var data = Data()
    private var closed = false

    func append(_ chunk: Data) {
        cond.lock(); data.append(chunk); cond.broadcast(); cond.unlock()
    }
    func close() {
        cond.lock(); closed = true; cond.broadcast(); cond.unlock()
    }
    /// Waits until `needle` occurs at or after byte `from`; returns where it
    /// ends, or nil when the stream ends or the deadline passes first.
    func wait(for needle: Data, from: Int, until deadline: Date) -> Int? {
        cond.lock(); defer { cond.unlock() }
        while true {
            if from <= data.count, let r = data.range(of: needle, in: from..<data.count) { return r.upperBound }
            if closed || !cond.wait(until: deadline) {
                if from <= data.count, let r = data.range(of: needle, in: from..<data.count) { return r.upperBound }
                return nil
            }
        }
    }
    /// Waits until `needle` occurs, the stream ends, or the deadline passes.
    func wait(for needle: Data, until deadline: Date) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while true {
            if data.range(of: needle) != nil { return true }
            if closed || !cond.wait(until: deadline) { return data.range(of: needle) != nil }
        }
    }
    func waitClosed(until deadline: Date) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while !closed { if !cond.wait(until: deadline) { return closed } }
        return true
    }
    var contents: Data { cond.lock(); defer { cond.unlock() }; return data }
}

enum QEMU {
    /// Repository root: this file is Tests/IntegrationTests/QEMURunner.swift.
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `bash SCRIPT ARGS...` from the repository root (a project script
    /// such as scripts/check-panic-path.sh) and returns its exit status and its
    /// standard output and error, interleaved as printed.
    static func runScript(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.currentDirectoryURL = repoRoot
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    static var kernelPath: String {
        if let p = ProcessInfo.processInfo.environment["QUARTET_KERNEL"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent("build/kernel.elf").path
    }

    /// The kernel is read once per test process, so that every boot uses the same
    /// image and a rebuild during the run (the Makefile rewrites build/kernel.elf)
    /// cannot hand QEMU a half-written file. Each boot gets its own temporary copy.
    private static let snapshotLock = NSLock()
    private static var snapshot: Data?

    static func kernelImage() throws -> Data {
        snapshotLock.lock(); defer { snapshotLock.unlock() }
        if let s = snapshot { return s }
        let path = kernelPath
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) else { throw QEMUError.kernelMissing(path) }
        // Wait (briefly) for the file to be quiet: not modified in the last second.
        var bytes = Data()
        for _ in 0..<20 {
            let before = try fm.attributesOfItem(atPath: path)[.modificationDate] as? Date
            if let b = before, Date().timeIntervalSince(b) < 1 { Thread.sleep(forTimeInterval: 0.5); continue }
            bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let after = try fm.attributesOfItem(atPath: path)[.modificationDate] as? Date
            if before == after { break }
        }
        guard bytes.count > 64, bytes.prefix(4) == Data([0x7F, 0x45, 0x4C, 0x46]) else {
            throw QEMUError.kernelMissing(path + " (not an ELF file; rebuild with `make`)")
        }
        snapshot = bytes
        return bytes
    }

    /// Writes the kernel snapshot to a fresh temporary file (removed by the caller).
    static func kernelCopy() throws -> URL {
        let bytes = try kernelImage()
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("quartet-kernel-\(getpid())-\(UUID().uuidString).elf")
        try bytes.write(to: url)
        return url
    }

    static func qemuBinary() throws -> String {
        let fm = FileManager.default
        if let q = ProcessInfo.processInfo.environment["QEMU"], !q.isEmpty {
            guard fm.isExecutableFile(atPath: q) else { throw QEMUError.qemuMissing(q) }
            return q
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/qemu-system-x86_64"
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw QEMUError.qemuMissing(nil)
    }

    /// Boots the kernel once and returns everything it printed.
    static func boot(_ run: QEMURun) throws -> QEMUResult {
        let qemu = try qemuBinary()
        let kernelURL = try kernelCopy()
        defer { try? FileManager.default.removeItem(at: kernelURL) }
        let kernel = kernelURL.path
        signal(SIGPIPE, SIG_IGN)   // QEMU may exit before we finish writing its stdin

        var args = ["-no-reboot", "-nodefaults", "-display", "none", "-serial", "stdio",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-m", String(run.memoryMiB), "-smp", String(run.smp)]
        args += run.accel.qemuArguments
        args += ["-kernel", kernel, "-append", run.cmdline]
        args += run.extraArguments

        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = args
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe: Pipe? = run.stdin == nil && run.script.isEmpty ? nil : Pipe()
        process.standardInput = inPipe ?? FileHandle.nullDevice

        let out = OutputBuffer(), err = OutputBuffer()
        func drain(_ handle: FileHandle, into buffer: OutputBuffer) {
            Thread.detachNewThread {
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                }
                buffer.close()
            }
        }

        let start = Date()
        let deadline = start.addingTimeInterval(run.timeout)
        do { try process.run() } catch { throw QEMUError.launchFailed("\(qemu): \(error)") }
        // Close our copies of the child's ends so EOF arrives when QEMU exits.
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        try? inPipe?.fileHandleForReading.close()
        drain(outPipe.fileHandleForReading, into: out)
        drain(errPipe.fileHandleForReading, into: err)

        if let inPipe {
            let fd = inPipe.fileHandleForWriting.fileDescriptor
            let marker = run.stdinAfter.map { Data($0.utf8) }
            let script = run.script
            @Sendable func send(_ bytes: [UInt8]) {
                bytes.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                        if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
                        offset += n
                    }
                }
            }
            let bytes = run.stdin
            Thread.detachNewThread {
                var position = 0
                if let bytes {
                    if let marker {
                        guard let end = out.wait(for: marker, from: 0, until: deadline) else { return }
                        position = end
                    }
                    send(bytes)
                }
                for step in script {
                    guard let end = out.wait(for: Data(step.waitFor.utf8), from: position, until: deadline) else { return }
                    position = end
                    send(Array(step.send(String(decoding: out.contents, as: UTF8.self)).utf8))
                }
            }
        }

        // Wait for exit or the deadline.
        var timedOut = false
        while process.isRunning {
            if Date() >= deadline { timedOut = true; break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        if timedOut {
            process.terminate()                                  // SIGTERM
            let grace = Date().addingTimeInterval(3)
            while process.isRunning && Date() < grace { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let elapsed = Date().timeIntervalSince(start)
        _ = out.waitClosed(until: Date().addingTimeInterval(5))
        _ = err.waitClosed(until: Date().addingTimeInterval(5))
        try? inPipe?.fileHandleForWriting.close()

        return QEMUResult(run: run, commandLine: [qemu] + args, status: process.terminationStatus,
                          signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut, elapsed: elapsed,
                          serial: String(decoding: out.contents, as: UTF8.self),
                          stderr: String(decoding: err.contents, as: UTF8.self))
    }
}

/// Base class: boots through `boot(_:)`, and prints the whole serial log of every
/// boot of a test that failed (to stdout, with a banner), so CI logs show it.
class QEMUTestCase: XCTestCase {
    private var results: [QEMUResult] = []

    override func setUp() {
        super.setUp()
        continueAfterFailure = true
        results = []
    }

    override func tearDown() {
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            for (i, r) in results.enumerated() {
                let banner = "==== \(name): QEMU boot \(i + 1) of \(results.count) (\(r.run.description)) ===="
                print("\n" + banner + "\n" + r.log + String(repeating: "=", count: banner.count) + "\n")
            }
            if results.isEmpty { print("==== \(name): failed before any QEMU boot finished ====") }
        }
        results = []
        super.tearDown()
    }

    /// Boots once. A KVM boot where KVM is not usable does not start: the test
    /// ends there as skipped (requireKVM; a failure with QUARTET_REQUIRE_KVM=1),
    /// so a test's KVM half is never dropped silently.
    @discardableResult
    func boot(_ run: QEMURun, file: StaticString = #filePath, line: UInt = #line) throws -> QEMUResult {
        if run.accel == .kvm && !Accel.kvmUsable {
            if let t = testRun, t.failureCount > 0 { throw QEMUError.kvmHalfNotRun }
            try requireKVM(half: true, file: file, line: line)
        }
        let r = try QEMU.boot(run)
        results.append(r)
        if !run.expectsTimeout { XCTAssertFalse(r.timedOut, "QEMU timed out after \(run.timeout) s (\(run.description))") }
        return r
    }

    /// A test (or the half of one) that needs KVM: skipped, and so counted as a
    /// skip, when /dev/kvm is not usable; with QUARTET_REQUIRE_KVM=1 (CI sets it
    /// where /dev/kvm is usable) a missing KVM is a failure instead.
    func requireKVM(half: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        guard Accel.kvmUsable else {
            let why = "KVM is not usable here (/dev/kvm missing or not readable and writable)"
            if Environment.flag("QUARTET_REQUIRE_KVM") {
                XCTFail(why + " and QUARTET_REQUIRE_KVM=1", file: file, line: line)
                throw XCTSkip(why + ": failed above (QUARTET_REQUIRE_KVM=1)")
            }
            throw XCTSkip(why + (half ? "; the test's TCG half passed, its KVM half did not run"
                                      : "; the TCG variant covers this boot"))
        }
    }

    /// The same for gdb (QUARTET_REQUIRE_GDB=1).
    func requireTool(_ path: String?, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if let path { return path }
        let why = "\(name) is not installed (scripts/setup.sh installs it)"
        if Environment.flag("QUARTET_REQUIRE_GDB") {
            XCTFail(why + " and QUARTET_REQUIRE_GDB=1", file: file, line: line)
            throw XCTSkip(why + ": failed above (QUARTET_REQUIRE_GDB=1)")
        }
        throw XCTSkip(why)
    }

    // MARK: assertions

    /// The kernel reported success: status 1, a summary with tests > 0 and 0 failures, no FAIL lines,
    /// one well-formed CHECK record per check, and every SKIP accounted for: its
    /// reason is in `skips` (default: what the boot's configuration explains,
    /// SkipReasons.allowed(for:)) or in `alsoAllowing`.
    func assertPassed(_ r: QEMUResult, skips: Set<String>? = nil, alsoAllowing extra: Set<String> = [],
                      file: StaticString = #filePath, line: UInt = #line) {
        let allowed = (skips ?? SkipReasons.allowed(for: r.run)).union(extra)
        for problem in r.recordProblems(allowedSkips: allowed) { XCTFail(problem, file: file, line: line) }
        XCTAssertEqual(r.status, 1, "expected success (status 1), got \(r.statusDescription)", file: file, line: line)
        XCTAssertEqual(r.fails, [], "FAIL lines on the serial console", file: file, line: line)
        guard let s = r.summary else {
            XCTFail("no SUMMARY line", file: file, line: line); return
        }
        XCTAssertGreaterThan(s.tests, 0, "SUMMARY reports no tests", file: file, line: line)
        XCTAssertEqual(s.failures, 0, "SUMMARY reports unexpected failures", file: file, line: line)
        XCTAssertEqual(r.passes.count + r.fails.count + r.skips.count, s.tests,
                       "SUMMARY test count disagrees with the PASS, FAIL and SKIP lines", file: file, line: line)
        XCTAssertEqual(r.skips.count, s.skipped, "SUMMARY skip count disagrees with the SKIP lines",
                       file: file, line: line)
    }

    /// The kernel died with a fault report: status 5, the FAULT line naming `vectorName`
    /// (e.g. "#PF page fault"), the error code line, every register, and a backtrace.
    func assertFault(_ r: QEMUResult, vectorName: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 5, "expected a kernel fault (status 5), got \(r.statusDescription)",
                       file: file, line: line)
        let faults = r.lines(startingWith: "FAULT: ")
        XCTAssertEqual(faults.count, 1, "expected exactly one FAULT line, got \(faults)", file: file, line: line)
        XCTAssertTrue(faults.contains { $0.hasPrefix("FAULT: \(vectorName) (vector ") && $0.contains(" in kernel mode on CPU ") },
                      "no 'FAULT: \(vectorName) (vector N) in kernel mode on CPU N' line; got \(faults)",
                      file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  error code 0x") }, "no '  error code 0x...' line",
                      file: file, line: line)
        let registers = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                         "rip", "rfl", "cs", "ss", "cr3"]
        let registerLines = r.lines.filter { $0.hasPrefix("  ") }.joined(separator: " ")
        let tokens = registerLines.split(separator: " ").map(String.init)
        for reg in registers {
            let found = tokens.indices.contains { i in
                tokens[i] == reg && i + 1 < tokens.count && QEMUTestCase.isHex64(tokens[i + 1])
            }
            XCTAssertTrue(found, "register \(reg) with a 0x%016x value missing from the fault report",
                          file: file, line: line)
        }
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  backtrace (rbp chain") }, "no backtrace header",
                      file: file, line: line)
        assertSymbolizedBacktrace(r, file: file, line: line)
        XCTAssertNil(r.summary, "a fatal suite must not reach SUMMARY", file: file, line: line)
    }

    /// Every frame line is well formed ("    #N  0x%016x", optionally "  NAME + 0xOFF"),
    /// there is a frame #0, and the kernel named at least one frame with a
    /// demangled Swift function from its own symbol table.
    func assertSymbolizedBacktrace(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        let frames = r.backtraceFrames
        XCTAssertFalse(frames.contains { $0 == nil },
                       "malformed frame lines: \(r.lines.filter { $0.hasPrefix("    #") && BacktraceFrame($0) == nil })",
                       file: file, line: line)
        XCTAssertEqual(frames.first??.index, 0, "no '#0  0x...' backtrace frame", file: file, line: line)
        XCTAssertTrue(frames.contains { $0?.namesDemangledSwift == true },
                      "no frame names a demangled Swift function: \(frames.compactMap { $0?.name })",
                      file: file, line: line)
    }

    /// Some frame's name contains `text` (e.g. "FaultSuites.recurse"); `index`
    /// restricts it to one frame.
    func assertFrame(_ r: QEMUResult, naming text: String, index: Int? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
        let frames = r.backtraceFrames.compactMap { $0 }.filter { index == nil || $0.index == index }
        XCTAssertTrue(frames.contains { $0.name?.contains(text) == true },
                      "no frame\(index.map { " #\($0)" } ?? "") names '\(text)': \(frames.map { $0.name ?? $0.address })",
                      file: file, line: line)
    }

    /// The kernel panicked with `message`: status 5, the "panic: MESSAGE" line, a
    /// backtrace, and no SUMMARY (the run did not go on).
    func assertPanic(_ r: QEMUResult, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 5, "expected a panic (status 5), got \(r.statusDescription)", file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: " + message) }, "no 'panic: \(message)' line",
                      file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  backtrace (rbp chain") }, "no backtrace", file: file, line: line)
        assertSymbolizedBacktrace(r, file: file, line: line)
        XCTAssertNil(r.summary, "a panic ends the run", file: file, line: line)
    }

    static func isHex64(_ s: String) -> Bool {
        s.count == 18 && s.hasPrefix("0x") && s.dropFirst(2).allSatisfy { $0.isHexDigit }
    }
}
