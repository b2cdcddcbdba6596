import Foundation
import XCTest
@testable import QuartetCore

// ACPI discovery over QEMU's real tables (captured by Fixtures/acpi/capture.py from
// SeaBIOS under QEMU 7.2) and over malformed variants made by mutating them.

// MARK: - Fake physical memory

/// Physical memory made of separate regions; anything outside a region is unreadable,
/// so a table that claims more bytes than it has hits a hole, as on a real machine
/// where a bad length runs into unmapped space.
private final class ACPIFakeMemory: PhysicalMemoryReader {
    private var regions: [(base: UInt64, bytes: UnsafeMutableRawBufferPointer)] = []
    var reads = 0

    deinit { for r in regions { r.bytes.deallocate() } }

    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        reads += 1
        for r in regions where address >= r.base {
            let offset = address - r.base
            if offset <= UInt64(r.bytes.count), UInt64(count) <= UInt64(r.bytes.count) - offset {
                return UnsafeRawBufferPointer(rebasing: r.bytes[Int(offset)..<Int(offset) + count])
            }
        }
        return nil
    }

    /// Adds (or replaces, when `base` matches) a region holding `contents`.
    func map(_ base: UInt64, _ contents: [UInt8]) {
        unmap(base)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: contents.count, alignment: 16)
        buffer.copyBytes(from: contents)
        regions.append((base, buffer))
    }

    func map(_ base: UInt64, zeros count: Int) { map(base, [UInt8](repeating: 0, count: count)) }

    func unmap(_ base: UInt64) {
        if let i = regions.firstIndex(where: { $0.base == base }) {
            regions[i].bytes.deallocate()
            regions.remove(at: i)
        }
    }

    func read(_ address: UInt64, _ count: Int) -> [UInt8] {
        guard let b = bytes(at: address, count: count) else { XCTFail("unreadable \(address)"); return [] }
        return [UInt8](b)
    }

    func write(_ address: UInt64, _ values: [UInt8]) {
        for r in regions where address >= r.base && address - r.base + UInt64(values.count) <= UInt64(r.bytes.count) {
            for (i, v) in values.enumerated() { r.bytes[Int(address - r.base) + i] = v }
            return
        }
        XCTFail("write outside memory at \(address)")
    }

    func write32(_ address: UInt64, _ value: UInt32) { write(address, le(value)) }

    /// Re-balances the checksum byte of the table at `address` after a mutation, so a
    /// test exercises the defect it means to and not just the checksum.
    func fixTableChecksum(_ address: UInt64, checksumOffset: Int = 9) {
        let length = Int(le32(read(address + 4, 4)))
        fixChecksum(address, length: length, checksumOffset: checksumOffset)
    }

    func fixChecksum(_ address: UInt64, length: Int, checksumOffset: Int) {
        write(address + UInt64(checksumOffset), [0])
        let sum = read(address, length).reduce(UInt8(0), &+)
        write(address + UInt64(checksumOffset), [0 &- sum])
    }
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) }
}

private func le32(_ b: [UInt8]) -> UInt32 {
    b.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << ($1.offset * 8) }
}

private func text(_ s: ACPISignature) -> String { String(decoding: (0..<4).map(s.byte), as: UTF8.self) }
private func text(_ s: ACPIOEMID) -> String { String(decoding: (0..<6).map(s.byte), as: UTF8.self) }

/// Builds a table: 36-byte header with `signature`, then `body`, checksum fixed.
private func makeTable(_ signature: String, body: [UInt8], revision: UInt8 = 1) -> [UInt8] {
    var t = Array(signature.utf8) + le(UInt32(36 + body.count)) + [revision, 0]
    t += Array("BOCHS ".utf8) + Array("BXPCTEST".utf8) + le(UInt32(1)) + Array("BXPC".utf8) + le(UInt32(1))
    t += body
    t[9] = 0 &- t.reduce(UInt8(0), &+)
    return t
}

private func madtEntry(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] { [type, UInt8(2 + payload.count)] + payload }
private func lapicEntry(uid: UInt8, apic: UInt8, flags: UInt32 = 1) -> [UInt8] { madtEntry(0, [uid, apic] + le(flags)) }
private func madtBody(_ entries: [[UInt8]], lapic: UInt32 = 0xFEE0_0000, flags: UInt32 = 1) -> [UInt8] {
    le(lapic) + le(flags) + entries.flatMap { $0 }
}

// MARK: - Fixtures

private struct ACPIFixtureIndex: Decodable {
    struct Table: Decodable { let signature: String; let address: UInt64; let file: String }
    let machine: String
    let smp: Int
    let maxcpus: Int
    let ebdaSegment: UInt16
    let rsdpAddress: UInt64
    let rsdpRevision: UInt8
    let rsdtAddress: UInt64
    let xsdtAddress: UInt64
    let tables: [Table]
}

private struct ACPIFixture {
    let name: String
    let index: ACPIFixtureIndex
    let memory = ACPIFakeMemory()

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/acpi")
    static let all = ["pc-smp1", "pc-smp4", "pc-smp8", "q35-smp4", "pc-smp2-max4"]

