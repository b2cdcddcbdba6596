// The kernel's check records (docs/testing.md, "Check records"): every check
// prints, beside its human PASS/FAIL/SKIP line, one line
//   CHECK suite=S id=I inv=V [value=N bound=OPN] result=pass|fail|skip [reason=R]
// Tests assert on these keys, not on the wording of the human lines, and every
// SKIP must have a reason the test allows for the configuration it booted.
import Foundation
import XCTest

struct CheckRecord: Equatable, CustomStringConvertible {
    var suite: String
    var id: String
    var inv: String
    var value: UInt64?
    /// "=0", ">0", ">=1000", "<=5" (operator and limit).
    var bound: String?
    var result: String
    var reason: String?

    var passed: Bool { result == "pass" }
    var failed: Bool { result == "fail" }
    var skipped: Bool { result == "skip" }

    /// Parses one "CHECK ..." line; nil when it is not one or is malformed.
    init?(_ line: String) {
        guard line.hasPrefix("CHECK ") else { return nil }
        var fields: [String: String] = [:]
        for token in line.dropFirst("CHECK ".count).split(separator: " ") {
            guard let eq = token.firstIndex(of: "=") else { return nil }
            let key = String(token[..<eq]), value = String(token[token.index(after: eq)...])
            guard !key.isEmpty, fields[key] == nil else { return nil }
            fields[key] = value
        }
        guard let suite = fields["suite"], let id = fields["id"], let inv = fields["inv"],
              let result = fields["result"], ["pass", "fail", "skip"].contains(result),
              !suite.isEmpty, !id.isEmpty, !inv.isEmpty else { return nil }
        self.suite = suite; self.id = id; self.inv = inv; self.result = result
        if let v = fields["value"] {
            guard let n = UInt64(v) else { return nil }
            value = n
        }
        bound = fields["bound"]
        reason = fields["reason"]
        guard (value == nil) == (bound == nil), (result == "skip") == (reason != nil) else { return nil }
        if let b = bound, CheckRecord.parseBound(b) == nil { return nil }
        let known: Set<String> = ["suite", "id", "inv", "value", "bound", "result", "reason"]
        guard Set(fields.keys).isSubset(of: known) else { return nil }
    }

    /// "op" and limit of a bound string.
    static func parseBound(_ b: String) -> (op: String, limit: UInt64)? {
        for op in [">=", "<=", "=", ">", "<"] where b.hasPrefix(op) {
            guard let n = UInt64(b.dropFirst(op.count)) else { return nil }
            return (op, n)
        }
        return nil
    }

    var description: String {
        "\(suite)/\(id) inv=\(inv)" + (value.map { " value=\($0)" } ?? "") + (bound.map { " bound=\($0)" } ?? "")
            + " result=\(result)" + (reason.map { " reason=\($0)" } ?? "")
    }
}

/// The skip reasons the kernel knows (Kernel/Suites/CheckRecord.swift).
enum SkipReasons {
    static let all: Set<String> = ["needs-2-cpus", "needs-3-cpus", "needs-4-cpus", "needs-tick", "needs-no-tick", "kvm-window",
                                   "run-order"]

    /// What a boot's configuration explains by itself: needs-N-cpus below N CPUs,
    /// needs-tick with tick=0, needs-no-tick without, kvm-window under KVM.
    static func allowed(for run: QEMURun) -> Set<String> {
        var s = Set<String>()
        for n in 2...4 where run.smp < n { s.insert("needs-\(n)-cpus") }
        s.insert(run.cmdline.split(separator: " ").contains("tick=0") ? "needs-tick" : "needs-no-tick")
        if run.accel == .kvm { s.insert("kvm-window") }
        return s
    }
}

extension QEMUResult {
    /// Every CHECK record, in order.
    var records: [CheckRecord] { lines.compactMap(CheckRecord.init) }
    /// Lines that start like a record but do not parse.
    var malformedRecords: [String] { lines.filter { $0.hasPrefix("CHECK ") && CheckRecord($0) == nil } }

    func records(suite: String) -> [CheckRecord] { records.filter { $0.suite == suite } }
    /// The record of `suite`'s check `id` (the first, if the suite repeated it).
    func record(suite: String, id: String) -> CheckRecord? { records.first { $0.suite == suite && $0.id == id } }

    /// Suites named in `run=list` that run=all runs: the list prints each name
    /// padded to 20 columns, then an 8-column tag ([fatal], [inter], [bench]) or
    /// 8 blanks for a normal suite, then the summary.
    var listedNormalSuites: [String] {
        lines.compactMap { l -> String? in
            let chars = Array(l)
            guard chars.count > 28 else { return nil }
            let column = String(chars[0..<20]), tag = String(chars[20..<28])
            let name = column.prefix { $0 != " " }
            guard !name.isEmpty, column.dropFirst(name.count).allSatisfy({ $0 == " " }),
                  name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }),
                  tag == String(repeating: " ", count: 8), chars[28] != " " else { return nil }
            return String(name)
        }
    }

    /// What is wrong with this run's records, against the skip reasons `allowed`
    /// (empty when nothing is): malformed records, records that disagree with the
    /// human lines or the SUMMARY, failures, and every skip whose reason is not allowed.
    func recordProblems(allowedSkips allowed: Set<String>) -> [String] {
        var problems: [String] = []
        if !malformedRecords.isEmpty { problems.append("malformed CHECK lines: \(malformedRecords)") }
        let recs = records
        let human = passes.count + fails.count + skips.count
        if recs.count != human {
            problems.append("\(recs.count) CHECK records for \(human) PASS/FAIL/SKIP lines")
        }
        if let s = summary, s.tests != recs.count {
            problems.append("SUMMARY counts \(s.tests) tests, the records \(recs.count)")
        }
        for f in recs where f.failed { problems.append("failed check: \(f)") }
        for k in recs where k.skipped && !allowed.contains(k.reason ?? "") {
            problems.append("unexpected SKIP: \(k) (allowed here: \(allowed.sorted().joined(separator: ", ")))")
        }
        return problems
    }
}

