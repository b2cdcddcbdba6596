// In-kernel test runner, kvm-unit-tests style (docs/testing.md): each check prints
// `PASS: suite: message`, `FAIL: ...` or `SKIP: ...`; the run ends with
// `SUMMARY: N tests, F unexpected failures, S skipped` and an isa-debug-exit code
// (0 = everything passed). Selected with `run=NAME[,NAME...]`, `run=all`, `run=list`.

struct TestSuite {
    enum Kind {
        case normal        // part of run=all
        case fatal         // ends the kernel on purpose (fault suites); run by name only
        case interactive   // needs a person at the console; run by name only
        case benchmark     // prints figures, never fails on timing; run=bench or by name
    }
    let name: StaticString
    let kind: Kind
    let summary: StaticString
    let body: (inout TestContext) -> Void
}

/// Collects one run's results. Passed `inout` to every suite.
struct TestContext {
    private(set) var suite: StaticString = ""
    private(set) var tests = 0
    private(set) var failures = 0
    private(set) var skipped = 0

    mutating func begin(_ s: StaticString) { suite = s }

    /// Records one check with a fixed message.
    mutating func check(_ ok: Bool, _ message: StaticString) {
        check(ok) { $0.write(message) }
    }

    /// Records one check; `message` formats the text after "PASS: suite: ".
    mutating func check(_ ok: Bool, _ message: (inout FixedLineBuffer) -> Void) {
        tests += 1
        if !ok { failures += 1 }
        let s = suite
        Console.line { l in
            l.write(ok ? "PASS: " : "FAIL: "); l.write(s); l.write(": ")
            message(&l)
        }
    }

    mutating func skip(_ message: StaticString) {
        tests += 1
        skipped += 1
        let s = suite
        Console.line { l in l.write("SKIP: "); l.write(s); l.write(": "); l.write(message) }
    }

    /// A progress or figure line that is not a check.
    func note(_ message: (inout FixedLineBuffer) -> Void) {
        let s = suite
        Console.line { l in l.write("  "); l.write(s); l.write(": "); message(&l) }
    }
}

/// A deadline for loops sized by time rather than count: the same suite runs on
/// TCG, on real-speed KVM and on the development machine's very slow nested KVM.
struct TimeBudget {
    let end: UInt64
    init(milliseconds ms: UInt64) { end = TSC.now &+ TSC.ticksPerMs &* ms }
    var expired: Bool { TSC.now >= end }
}

enum TestRunner {
    static func find(_ name: String) -> TestSuite? {
        for s in SuiteRegistry.all where equal(s.name, name) { return s }
        return nil
    }

    static func printList() {
        for s in SuiteRegistry.all {
            Console.line { l in
                l.padRight(s.name, width: 20)
                switch s.kind {
                case .normal: l.write("        ")
                case .fatal: l.write("[fatal] ")
                case .interactive: l.write("[inter] ")
                case .benchmark: l.write("[bench] ")
                }
                l.write(s.summary)
            }
        }
    }

    /// Runs the requested suites and exits QEMU with the overall result.
    static func run(_ names: [String]) -> Never {
        if names.count == 1 && names[0] == "list" {
            printList()
            QEMUExit.success()
        }
        var ctx = TestContext()
        runSuites(names, &ctx)
        finish(ctx)
    }

    /// The monitor's `run`: the same, then back to the prompt.
    static func runAndReturn(_ names: [String]) {
        var ctx = TestContext()
        runSuites(names, &ctx)
        summary(ctx)
    }

    private static func runSuites(_ names: [String], _ ctx: inout TestContext) {
        var selected: [TestSuite] = []
        for name in names {
            if name == "all" {
                for s in SuiteRegistry.all where s.kind == .normal { selected.append(s) }
            } else if name == "bench" {
                for s in SuiteRegistry.all where s.kind == .benchmark { selected.append(s) }
            } else if let s = find(name) {
                selected.append(s)
            } else {
                ctx.begin("runner")
                ctx.check(false) { $0.write("unknown suite '"); $0.write(name); $0.write("' (run=list shows them)") }
            }
        }
        for s in selected {
            if Monitor.interrupted {                 // Ctrl-C at the monitor: no further suite
                Console.line { $0.write("run: interrupted (Ctrl-C) before "); $0.write(s.name) }
                break
            }
            Console.line { $0.write("== suite "); $0.write(s.name); $0.write(": "); $0.write(s.summary) }
            ctx.begin(s.name)
            Panic.suiteInProgress = s.kind == .normal ? s.name : nil
            s.body(&ctx)
            Panic.suiteInProgress = nil
        }
    }

    /// Prints the SUMMARY line and exits QEMU: code 0 only when there were checks
    /// and none failed. A suite that leaves the machine unusable (CPUs deadlocked
    /// on purpose by a negative control) ends the run here, after its checks.
    static func summary(_ ctx: TestContext) {
        Console.line { l in
            l.write("SUMMARY: "); l.dec(ctx.tests); l.write(" tests, ")
            l.dec(ctx.failures); l.write(" unexpected failures, ")
            l.dec(ctx.skipped); l.write(" skipped")
        }
    }

    static func finish(_ ctx: TestContext) -> Never {
        summary(ctx)
        if ctx.failures == 0 && ctx.tests > 0 { QEMUExit.success() }
        QEMUExit.failure(1)
    }

    private static func equal(_ a: StaticString, _ b: String) -> Bool {
        a.withUTF8Buffer { ab in
            var i = 0
            for byte in b.utf8 {
                if i >= ab.count || ab[i] != byte { return false }
                i += 1
            }
            return i == ab.count
        }
    }
}
