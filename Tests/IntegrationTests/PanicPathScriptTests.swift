import Foundation
import XCTest

/// Negative controls for scripts/check-panic-path.sh (E7): synthetic objdump
/// text with one bad pattern each must FAIL; the same text without it passes.
/// No QEMU, no kernel: the script reads the text given with --disassembly.
final class PanicPathScriptTests: XCTestCase {
    static let begin = "$e7Quartet5PanicO5beginys5NeverOSpyAA9TrapFrameVG_AC3WhyOtFZ"
    static let plain = "$e7Quartet5panicys5NeverOs12StaticStringVF"
    static let generic = "$e7Quartet5panicys5NeverOs12StaticStringV_yAA15FixedLineBufferVzXEtF"
    /// A closure-specialized detail entry (as the optimizer makes them).
    static let special = "$e7Quartet5panicys5NeverOs12StaticStringV_yAA15FixedLineBufferVzXEtF034$e7Quartet4HeapO4freeyySvSgFZyAA15fgH7VzXEfU_SvSgTf1nc_n"
    static let escaping = "$e7Quartet5panicys5NeverOs12StaticStringV_yAA15FixedLineBufferVzctF"

    /// Panic.begin (a lock after the claim is fine), the plain entry, an
    /// uncalled generic entry, a specialized entry, and a caller of each.
    static func good(beforeClaim: String = "", special specialBody: String = "", caller: String = "",
                     extra: String = "") -> String {
        """
        0000000000001000 <\(begin)>:
            1000:\tcall   2000 <cpu_cli>
        \(beforeClaim)    1005:\tlock cmpxchg %ecx,0x10(%rip)
            100a:\tcall   3000 <$e7Quartet8SpinLockV4lockyyF>
            100f:\tcall   5000 <swift_allocObject>
        0000000000001100 <\(plain)>:
            1100:\tcall   2000 <cpu_cli>
            1105:\tcall   1000 <\(begin)>
        0000000000001200 <\(generic)>:
            1200:\tcall   *%r12
            1203:\tcall   1000 <\(begin)>
        0000000000001300 <\(special)>:
            1300:\tcall   2000 <cpu_cli>
        \(specialBody)    1310:\tcall   1000 <\(begin)>
        0000000000001400 <$e7Quartet3FooO3baryyFZ>:
            1400:\tmov    $0x1,%edi
            1405:\tcall   1100 <\(plain)>
            140a:\tmov    $0x2,%edi
        \(caller)    1410:\tcall   1300 <\(special)>
            1415:\tret
        0000000000002000 <cpu_cli>:
            2000:\tcli
            2001:\tret
        0000000000003000 <$e7Quartet8SpinLockV4lockyyF>:
            3000:\tret
        0000000000004000 <$e7Quartet6HelperO4workyyFZ>:
            4000:\tcall   5000 <swift_allocObject>
            4005:\tret
        0000000000005000 <swift_allocObject>:
            5000:\tret
        0000000000006000 <swift_release>:
            6000:\tret
        0000000000007000 <swift_retain>:
            7000:\tret
        \(extra)
        """
    }

    private func run(_ text: String, env: [String: String] = [:]) throws -> (Int32, String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("panicpath-\(UUID().uuidString).txt")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try QEMU.runScript(["scripts/check-panic-path.sh", "--disassembly", file.path], environment: env)
        return (r.status, r.output)
    }

    private func assertFails(_ text: String, _ expected: String, env: [String: String] = [:],
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, out) = try run(text, env: env)
        XCTAssertEqual(status, 1, out, file: file, line: line)
        XCTAssertTrue(out.contains("FAIL"), out, file: file, line: line)
        XCTAssertTrue(out.contains(expected), "wanted '\(expected)' in: \(out)", file: file, line: line)
    }

    func testTheGoodShapePasses() throws {
        let (status, out) = try run(Self.good())
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("check-panic-path: OK: 5 panic call sites, 3 panic entries (2 called)"), out)
    }

    /// A specialized entry tail-jumps to a helper that allocates.
    func testAnAllocatingTailCallFails() throws {
        try assertFails(Self.good(special: "    1305:\tjmp    4000 <$e7Quartet6HelperO4workyyFZ>\n"),
                        "-> $e7Quartet6HelperO4workyyFZ -> swift_allocObject")
    }

    /// A call site boxes a closure context: allocate, retain, then the call.
    func testAllocRetainCallAtACallSiteFails() throws {
        try assertFails(Self.good(caller: "    140b:\tcall   5000 <swift_allocObject>\n    140c:\tmov    %rax,%rbx\n    140d:\tcall   7000 <swift_retain>\n"),
                        "calls swift_allocObject")
    }

    /// A panic entry whose detail closure is escaping.
    func testAnEscapingEntryFails() throws {
        try assertFails(Self.good(extra: "0000000000008000 <\(Self.escaping)>:\n    8000:\tcall   1000 <\(Self.begin)>\n"),
                        "takes an escaping detail closure")
    }

    /// The generic entry (it calls its closure indirectly) with a caller.
    func testACalledGenericEntryFails() throws {
        try assertFails(Self.good(caller: "    140e:\tcall   1200 <\(Self.generic)>\n"), "the generic panic(_:_:) entry")
    }

    /// The free path (a release) inside a specialized entry.
    func testAReleaseBeforeTheClaimFails() throws {
        try assertFails(Self.good(special: "    1305:\tcall   6000 <swift_release>\n"), "-> swift_release")
    }

    /// A spin lock in Panic.begin before the claim.
    func testASpinlockBeforeTheClaimFails() throws {
        try assertFails(Self.good(beforeClaim: "    1003:\tcall   3000 <$e7Quartet8SpinLockV4lockyyF>\n"),
                        "Panic.begin up to the claim -> $e7Quartet8SpinLockV4lockyyF")
    }

    /// An indirect call in a called entry cannot be followed.
    func testAnIndirectCallBeforeTheClaimFails() throws {
        try assertFails(Self.good(special: "    1305:\tcall   *%rax\n"), "indirect call before the panic claim")
    }

    /// Without swift-demangle the escaping check cannot run: refuse.
    func testMissingDemanglerFails() throws {
        try assertFails(Self.good(), "swift-demangle not found", env: ["DEMANGLE": "", "PATH": "/usr/bin:/bin"])
    }

    /// Without Panic.begin or the panic entries there is nothing to check: refuse.
    func testMissingEntriesFail() throws {
        try assertFails("0000000000001400 <$e7Quartet3FooO3baryyFZ>:\n    1400:\tret\n", "Panic.begin not found")
        let onlyBegin = "0000000000001000 <\(Self.begin)>:\n    1005:\tlock cmpxchg %ecx,0x10(%rip)\n"
        try assertFails(onlyBegin, "panic() entries found")
    }
}