extension QEMUResult {
    /// The suites of `listed` this run proves nothing about: no passing check
    /// (a suite that printed nothing, or only skipped), unless `allowAllSkipped`
    /// and every one of its records is a skip this boot's configuration allows.
    /// A suite that only skipped with `needs-no-tick` in a boot with the tick on
    /// is left to the `tick=0` run=all boot, which must prove it (BootTests).
    func unprovenSuites(_ listed: [String], allowAllSkipped: Bool) -> [String] {
        let allowed = SkipReasons.allowed(for: run)
        return listed.compactMap { s in
            let recs = records(suite: s)
            if recs.contains(where: \.passed) { return nil }
            if allowAllSkipped && !recs.isEmpty && recs.allSatisfy({ $0.skipped && allowed.contains($0.reason ?? "") }) { return nil }
            if allowed.contains("needs-no-tick") && !recs.isEmpty && recs.allSatisfy({ $0.reason == "needs-no-tick" }) { return nil }
            return "suite \(s) (in run=list) has no passing check in this run=all boot: \(recs)"
        }
    }
}

extension QEMUTestCase {
    /// The record of `suite`/`id` exists and passed; optional bounds on its value.
    @discardableResult
    func assertPass(_ r: QEMUResult, _ suite: String, _ id: String, atLeast: UInt64? = nil, atMost: UInt64? = nil,
                    file: StaticString = #filePath, line: UInt = #line) -> CheckRecord? {
        assertRecord(r, suite, id, result: "pass", atLeast: atLeast, atMost: atMost, file: file, line: line)
    }

    /// The record of `suite`/`id` exists and failed (a negative control).
    @discardableResult
    func assertFail(_ r: QEMUResult, _ suite: String, _ id: String, atLeast: UInt64? = nil,
                    file: StaticString = #filePath, line: UInt = #line) -> CheckRecord? {
        assertRecord(r, suite, id, result: "fail", atLeast: atLeast, file: file, line: line)
    }

    @discardableResult
    func assertRecord(_ r: QEMUResult, _ suite: String, _ id: String, result: String, reason: String? = nil,
                      atLeast: UInt64? = nil, atMost: UInt64? = nil,
                      file: StaticString = #filePath, line: UInt = #line) -> CheckRecord? {
        guard let rec = r.record(suite: suite, id: id) else {
            XCTFail("no CHECK record \(suite)/\(id); the suite's records: \(r.records(suite: suite).map(\.id))",
                    file: file, line: line)
            return nil
        }
        XCTAssertEqual(rec.result, result, "\(rec)", file: file, line: line)
        if let reason { XCTAssertEqual(rec.reason, reason, "\(rec)", file: file, line: line) }
        if atLeast != nil || atMost != nil {
            guard let v = rec.value else { XCTFail("\(rec) has no value", file: file, line: line); return rec }
            if let a = atLeast { XCTAssertGreaterThanOrEqual(v, a, "\(rec)", file: file, line: line) }
            if let b = atMost { XCTAssertLessThanOrEqual(v, b, "\(rec)", file: file, line: line) }
        }
        return rec
    }

    /// A torture suite's verdict, which the runner derives from its records:
    /// `End of test: SUCCESS` (or FAILURE) right after the suite's records.
    func assertVerdict(_ r: QEMUResult, _ suite: String, success: Bool = true,
                       file: StaticString = #filePath, line: UInt = #line) {
        guard let start = r.lines.firstIndex(where: { $0.hasPrefix("== suite \(suite): ") }) else {
            XCTFail("suite \(suite) did not start", file: file, line: line); return
        }
        let rest = r.lines[(start + 1)...]
        let end = rest.firstIndex { $0.hasPrefix("== suite ") || $0.hasPrefix("SUMMARY: ") } ?? r.lines.endIndex
        let verdicts = r.lines[(start + 1)..<end].filter { $0.hasPrefix("End of test: ") }
        XCTAssertEqual(verdicts, [success ? "End of test: SUCCESS" : "End of test: FAILURE"],
                       "\(suite)'s verdict", file: file, line: line)
    }

    /// Every normal suite `run=list` names ran in `r` (a run=all boot) and has a
    /// record; at least one passed, unless every record of it is a skip this
    /// configuration allows and `allowAllSkipped` or the suite is in `skipping`.
    func assertEveryListedSuiteRan(_ r: QEMUResult, listed: [String], allowAllSkipped: Bool, skipping: Set<String> = [],
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThan(listed.count, 10, "run=list named only \(listed)", file: file, line: line)
        for s in skipping where !listed.contains(s) { XCTFail("\(s) is not in run=list", file: file, line: line) }
        for problem in r.unprovenSuites(listed.filter { !skipping.contains($0) }, allowAllSkipped: allowAllSkipped)
            + r.unprovenSuites(listed.filter { skipping.contains($0) }, allowAllSkipped: true) {
            XCTFail(problem, file: file, line: line)
        }
    }
}
