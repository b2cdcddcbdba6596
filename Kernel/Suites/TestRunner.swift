// In-kernel test runner, kvm-unit-tests style (docs/testing.md): each check prints
// `PASS: suite: message`, `FAIL: ...` or `SKIP: ...` and its CHECK record; a
// torture suite's `End of test` verdict is derived from its records; the run ends with
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
    /// A torture suite: the runner prints `End of test: SUCCESS|FAILURE` after
    /// its body, derived from its check records (never printed by the suite).
    let torture: Bool
    let body: (inout TestContext) -> Void

    init(name: StaticString, kind: Kind, summary: StaticString, torture: Bool = false,
         body: @escaping (inout TestContext) -> Void) {
        self.name = name
        self.kind = kind
        self.summary = summary
        self.torture = torture
        self.body = body
    }
}

/// Collects one run's results. Passed `inout` to every suite. Every check prints
/// its human line and its record (CheckRecord.swift) from the same call.
struct TestContext {
    private(set) var suite: StaticString = ""
    private(set) var tests = 0
    private(set) var failures = 0
    private(set) var skipped = 0
    /// The current suite's own records.
    private(set) var suitePasses = 0
    private(set) var suiteFailures = 0
    private(set) var suiteSkips = 0
    private var torture = false
    private var ended = true

    mutating func begin(_ s: StaticString, torture: Bool = false) {
        suite = s
        self.torture = torture
        suitePasses = 0; suiteFailures = 0; suiteSkips = 0
        ended = false
    }

    // MARK: checks with an id (the form every converted suite uses)

    /// A comparison: passes when `bound` holds for `value`; the record carries both.
    /// `part` names one of several cases of the same check (id `ID.PART`).
    mutating func expect(_ id: StaticString, part: StaticString? = nil, inv: StaticString = "-", _ value: UInt64,
                         _ bound: CheckBound, _ message: (inout FixedLineBuffer) -> Void) {
        record(id, part, inv, bound.holds(value) ? .pass : .fail, value: value, bound: bound, reason: nil, message)
    }

    mutating func expect(_ id: StaticString, inv: StaticString = "-", _ value: UInt64, _ bound: CheckBound,
                         _ message: StaticString) {
        expect(id, inv: inv, value, bound) { $0.write(message) }
    }

    /// A condition that is not one comparison.
    mutating func expect(_ id: StaticString, part: StaticString? = nil, inv: StaticString = "-", _ ok: Bool,
                         _ message: (inout FixedLineBuffer) -> Void) {
        record(id, part, inv, ok ? .pass : .fail, value: nil, bound: nil, reason: nil, message)
    }

    mutating func expect(_ id: StaticString, inv: StaticString = "-", _ ok: Bool, _ message: StaticString) {
        expect(id, inv: inv, ok) { $0.write(message) }
    }

    /// A check that cannot run in this configuration; `reason` is what the host
    /// holds against the boot's configuration.
    mutating func skip(_ id: StaticString, part: StaticString? = nil, inv: StaticString = "-", reason: SkipReason,
                       _ message: StaticString) {
        record(id, part, inv, .skip, value: nil, bound: nil, reason: reason) { $0.write(message) }
    }

    private mutating func record(_ id: StaticString, _ part: StaticString?, _ inv: StaticString, _ result: CheckResult,
                                 value: UInt64?, bound: CheckBound?, reason: SkipReason?,
                                 _ message: (inout FixedLineBuffer) -> Void) {
        tests += 1
        switch result {
        case .pass: suitePasses += 1
        case .fail: failures += 1; suiteFailures += 1
        case .skip: skipped += 1; suiteSkips += 1
        }
        let s = suite
        Console.line { l in l.write(result.human); l.write(s); l.write(": "); message(&l) }
        CheckRecord.emit(suite: s, id: id, part: part, inv: inv, value: value, bound: bound, result: result, reason: reason)
    }

    /// The end of the current suite (the runner calls it; a suite that ends the
    /// run itself calls it first). A suite that recorded nothing at all gets a
    /// FAIL (`no-checks`): printing nothing proves nothing. A suite whose every
    /// check skipped is left to the host, which holds each skip's reason against
    /// the configuration. A torture suite's verdict is derived here: SUCCESS with
    /// no failure and at least one pass.
    mutating func endSuite() {
        guard !ended else { return }
        ended = true
        if suitePasses == 0 && suiteFailures == 0 && suiteSkips == 0 {
            expect("no-checks", false, "the suite ended without a single check")
        }
        if torture && (suitePasses > 0 || suiteFailures > 0) {
            Console.print(suiteFailures == 0 ? "End of test: SUCCESS" : "End of test: FAILURE")
        }
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
                ctx.expect("unknown-suite", false) { $0.write("unknown suite '"); $0.write(name); $0.write("' (run=list shows them)") }
            }
        }
        for s in selected {
            if Monitor.interrupted {                 // Ctrl-C at the monitor: no further suite
                Console.line { $0.write("run: interrupted (Ctrl-C) before "); $0.write(s.name) }
                break
            }
            Console.line { $0.write("== suite "); $0.write(s.name); $0.write(": "); $0.write(s.summary) }
            ctx.begin(s.name, torture: s.torture)
            Panic.suiteInProgress = s.kind == .normal ? s.name : nil
            s.body(&ctx)
            Panic.suiteInProgress = nil
            if s.kind == .normal || s.torture { ctx.endSuite() }
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