    var ebdaBase: UInt64 { UInt64(index.ebdaSegment) << 4 }
    func address(of signature: String) -> UInt64 { index.tables.first { $0.signature == signature }!.address }

    /// Lays the captured bytes out at their physical addresses: the BIOS data area
    /// word at 0x40E, an empty EBDA, the BIOS area holding the RSDP, and each table.
    init(_ name: String) throws {
        self.name = name
        let dir = Self.directory.appendingPathComponent(name)
        index = try JSONDecoder().decode(ACPIFixtureIndex.self,
                                         from: Data(contentsOf: dir.appendingPathComponent("index.json")))
        memory.map(0x400, zeros: 0x100)
        memory.write(0x40E, le(index.ebdaSegment))
        memory.map(ebdaBase, zeros: 1024)
        memory.map(0xE0000, zeros: 0x20000)
        memory.write(index.rsdpAddress, [UInt8](try Data(contentsOf: dir.appendingPathComponent("RSDP.bin"))))
        for t in index.tables {
            memory.map(t.address, [UInt8](try Data(contentsOf: dir.appendingPathComponent(t.file))))
        }
    }
}

// MARK: - Tests

final class ACPITests: XCTestCase {

    private func discover(_ f: ACPIFixture) -> ACPIDiscovery { ACPI.discover(f.memory) }

    private func assertFailure(_ d: ACPIDiscovery, _ kind: ACPIProblemKind,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(d.failure?.kind, kind, "failure", file: file, line: line)
        XCTAssertNil(d.madt, file: file, line: line)
    }

    // MARK: Valid tables from QEMU

    func testFixturesAreCompactAndComplete() throws {
        var total = 0
        for name in ACPIFixture.all {
            let f = try ACPIFixture(name)
            XCTAssertEqual(f.index.tables.first?.signature, "RSDT")
            XCTAssertTrue(f.index.tables.contains { $0.signature == "APIC" })
            for t in f.index.tables {
                total += try Data(contentsOf: ACPIFixture.directory.appendingPathComponent("\(name)/\(t.file)")).count
            }
        }
        XCTAssertLessThan(total, 200_000)
    }

    func testQEMUTablesDiscoverCleanly() throws {
        for name in ACPIFixture.all {
            let f = try ACPIFixture(name)
            let d = discover(f)
            XCTAssertNil(d.failure, name)
            XCTAssertTrue(d.problems.isEmpty, "\(name): \(d.problems.list.map { $0.kind })")
            XCTAssertEqual(d.rsdpAddress, f.index.rsdpAddress, name)
            XCTAssertEqual(d.rsdpRevision, 0, name)             // SeaBIOS: ACPI 1.0 RSDP
            XCTAssertEqual(d.oemID.map(text), "BOCHS ", name)
            XCTAssertEqual(d.rootKind, .rsdt, name)               // no XSDT from SeaBIOS
            XCTAssertEqual(d.root?.address, f.index.rsdtAddress, name)
            XCTAssertEqual(d.root?.entryCount, f.index.tables.count - 1, name)
            XCTAssertEqual(d.madtAddress, f.address(of: "APIC"), name)
        }
    }

    func testQEMUMADTContents() throws {
        for name in ACPIFixture.all {
            let f = try ACPIFixture(name)
            guard let madt = discover(f).madt else { XCTFail(name); continue }
            XCTAssertTrue(madt.walkCompleted, name)
            XCTAssertEqual(madt.localAPICAddress, 0xFEE0_0000, name)
            XCTAssertNil(madt.localAPICAddressOverride, name)
            XCTAssertTrue(madt.hasLegacyPICs, name)

            XCTAssertEqual(madt.enabledProcessorCount, f.index.smp, name)
            XCTAssertEqual(madt.processors.count, f.index.maxcpus, name)
            XCTAssertEqual(madt.processors.map { $0.apicID }, (0..<UInt32(f.index.maxcpus)).map { $0 }, name)
            XCTAssertEqual(madt.processors.map { $0.processorUID }, (0..<UInt32(f.index.maxcpus)).map { $0 }, name)
            XCTAssertEqual(madt.processors.map { $0.isEnabled }, (0..<f.index.maxcpus).map { $0 < f.index.smp }, name)
            XCTAssertFalse(madt.processors.contains { $0.isX2APIC }, name)

            XCTAssertEqual(madt.ioAPICs.count, 1, name)
            XCTAssertEqual(madt.ioAPICs.first?.id, 0, name)
            XCTAssertEqual(madt.ioAPICs.first?.address, 0xFEC0_0000, name)
            XCTAssertEqual(madt.ioAPICs.first?.gsiBase, 0, name)

            // IRQ0 (PIT) → GSI2, bus defaults; the PCI IRQs 5, 9, 10, 11 level/active high.
            XCTAssertEqual(madt.overrides.map { $0.source }, [0, 5, 9, 10, 11], name)
            XCTAssertEqual(madt.isaRoute(irq: 0), MADTISARoute(gsi: 2, activeLow: false, levelTriggered: false), name)
            XCTAssertEqual(madt.isaRoute(irq: 9), MADTISARoute(gsi: 9, activeLow: false, levelTriggered: true), name)
            XCTAssertEqual(madt.overrides[2].polarity, .activeHigh)
            XCTAssertEqual(madt.overrides[2].triggerMode, .level)
            XCTAssertEqual(madt.isaRoute(irq: 1), MADTISARoute(gsi: 1, activeLow: false, levelTriggered: false), name)

            XCTAssertEqual(madt.nmis.count, 1, name)
            let nmi = madt.nmis[0]
            XCTAssertTrue(nmi.appliesToAllProcessors, name)
            XCTAssertTrue(nmi.applies(toProcessorUID: 3), name)
            XCTAssertEqual(nmi.lint, 1, name)
            XCTAssertEqual(nmi.flags, 0, name)
            XCTAssertEqual(nmi.polarity, .conformsToBus, name)
        }
    }

