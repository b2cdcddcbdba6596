import XCTest

/// scripts/check-critical-exit.sh (run by every build): in the image's
/// critical_exit the store of 0 to critnest precedes the owepreempt load (C3,
/// docs/critical-sections.md). It passes on the kernel under test and fails on
/// a listing with the two swapped.
final class CriticalExitCheckTests: XCTestCase {
    private func check(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try QEMU.runScript(["scripts/check-critical-exit.sh"] + arguments)
    }

    /// The shape of the real function (llvm-objdump), with the owepreempt load
    /// after or before the store that opens the window.
    private func listing(loadFirst: Bool) -> String {
        let store = "movq\t$0x0, 0x78(%rbx)", load = "movb\t0x80(%rbx), %r15b"
        let (first, second) = loadFirst ? (load, store) : (store, load)
        return """
        0000000000149051 <$e7Quartet15CriticalSectionO4exit030_A13B874EFC5EA4CB651D50C6DDE58J0LL_010inSpinlockC0SbAA6ThreadC_SbtFZ>:
          14906c:      \tmovq\t0x78(%rdi), %rax
          149070:      \tcmpq\t$0x1, %rax
          149079:      \t\(first)
          149081:      \tcmpq\t$0x0, 0x88(%rbx)
          1490a2:      \t\(second)
          1490a9:      \ttestb\t$0x1, %r15b
          1490af:      \tmovq\t$0x1, 0x78(%rbx)

        """
    }

    private func run(listing text: String) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quartet-critexit-\(getpid()).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        try text.write(to: file, atomically: true, encoding: .utf8)
        return try check(["--listing", file.path])
    }

    func testTheKernelUnderTestStoresCritnestBeforeItLoadsOwepreempt() throws {
        let r = try check([QEMU.kernelPath])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(", then owepreempt ("), r.output)
    }

    func testTheCheckPassesInOrderAndFailsSwapped() throws {
        let good = try run(listing: listing(loadFirst: false))
        XCTAssertEqual(good.status, 0, good.output)
        let bad = try run(listing: listing(loadFirst: true))
        XCTAssertNotEqual(bad.status, 0, bad.output)
        XCTAssertTrue(bad.output.contains("C3: critical_exit loads owepreempt (0x80(%rbx) at 0x149079) before it stores critnest = 0"), bad.output)
    }
}
