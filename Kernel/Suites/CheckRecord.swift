// The machine-readable half of a check (docs/testing.md, "Check records"). Every
// check prints its human line (`PASS: suite: message`) and, from the same call,
// one record the integration tests read instead of the wording:
//
//   CHECK suite=ipiq-wakeup id=lost inv=D5 value=0 bound==0 result=pass
//   CHECK suite=ipiq-flood id=run inv=- result=skip reason=needs-2-cpus
//   CHECK suite=litmus id=forbidden.IRIW inv=- value=0 bound==0 result=pass
//
// Keys never contain blanks; `value` and `bound` appear only on a comparison.
// Everything is formatted into a FixedLineBuffer: no allocation.

/// The comparison a measured check makes; printed as `bound=<op><limit>`.
struct CheckBound {
    enum Op { case equals, above, atLeast, below, atMost }
    let op: Op
    let limit: UInt64

    static func equals(_ v: UInt64) -> CheckBound { CheckBound(op: .equals, limit: v) }
    static func above(_ v: UInt64) -> CheckBound { CheckBound(op: .above, limit: v) }
    static func atLeast(_ v: UInt64) -> CheckBound { CheckBound(op: .atLeast, limit: v) }
    static func below(_ v: UInt64) -> CheckBound { CheckBound(op: .below, limit: v) }
    static func atMost(_ v: UInt64) -> CheckBound { CheckBound(op: .atMost, limit: v) }

    func holds(_ value: UInt64) -> Bool {
        switch op {
        case .equals: return value == limit
        case .above: return value > limit
        case .atLeast: return value >= limit
        case .below: return value < limit
        case .atMost: return value <= limit
        }
    }

    func write(_ l: inout FixedLineBuffer) {
        switch op {
        case .equals: l.write("=")
        case .above: l.write(">")
        case .atLeast: l.write(">=")
        case .below: l.write("<")
        case .atMost: l.write("<=")
        }
        l.dec(limit)
    }
}

/// Why a check did not run: a closed set, so that the host can hold every skip
/// against the configuration it booted (a needs-2-cpus skip at -smp 4 fails the test).
enum SkipReason {
    case needs2CPUs, needs3CPUs, needs4CPUs
    /// tick=0 was given and the check counts ticks or needs tick preemption.
    case needsTick
    /// The tick is on and the check needs tick=0 (the tick would hide or disturb it).
    case needsNoTick
    /// The effect cannot show under the development machine's nested KVM.
    case kvmWindow
    /// The state the check needs was used up by a suite that ran before it.
    case runOrder

    var key: StaticString {
        switch self {
        case .needs2CPUs: return "needs-2-cpus"
        case .needs3CPUs: return "needs-3-cpus"
        case .needs4CPUs: return "needs-4-cpus"
        case .needsTick: return "needs-tick"
        case .needsNoTick: return "needs-no-tick"
        case .kvmWindow: return "kvm-window"
        case .runOrder: return "run-order"
        }
    }

    /// needs-N-cpus for a check that needs `n` CPUs.
    static func needs(cpus n: Int) -> SkipReason {
        n <= 2 ? .needs2CPUs : n == 3 ? .needs3CPUs : .needs4CPUs
    }
}

enum CheckResult {
    case pass, fail, skip
    var key: StaticString {
        switch self {
        case .pass: return "pass"
        case .fail: return "fail"
        case .skip: return "skip"
        }
    }
    var human: StaticString {
        switch self {
        case .pass: return "PASS: "
        case .fail: return "FAIL: "
        case .skip: return "SKIP: "
        }
    }
}

enum CheckRecord {
    /// Prints the record line of one check.
    static func emit(suite: StaticString, id: StaticString, part: StaticString? = nil, inv: StaticString,
                     value: UInt64?, bound: CheckBound?,
                     result: CheckResult, reason: SkipReason? = nil) {
        Console.line { l in
            l.write("CHECK suite="); l.write(suite); l.write(" id="); l.write(id)
            if let part { l.write("."); l.write(part) }
            l.write(" inv="); l.write(inv)
            if let value { l.write(" value="); l.dec(value) }
            if let bound { l.write(" bound="); bound.write(&l) }
            l.write(" result="); l.write(result.key)
            if let reason { l.write(" reason="); l.write(reason.key) }
        }
    }
}