    func testHotPluggableSlotsAreDisabledEntries() throws {
        let madt = try XCTUnwrap(discover(try ACPIFixture("pc-smp2-max4")).madt)
        XCTAssertEqual(madt.processors.count, 4)
        XCTAssertEqual(madt.processors.filter { !$0.isEnabled }.map { $0.apicID }, [2, 3])
        XCTAssertFalse(madt.processors[3].isOnlineCapable)
    }

    func testWalkingAllTablesOfQ35() throws {
        let f = try ACPIFixture("q35-smp4")
        var problems = ACPIProblemList()
        let rsdp = try XCTUnwrap(ACPI.findRSDP(f.memory, problems: &problems))
        let root = try ACPI.rootTable(for: rsdp, reader: f.memory, problems: &problems)
        var seen: [String] = []
        ACPI.forEachTable(in: root, reader: f.memory, problems: &problems) { seen.append(text($0.signature)); return true }
        XCTAssertEqual(seen, ["FACP", "APIC", "HPET", "MCFG", "WAET"])
        let mcfg = ACPI.findTable(.mcfg, in: root, reader: f.memory, problems: &problems)
        XCTAssertEqual(mcfg?.address, f.address(of: "MCFG"))
        XCTAssertEqual(mcfg.map { text($0.oemID) }, "BOCHS ")
        XCTAssertTrue(problems.isEmpty)

        var firstTwo: [String] = []
        ACPI.forEachTable(in: root, reader: f.memory, problems: &problems) {
            firstTwo.append(text($0.signature)); return firstTwo.count < 2
        }
        XCTAssertEqual(firstTwo, ["FACP", "APIC"])
    }

