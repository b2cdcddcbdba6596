import Foundation
import XCTest

/// E6, in the sources: on every CPU the per-CPU header (GS) is installed before
/// the IDT is loaded, because from the IDT on an NMI can be taken and its
/// handler finds its CPU through GS. No QEMU run can send an NMI into that
/// window reliably, so the order itself is pinned here.
final class BootOrderTests: XCTestCase {
    static let kernel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Kernel")

    private func source(_ path: String) throws -> String {
        try String(contentsOf: Self.kernel.appendingPathComponent(path), encoding: .utf8)
    }

    /// The offset of `needle` in `text` after `start`, or nil.
    private func offset(of needle: String, in text: String, after start: String.Index) -> String.Index? {
        text.range(of: needle, range: start..<text.endIndex)?.lowerBound
    }

    private func assertOrder(_ path: String, from anchor: String, _ first: String, before second: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let text = try source(path)
        guard let a = text.range(of: anchor)?.upperBound else { return XCTFail("no '\(anchor)' in \(path)", file: file, line: line) }
        guard let f = offset(of: first, in: text, after: a) else { return XCTFail("no '\(first)' in \(path)", file: file, line: line) }
        guard let s = offset(of: second, in: text, after: a) else { return XCTFail("no '\(second)' in \(path)", file: file, line: line) }
        XCTAssertLessThan(f, s, "\(path): '\(first)' must come before '\(second)' (E6)", file: file, line: line)
    }

    func testTheBootCPUInstallsGSBeforeItsIDT() throws {
        try assertOrder("Kern/Boot/Main.swift", from: "static func entry(", "PerCPU.installHeader(", before: "BootCPU.installIDT()")
    }

    func testEachAPInstallsGSBeforeItsIDT() throws {
        try assertOrder("Kern/SMP/SMP.swift", from: "static func apMain(", "PerCPU.installHeader(", before: "IDT.loadOnThisCPU()")
    }

    /// E8's store-buffering pairs, which x86-TSO only keeps with a locked
    /// instruction or a fence: a CPU coming online publishes its online bit,
    /// then reads `stopper`; the stopper claims `stopper`, then reads the online
    /// mask. A plain store/load (.releasing/.acquiring) there would let both
    /// miss each other, and no QEMU test can make that window appear, so the
    /// orderings are pinned here.
    func testTheOnlineAndStopperPairsStaySequentiallyConsistent() throws {
        let smp = try source("Kern/SMP/SMP.swift")
        XCTAssertTrue(smp.contains("onlineMask.bitwiseOr(CPUMask.bit(cpu.id), ordering: .sequentiallyConsistent)"),
                      "markOnline: the online bit is published sequentially consistent")
        let stop = try source("Kern/SMP/StopCPUs.swift")
        XCTAssertTrue(stop.contains("stopper.compareExchange(expected: -1, desired: Int32(me), ordering: .sequentiallyConsistent)"),
                      "stopOthers: the claim is sequentially consistent")
        XCTAssertTrue(stop.contains("var others = CPUMask(bits: SMP.onlineMask.load(ordering: .sequentiallyConsistent))"),
                      "stopOthers: the snapshot of the online mask is sequentially consistent")
        XCTAssertTrue(stop.contains("let s = stopper.load(ordering: .sequentiallyConsistent)"),
                      "stopIfStopping: the read of the stopper is sequentially consistent")
    }
}
