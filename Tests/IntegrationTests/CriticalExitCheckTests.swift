import XCTest

/// scripts/check-critical-exit.sh (run by every build): in every copy of
/// critical_exit in the image (the outlined function and the ones inlined into
/// other functions) the store of 0 to critnest comes before every read of
/// owepreempt on every path (C3, docs/critical-sections.md). It passes on the
/// kernel under test, and fails on synthetic listings for each way an earlier
/// version of the check could be fooled.
final class CriticalExitCheckTests: XCTestCase {
    private func check(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try QEMU.runScript(["scripts/check-critical-exit.sh"] + arguments)
    }

    static let outlinedName = "$e7Quartet15CriticalSectionO4exit030_A13B874EFC5EA4CB651D50C6DDE58J0LL_010inSpinlockC0SbAA6ThreadC_SbtFZ"

    /// One function of an llvm-objdump listing: `body` is (address, instruction) pairs.
    private func function(_ name: String, at base: Int, _ body: [(Int, String)]) -> String {
        "\n" + String(format: "%016x", base) + " <\(name)>:\n"
            + body.map { String(format: "  %x:      \t", $0.0) + $0.1 + "\n" }.joined()
    }

    /// The shape of the real outlined function, with the owepreempt read after
    /// (or before) the store that opens the window.
    private func outlined(loadFirst: Bool = false, load: String = "movb\t0x80(%rbx), %r15b") -> String {
        let store = "movq\t$0x0, 0x78(%rbx)"
        let (first, second) = loadFirst ? (load, store) : (store, load)
        return function(Self.outlinedName, at: 0x149051, [
            (0x14906c, "movq\t0x78(%rdi), %rax"), (0x149070, "movq\t%rdi, %rbx"), (0x149073, "cmpq\t$0x1, %rax"),
            (0x149079, first), (0x149081, "cmpq\t$0x0, 0x88(%rbx)"), (0x1490a2, second),
            (0x1490a9, "testb\t$0x1, %r15b"), (0x1490af, "movq\t$0x1, 0x78(%rbx)"), (0x1490b7, "retq"),
        ])
    }

    private func run(listing text: String) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quartet-critexit-\(getpid()).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        try text.write(to: file, atomically: true, encoding: .utf8)
        return try check(["--listing", file.path])
    }

    private func assertFails(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run(listing: text)
        XCTAssertNotEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertTrue(r.output.contains(message), r.output, file: file, line: line)
    }

    func testTheKernelUnderTestStoresCritnestBeforeItLoadsOwepreempt() throws {
        let r = try check([QEMU.kernelPath])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(", then owepreempt ("), r.output)
        XCTAssertTrue(r.output.contains(" inlined copies checked too"), r.output)
    }

    func testTheCheckPassesInOrderAndFailsSwapped() throws {
        let good = try run(listing: outlined())
        XCTAssertEqual(good.status, 0, good.output)
        try assertFails(outlined(loadFirst: true), "C3: \(Self.outlinedName) loads owepreempt (0x80(%reg) at 0x149079)")
    }

    /// An earlier check matched only the store's base register: a read hoisted
    /// through %rdi (the argument, before the copy to %rbx) went unseen.
    func testAReadThroughAnotherBaseRegisterIsSeen() throws {
        try assertFails(outlined(loadFirst: true, load: "movb\t0x80(%rdi), %r15b"), "C3: \(Self.outlinedName) loads owepreempt")
    }

    /// An earlier check counted stores as reads: preemptOwed's inlined
    /// `owepreempt = false` after the window satisfied it with no read at all.
    func testAStoreToOwepreemptIsNotARead() throws {
        try assertFails(outlined(load: "movb\t$0x0, 0x80(%rbx)"), "no read of owepreempt")
        // ... and with the real read hoisted before the store (through %rdi), the later store does not hide it.
        let text = function(Self.outlinedName, at: 0x149051, [
            (0x14906c, "movb\t0x80(%rdi), %r15b"), (0x149070, "movq\t%rdi, %rbx"), (0x149073, "movq\t$0x0, 0x78(%rbx)"),
            (0x14907b, "movb\t$0x0, 0x80(%rbx)"), (0x149082, "retq"),
        ])
        try assertFails(text, "C3: \(Self.outlinedName) loads owepreempt (0x80(%reg) at 0x14906c)")
    }

    /// Address order is not execution order: a read placed after the store but
    /// reached by a jump that skips it.
    func testAReadReachedAroundTheStoreIsSeen() throws {
        let text = function(Self.outlinedName, at: 0x149051, [
            (0x14906c, "cmpq\t$0x1, 0x78(%rdi)"), (0x149070, "jne\t0x149083 <x+0x32>"),
            (0x149072, "movq\t$0x0, 0x78(%rdi)"), (0x14907a, "movb\t0x80(%rdi), %al"), (0x149081, "retq"),
            (0x149082, "nop"), (0x149083, "testb\t$0x1, 0x80(%rdi)"), (0x14908a, "retq"),
        ])
        try assertFails(text, "C3: \(Self.outlinedName) loads owepreempt (0x80(%reg) at 0x149083)")
        // The same layout with the jump going to the store passes.
        let fine = text.replacingOccurrences(of: "jne\t0x149083", with: "jne\t0x149072")
        XCTAssertEqual(try run(listing: fine).status, 0)
    }

    /// An earlier check read only the outlined function: a copy inlined
    /// (through SpinLock.unlock) into another function in the wrong order.
    func testAnInlinedCopyIsCheckedToo() throws {
        let reclaim = "$e7Quartet12KernelStacksO7reclaimyyFZ"
        let bad = function(reclaim, at: 0x132300, [
            (0x132380, "movb\t0x80(%r13), %al"), (0x132387, "movq\t$0x0, 0x78(%r13)"), (0x13238f, "testb\t$0x1, %al"),
            (0x132391, "retq"),
        ])
        try assertFails(outlined() + bad, "C3: \(reclaim) loads owepreempt (0x80(%reg) at 0x132380)")
        let good = function(reclaim, at: 0x132300, [
            (0x132387, "movq\t$0x0, 0x78(%r13)"), (0x132390, "movb\t0x80(%r13), %al"), (0x132397, "retq"),
        ])
        let r = try run(listing: outlined() + good)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("1 inlined copies checked too: \(reclaim)"), r.output)
        // A copy that stores critnest from a zeroed register is recognised too.
        let zeroReg = function(reclaim, at: 0x132300, [
            (0x132380, "xorl\t%ecx, %ecx"), (0x132382, "movb\t0x80(%r13), %al"), (0x132389, "movq\t%rcx, 0x78(%r13)"),
            (0x13238d, "retq"),
        ])
        try assertFails(outlined() + zeroReg, "C3: \(reclaim) loads owepreempt (0x80(%reg) at 0x132382)")
    }

    /// An earlier check required exactly one store of 0 in the outlined copy,
    /// so inlining preemptOwed (its own `critnest = 0`) would break the build.
    func testTwoStoresInTheRightOrderPass() throws {
        let text = function(Self.outlinedName, at: 0x149051, [
            (0x14906c, "movq\t$0x0, 0x78(%rbx)"), (0x149074, "movb\t0x80(%rbx), %al"), (0x14907b, "movq\t$0x1, 0x78(%rbx)"),
            (0x149083, "movb\t$0x0, 0x80(%rbx)"), (0x14908a, "movq\t$0x0, 0x78(%rbx)"), (0x149092, "retq"),
        ])
        let r = try run(listing: text)
        XCTAssertEqual(r.status, 0, r.output)
    }
}