    func testRSDPInEBDAIsFoundFirst() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdp = f.memory.read(f.index.rsdpAddress, 20)
        f.memory.write(f.index.rsdpAddress, [UInt8](repeating: 0, count: 20))
        f.memory.write(f.ebdaBase + 0x30, rsdp)
        let d = discover(f)
        XCTAssertEqual(d.rsdpAddress, f.ebdaBase + 0x30)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
    }

    func testEBDAPointerOutsideLowMemoryIsIgnored() throws {
        let f = try ACPIFixture("pc-smp4")
        f.memory.write(0x40E, le(UInt16(0xF000)))     // would be the BIOS ROM, not an EBDA
        XCTAssertNil(ACPI.ebdaAddress(f.memory))
        XCTAssertEqual(discover(f).rsdpAddress, f.index.rsdpAddress)
        f.memory.unmap(0x400)                          // no BDA at all
        XCTAssertEqual(discover(f).rsdpAddress, f.index.rsdpAddress)
    }

    func testUnalignedSignatureIsNotAnRSDP() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdp = f.memory.read(f.index.rsdpAddress, 20)
        f.memory.write(f.index.rsdpAddress, [UInt8](repeating: 0, count: 20))
        f.memory.write(0xE0008, rsdp)
        assertFailure(discover(f), .rsdpNotFound)
    }

    /// Turns the fixture's RSDP into a revision 2 RSDP naming an XSDT built from the
    /// RSDT's entries, placed at `xsdtAddress`.
    private func addXSDT(_ f: ACPIFixture, at xsdtAddress: UInt64 = 0x7FF0000, entries: [UInt64]? = nil) {
        let rsdt = f.memory.read(f.index.rsdtAddress, Int(le32(f.memory.read(f.index.rsdtAddress + 4, 4))))
        let rsdtEntries = stride(from: 36, to: rsdt.count, by: 4).map { UInt64(le32(Array(rsdt[$0..<$0 + 4]))) }
        f.memory.map(xsdtAddress, makeTable("XSDT", body: (entries ?? rsdtEntries).flatMap { le($0) }))
        var rsdp = f.memory.read(f.index.rsdpAddress, 20)
        rsdp[15] = 2
        rsdp += le(UInt32(36)) + le(xsdtAddress) + [0, 0, 0, 0]
        f.memory.write(f.index.rsdpAddress, rsdp)
        f.memory.fixChecksum(f.index.rsdpAddress, length: 20, checksumOffset: 8)
        f.memory.fixChecksum(f.index.rsdpAddress, length: 36, checksumOffset: 32)
    }

    func testXSDTIsPreferredOnRevision2() throws {
        let f = try ACPIFixture("q35-smp4")
        addXSDT(f)
        let d = discover(f)
        XCTAssertNil(d.failure)
        XCTAssertTrue(d.problems.isEmpty)
        XCTAssertEqual(d.rsdpRevision, 2)
        XCTAssertEqual(d.rsdp?.length, 36)
        XCTAssertEqual(d.rootKind, .xsdt)
        XCTAssertEqual(d.root?.address, 0x7FF0000)
        XCTAssertEqual(d.root?.entryCount, 5)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
    }

    func testXSDTWithBadChecksumFallsBackToRSDT() throws {
        let f = try ACPIFixture("pc-smp4")
        addXSDT(f)
        f.memory.write(0x7FF0000 + 40, [0xAA])
        let d = discover(f)
        XCTAssertNil(d.failure)
        XCTAssertEqual(d.rootKind, .rsdt)
        XCTAssertEqual(d.problems.list.map { $0.kind }, [.tableBadChecksum, .xsdtRejected])
        XCTAssertEqual(d.problems.list.first?.at, 0x7FF0000)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
    }

    func testXSDTLengthNotMultipleOf8FallsBack() throws {
        let f = try ACPIFixture("pc-smp4")
        addXSDT(f)
        f.memory.map(0x7FF0000, makeTable("XSDT", body: le(f.address(of: "APIC")) + [0, 0, 0, 0]))
        let d = discover(f)
        XCTAssertEqual(d.rootKind, .rsdt)
        XCTAssertEqual(d.problems.first(.rootTableBadLength)?.value, 36 + 12)
        XCTAssertTrue(d.problems.contains(.xsdtRejected))
    }

    func testXSDTPointerThatWrapsAroundIsUnreadable() throws {
        let f = try ACPIFixture("pc-smp4")
        addXSDT(f, at: 0xFFFF_FFFF_FFFF_FFF0)
        let d = discover(f)
        XCTAssertEqual(d.problems.first(.tableUnreadable)?.at, 0xFFFF_FFFF_FFFF_FFF0)
        XCTAssertEqual(d.rootKind, .rsdt)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
    }

    func testXSDTEntriesAreSixtyFourBit() throws {
        let f = try ACPIFixture("pc-smp4")
        // Move the MADT above 4 GiB; only an XSDT can reach it.
        let madt = f.memory.read(f.address(of: "APIC"), 144)
        f.memory.map(0x1_2345_6780, madt)
        addXSDT(f, entries: [f.address(of: "FACP"), 0x1_2345_6780])
        let d = discover(f)
        XCTAssertEqual(d.madtAddress, 0x1_2345_6780)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
    }

    func testX2APICOverrideAndUnknownEntries() throws {
        var problems = ACPIProblemList()
        let table = makeTable("APIC", body: madtBody([
            lapicEntry(uid: 0, apic: 0),
            madtEntry(9, [0, 0] + le(UInt32(300)) + le(UInt32(3)) + le(UInt32(7))),   // x2APIC 300, enabled+online-capable
            madtEntry(5, [0, 0] + le(UInt64(0x1_FEE0_0000))),
            madtEntry(0xA, le(UInt16(0xD)) + le(UInt32(0xFFFF_FFFF)) + [0, 0, 0, 0]),  // lint 0 for all
            madtEntry(0x7F, [1, 2, 3, 4]),                                              // unknown
            madtEntry(3, [0, 0] + le(UInt32(0)) + [0, 0]),                              // NMI source: unused
            madtEntry(0, [9, 9] + le(UInt32(1)) + [0xEE, 0xEE]),                        // longer than 8: ok
        ], flags: 0))
        let madt = try XCTUnwrap(table.withUnsafeBytes { MADTInfo.parse(ACPIBytes($0), problems: &problems) })
        XCTAssertTrue(problems.isEmpty)
        XCTAssertTrue(madt.walkCompleted)
        XCTAssertFalse(madt.hasLegacyPICs)
        XCTAssertEqual(madt.localAPICAddress32, 0xFEE0_0000)
        XCTAssertEqual(madt.localAPICAddress, 0x1_FEE0_0000)
        XCTAssertEqual(madt.processors.map { $0.apicID }, [0, 300, 9])
        XCTAssertTrue(madt.processors[1].isX2APIC)
        XCTAssertTrue(madt.processors[1].isOnlineCapable)
        XCTAssertEqual(madt.processors[1].processorUID, 7)
        XCTAssertEqual(madt.nmis.count, 1)
        XCTAssertTrue(madt.nmis[0].isX2APIC)
        XCTAssertTrue(madt.nmis[0].appliesToAllProcessors)
        XCTAssertEqual(madt.nmis[0].triggerMode, .level)
        XCTAssertEqual(madt.nmis[0].lint, 0)
        XCTAssertEqual(madt.skippedEntries, 2)
    }

    func testActiveLowOverride() throws {
        var problems = ACPIProblemList()
        let table = makeTable("APIC", body: madtBody([madtEntry(2, [0, 9] + le(UInt32(20)) + le(UInt16(0xF)))]))
        let madt = try XCTUnwrap(table.withUnsafeBytes { MADTInfo.parse(ACPIBytes($0), problems: &problems) })
        XCTAssertEqual(madt.isaRoute(irq: 9), MADTISARoute(gsi: 20, activeLow: true, levelTriggered: true))
    }

    // MARK: Malformed RSDP

    func testNoRSDPAnywhere() {
        let memory = ACPIFakeMemory()
        memory.map(0xE0000, zeros: 0x20000)
        let d = ACPI.discover(memory)
        assertFailure(d, .rsdpNotFound)
        XCTAssertEqual(d.problems.count, 1)
        XCTAssertNil(d.rsdp)
        // Nothing mapped at all: every candidate read fails, still a clean answer.
        assertFailure(ACPI.discover(ACPIFakeMemory()), .rsdpNotFound)
    }

    func testBadRSDPChecksum() throws {
        let f = try ACPIFixture("pc-smp4")
        f.memory.write(f.index.rsdpAddress + 9, [UInt8(ascii: "X")])    // OEM ID byte
        let d = discover(f)
        assertFailure(d, .rsdpNotFound)
        XCTAssertEqual(d.problems.first(.rsdpBadChecksum)?.at, f.index.rsdpAddress)
    }

    func testBadRSDPChecksumDoesNotHideALaterGoodCopy() throws {
        let f = try ACPIFixture("pc-smp4")
        let good = f.memory.read(f.index.rsdpAddress, 20)
        var bad = good
        bad[8] &+= 1
        f.memory.write(0xE0000, bad)
        let d = discover(f)
        XCTAssertEqual(d.rsdpAddress, f.index.rsdpAddress)
        XCTAssertEqual(d.problems.list.map { $0.kind }, [.rsdpBadChecksum])
        XCTAssertNotNil(d.madt)
    }

    func testBadExtendedChecksum() throws {
        let f = try ACPIFixture("pc-smp4")
        addXSDT(f)
        f.memory.write(f.index.rsdpAddress + 33, [0x55])   // reserved byte, covered only by the extended checksum
        let d = discover(f)
        assertFailure(d, .rsdpNotFound)
        XCTAssertEqual(d.problems.first(.rsdpBadExtendedChecksum)?.at, f.index.rsdpAddress)
        XCTAssertFalse(d.problems.contains(.rsdpBadChecksum))
    }

    func testRevision2LengthOutOfRange() throws {
        for length: UInt32 in [20, 35, 0xFFFF_FFFF] {
            let f = try ACPIFixture("pc-smp4")
            addXSDT(f)
            f.memory.write32(f.index.rsdpAddress + 20, length)
            f.memory.fixChecksum(f.index.rsdpAddress, length: 20, checksumOffset: 8)
            let d = discover(f)
            assertFailure(d, .rsdpNotFound)
            XCTAssertEqual(d.problems.first(.rsdpBadLength)?.value, UInt64(length))
        }
    }

    func testRSDPRunningIntoUnreadableMemory() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdp = f.memory.read(f.index.rsdpAddress, 20)
        f.memory.write(0xFFFF0, Array(rsdp[0..<16]))     // the last 16 bytes of the BIOS area
        f.memory.write(f.index.rsdpAddress, [UInt8](repeating: 0, count: 8))
        let d = discover(f)
        assertFailure(d, .rsdpNotFound)
        XCTAssertEqual(d.problems.first(.rsdpUnreadable)?.at, 0xFFFF0)
    }

    func testProblemListIsBounded() throws {
        let f = try ACPIFixture("pc-smp4")
        var bad = f.memory.read(f.index.rsdpAddress, 20)
        bad[8] &+= 1
        for i in 0..<30 { f.memory.write(0xE0000 + UInt64(i) * 32, bad) }
        let d = discover(f)
        XCTAssertNotNil(d.madt)
        XCTAssertEqual(d.problems.count, ACPIProblemList.capacity)
        XCTAssertEqual(d.problems.dropped, 30 - ACPIProblemList.capacity)
    }

    // MARK: Malformed root and system description tables

    func testBadRSDTChecksum() throws {
        let f = try ACPIFixture("pc-smp4")
        f.memory.write(f.index.rsdtAddress + 20, [0])      // OEM revision byte
        let d = discover(f)
        assertFailure(d, .tableBadChecksum)
        XCTAssertEqual(d.failure?.at, f.index.rsdtAddress)
        XCTAssertNotNil(d.rsdp)
        XCTAssertNil(d.root)
    }

    func testBadMADTChecksum() throws {
        let f = try ACPIFixture("pc-smp8")
        f.memory.write(f.address(of: "APIC") + 0x30, [0xFF])
        let d = discover(f)
        assertFailure(d, .madtNotFound)
        XCTAssertEqual(d.problems.first(.tableBadChecksum)?.at, f.address(of: "APIC"))
        XCTAssertEqual(d.problems.first(.tableBadChecksum)?.value, UInt64(ACPISignature.madt.raw))
    }

    func testMADTLengthPastReadableMemory() throws {
        let f = try ACPIFixture("pc-smp4")
        let madt = f.address(of: "APIC")
        f.memory.write32(madt + 4, 144 + 64)
        f.memory.fixChecksum(madt, length: 144, checksumOffset: 9)
        let d = discover(f)
        assertFailure(d, .madtNotFound)
        XCTAssertEqual(d.problems.first(.tableUnreadable), ACPIProblem(.tableUnreadable, at: madt, value: 208))
    }

    func testTableLengthBelowHeaderAndAboveCap() throws {
        for (length, kind) in [(UInt32(0), ACPIProblemKind.tableTooShort), (35, .tableTooShort),
                               (UInt32(ACPI.maxTableLength + 1), .tableTooLong), (0xFFFF_FFFF, .tableTooLong)] {
            let f = try ACPIFixture("pc-smp4")
            f.memory.write32(f.index.rsdtAddress + 4, length)
            let d = discover(f)
            assertFailure(d, kind)
            XCTAssertEqual(d.failure?.value, UInt64(length))
        }
    }

    func testRSDTLengthNotMultipleOf4() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdt = f.memory.read(f.index.rsdtAddress, 52)
        f.memory.map(f.index.rsdtAddress, makeTable("RSDT", body: Array(rsdt[36..<52]) + [0, 0]))
        let d = discover(f)
        assertFailure(d, .rootTableBadLength)
        XCTAssertEqual(d.failure?.value, 54)
    }

    func testRSDTPointerToUnreadableMemory() throws {
        let f = try ACPIFixture("pc-smp4")
        var rsdp = f.memory.read(f.index.rsdpAddress, 20)
        rsdp.replaceSubrange(16..<20, with: le(UInt32(0xDEAD_0000)))
        f.memory.write(f.index.rsdpAddress, rsdp)
        f.memory.fixChecksum(f.index.rsdpAddress, length: 20, checksumOffset: 8)
        let d = discover(f)
        assertFailure(d, .tableUnreadable)
        XCTAssertEqual(d.failure?.at, 0xDEAD_0000)
    }

    func testRSDTAddressZeroAndWrongSignature() throws {
        let f = try ACPIFixture("pc-smp4")
        f.memory.write32(f.index.rsdpAddress + 16, 0)
        f.memory.fixChecksum(f.index.rsdpAddress, length: 20, checksumOffset: 8)
        assertFailure(discover(f), .rootTableMissing)

        f.memory.write32(f.index.rsdpAddress + 16, UInt32(f.address(of: "FACP")))
        f.memory.fixChecksum(f.index.rsdpAddress, length: 20, checksumOffset: 8)
        let d = discover(f)
        assertFailure(d, .tableWrongSignature)
        XCTAssertEqual(d.failure?.value, UInt64(ACPISignature.fadt.raw))
    }

    func testRSDTEntryToUnreadableOrNullMemoryIsSkipped() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdt = f.index.rsdtAddress
        f.memory.write32(rsdt + 36, 0xDEAD_0000)    // was FACP, listed before the MADT
        f.memory.write32(rsdt + 44, 0)              // was HPET, listed after
        f.memory.fixTableChecksum(rsdt)
        let d = discover(f)
        XCTAssertNil(d.failure)
        XCTAssertEqual(d.madt?.enabledProcessorCount, 4)
        XCTAssertEqual(d.problems.list.map { $0.kind }, [.tableUnreadable])
        XCTAssertEqual(d.problems.first(.tableUnreadable)?.at, 0xDEAD_0000)

        // A walk over every table reaches the null entry too.
        var problems = ACPIProblemList()
        ACPI.forEachTable(in: try XCTUnwrap(d.root), reader: f.memory, problems: &problems) { _ in true }
        XCTAssertEqual(problems.list.map { $0.kind }, [.tableUnreadable, .tableNullAddress])
        problems = ACPIProblemList()
        _ = ACPI.findTable(ACPISignature("SSDT"), in: try XCTUnwrap(d.root), reader: f.memory, problems: &problems)
        XCTAssertEqual(problems.list.map { $0.kind }, [.tableUnreadable, .tableNullAddress])
    }

    func testMissingMADT() throws {
        let f = try ACPIFixture("q35-smp4")
        let madt = f.address(of: "APIC")
        f.memory.write(madt, Array("APIX".utf8))
        f.memory.fixTableChecksum(madt)
        let d = discover(f)
        assertFailure(d, .madtNotFound)
        XCTAssertEqual(d.failure?.at, f.index.rsdtAddress)
        XCTAssertTrue(d.problems.list.allSatisfy { $0.kind == .madtNotFound })
        XCTAssertEqual(d.rootKind, .rsdt)
    }

    func testCorruptMADTCopyDoesNotHideAGoodOne() throws {
        let f = try ACPIFixture("pc-smp4")
        let rsdt = f.index.rsdtAddress
        let good = f.address(of: "APIC")
        var bad = f.memory.read(good, 144)
        bad[50] &+= 1
        f.memory.map(0x7F00000, bad)
        f.memory.write32(rsdt + 36, 0x7F00000)      // corrupt copy listed first
        f.memory.fixTableChecksum(rsdt)
        let d = discover(f)
        XCTAssertEqual(d.madtAddress, good)
        XCTAssertEqual(d.problems.first(.tableBadChecksum)?.at, 0x7F00000)
    }

    func testMADTShorterThanFixedPart() throws {
        let f = try ACPIFixture("pc-smp4")
        f.memory.map(f.address(of: "APIC"), makeTable("APIC", body: le(UInt32(0xFEE0_0000))))
        let d = discover(f)
        assertFailure(d, .madtTooShort)
        XCTAssertEqual(d.failure?.value, 40)
        XCTAssertEqual(d.madtAddress, f.address(of: "APIC"))
    }

    // MARK: Malformed MADT entries

    /// Replaces the fixture's MADT with `mutate` applied to its bytes, checksum fixed.
    private func discoverWithMADT(_ name: String = "pc-smp4", _ mutate: (inout [UInt8]) -> Void) throws
        -> (ACPIFixture, ACPIDiscovery) {
        let f = try ACPIFixture(name)
        let address = f.address(of: "APIC")
        var madt = f.memory.read(address, Int(le32(f.memory.read(address + 4, 4))))
        mutate(&madt)
        madt.replaceSubrange(4..<8, with: le(UInt32(madt.count)))
        madt[9] = 0
        madt[9] = 0 &- madt.reduce(UInt8(0), &+)
        f.memory.map(address, madt)
        return (f, ACPI.discover(f.memory))
    }

    func testZeroLengthEntryStopsTheWalk() throws {
        for badLength: UInt8 in [0, 1] {
            let (f, d) = try discoverWithMADT { $0[44 + 8 + 1] = badLength }    // second entry
            let madt = try XCTUnwrap(d.madt)
            XCTAssertFalse(madt.walkCompleted)
            XCTAssertEqual(madt.processors.count, 1)          // the entry before is kept
            XCTAssertEqual(d.problems.list.map { $0.kind }, [.madtEntryBadLength])
            XCTAssertEqual(d.problems.first(.madtEntryBadLength),
                           ACPIProblem(.madtEntryBadLength, at: f.address(of: "APIC") + 52, value: UInt64(badLength)))
        }
    }

    func testEntryRunningPastTheEnd() throws {
        let (f, d) = try discoverWithMADT { $0[$0.count - 5] = 7 }   // last entry: the 6-byte NMI
        let madt = try XCTUnwrap(d.madt)
        XCTAssertFalse(madt.walkCompleted)
        XCTAssertEqual(madt.processors.count, 4)
        XCTAssertEqual(madt.nmis.count, 0)
        XCTAssertEqual(d.problems.first(.madtEntryPastEnd),
                       ACPIProblem(.madtEntryPastEnd, at: f.address(of: "APIC") + 144 - 6, value: 7))
    }

    func testEntryHeaderCutByTheTableEnd() throws {
        let (_, d) = try discoverWithMADT { $0.append(0) }
        XCTAssertEqual(d.problems.first(.madtEntryHeaderTruncated)?.value, 1)
        XCTAssertFalse(try XCTUnwrap(d.madt).walkCompleted)
        XCTAssertEqual(d.madt?.nmis.count, 1)
    }

    func testEntryShorterThanItsTypeIsSkipped() throws {
        // Shrink the I/O APIC entry (type 1, needs 12) to 6 bytes; the walk continues.
        let (f, d) = try discoverWithMADT {
            let io = 44 + 4 * 8
            XCTAssertEqual($0[io], 1)
            $0.removeSubrange(io + 6..<io + 12)
            $0[io + 1] = 6
        }
        let madt = try XCTUnwrap(d.madt)
        XCTAssertTrue(madt.walkCompleted)
        XCTAssertEqual(madt.ioAPICs.count, 0)
        XCTAssertEqual(madt.overrides.count, 5)
        XCTAssertEqual(madt.nmis.count, 1)
        XCTAssertEqual(Array(d.problems.list), [ACPIProblem(.madtEntryTooShort, at: f.address(of: "APIC") + 76, value: 6)])
    }

    func testEveryTypeRejectsAShortEntry() {
        for type: UInt8 in [0, 1, 2, 4, 5, 9, 0xA] {
            let minimum = MADTInfo.minimumLength(ofType: type)
            var problems = ACPIProblemList()
            let table = makeTable("APIC", body: madtBody([madtEntry(type, [UInt8](repeating: 0xFF, count: minimum - 3))]))
            let madt = table.withUnsafeBytes { MADTInfo.parse(ACPIBytes($0), problems: &problems) }
            XCTAssertEqual(problems.list.map { $0.kind }, [.madtEntryTooShort], "type \(type)")
            XCTAssertEqual(madt?.processors.count, 0)
            XCTAssertNil(madt?.localAPICAddressOverride)
        }
    }

    func testTooManyCPUs() throws {
        let (_, d) = try discoverWithMADT { madt in
            let entries = (0..<100).flatMap { lapicEntry(uid: UInt8($0), apic: UInt8($0)) }
            madt.replaceSubrange(44..<44 + 4 * 8, with: entries)
        }
        let madt = try XCTUnwrap(d.madt)
        XCTAssertNil(d.failure)
        XCTAssertEqual(madt.processors.count, MADTInfo.maxProcessors)
        XCTAssertEqual(madt.processorEntries, 100)
        XCTAssertEqual(madt.processors.last?.apicID, 63)
        XCTAssertEqual(madt.ioAPICs.count, 1)             // later entries still parsed
        XCTAssertEqual(madt.nmis.count, 1)
        XCTAssertEqual(Array(d.problems.list), [ACPIProblem(.tooManyProcessors, at: 64, value: 100)])
    }

    func testTooManyOfEveryOtherKind() {
        var entries: [[UInt8]] = []
        for i in 0..<10 { entries.append(madtEntry(1, [UInt8(i), 0] + le(UInt32(0xFEC0_0000)) + le(UInt32(i * 24)))) }
        for i in 0..<20 { entries.append(madtEntry(2, [0, UInt8(i)] + le(UInt32(i)) + le(UInt16(0)))) }
        for _ in 0..<17 { entries.append(madtEntry(4, [0xFF, 0, 0, 1])) }
        var problems = ACPIProblemList()
        let table = makeTable("APIC", body: madtBody(entries))
        let madt = table.withUnsafeBytes { MADTInfo.parse(ACPIBytes($0), problems: &problems) }
        XCTAssertEqual(madt?.ioAPICs.count, 8)
        XCTAssertEqual(madt?.overrides.count, 16)
        XCTAssertEqual(madt?.nmis.count, 16)
        XCTAssertEqual(Array(problems.list), [ACPIProblem(.tooManyIOAPICs, at: 8, value: 10),
                                       ACPIProblem(.tooManyOverrides, at: 16, value: 20),
                                       ACPIProblem(.tooManyNMIs, at: 16, value: 17)])
    }

    func testParseRejectsBuffersShorterThanTheirLength() {
        var problems = ACPIProblemList()
        let full = makeTable("APIC", body: madtBody([lapicEntry(uid: 0, apic: 0), lapicEntry(uid: 1, apic: 1)]))
        let madt = full.withUnsafeBytes { MADTInfo.parse(ACPIBytes(UnsafeRawBufferPointer(rebasing: $0[0..<56])), problems: &problems) }
        // The cut-off second entry then runs past the (clamped) end.
        XCTAssertEqual(problems.list.map { $0.kind }, [.madtTruncated, .madtEntryPastEnd])
        XCTAssertEqual(madt?.processors.count, 1)
        problems = ACPIProblemList()
        XCTAssertNil(full.withUnsafeBytes { MADTInfo.parse(ACPIBytes(UnsafeRawBufferPointer(rebasing: $0[0..<43])), problems: &problems) })
        XCTAssertEqual(problems.list.map { $0.kind }, [.madtTooShort])
    }

    // MARK: Robustness

    /// Random byte flips, length rewrites and fixed-up checksums over the real tables:
    /// discovery must always return (no trap, no endless loop) and stay bounded.
    func testRandomCorruptionNeverTraps() throws {
        var rng = SplitMix64(seed: 0x5157_4152_5445_54)
        let f = try ACPIFixture("q35-smp4")
        let madtAddress = f.address(of: "APIC")
        let pristineMADT = f.memory.read(madtAddress, 144)
        let pristineRSDT = f.memory.read(f.index.rsdtAddress, 56)
        var outcomes: [ACPIProblemKind?: Int] = [:]
        for _ in 0..<2000 {
            f.memory.map(madtAddress, pristineMADT)
            f.memory.map(f.index.rsdtAddress, pristineRSDT)
            let target = rng.next() % 4 == 0 ? f.index.rsdtAddress : madtAddress
            let size = target == madtAddress ? 144 : 56
            for _ in 0..<(1 + rng.next() % 4) {
                let offset = UInt64(rng.next() % UInt64(size))
                f.memory.write(target + offset, [UInt8(truncatingIfNeeded: rng.next())])
            }
            if rng.next() % 2 == 0 { f.memory.fixChecksum(target, length: size, checksumOffset: 9) }
            f.memory.reads = 0
            let d = discover(f)
            outcomes[d.failure?.kind, default: 0] += 1
            if let madt = d.madt {
                XCTAssertLessThanOrEqual(madt.processors.count, MADTInfo.maxProcessors)
            } else {
                XCTAssertNotNil(d.failure)
            }
            XCTAssertLessThan(f.memory.reads, 20_000)
        }
        XCTAssertGreaterThan(outcomes.count, 2, "mutations should reach several outcomes: \(outcomes)")
    }
}

private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
