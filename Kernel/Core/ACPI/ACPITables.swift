// System description tables: the common 36-byte header, its checksum, and the walk
// from the RSDP through the RSDT or XSDT to a table with a given signature.
//
// A table is trusted only after its whole length has been read and checksummed, so
// every later parser can index into it knowing `length` bytes are really there.

/// A table that passed header validation; `bytes` covers exactly `length` bytes and
/// points into the reader's memory (the kernel's direct map), it is not a copy.
struct ACPITable {
    let address: UInt64
    let bytes: ACPIBytes

    static let headerLength = 36

    var signature: ACPISignature { ACPISignature(raw: bytes.u32(0)) }
    var length: Int { bytes.count }
    var revision: UInt8 { bytes.u8(8) }
    var oemID: ACPIOEMID { bytes.oemID(10) }
}

enum ACPIRootKind: Equatable {
    /// ACPI 1.0 root table, 32-bit entries.
    case rsdt
    /// ACPI 2.0+ root table, 64-bit entries.
    case xsdt

    var entrySize: Int { self == .rsdt ? 4 : 8 }
    var signature: ACPISignature { self == .rsdt ? .rsdt : .xsdt }
}

/// A validated RSDT or XSDT.
struct ACPIRootTable {
    let kind: ACPIRootKind
    let table: ACPITable

    var address: UInt64 { table.address }
    var entryCount: Int { (table.length - ACPITable.headerLength) / kind.entrySize }

    /// Physical address held in entry `index` (0..<entryCount).
    func entry(_ index: Int) -> UInt64 {
        precondition(index >= 0 && index < entryCount, "root table index out of range")
        let offset = ACPITable.headerLength + index * kind.entrySize
        return kind == .rsdt ? UInt64(table.bytes.u32(offset)) : table.bytes.u64(offset)
    }
}

extension ACPI {
    /// Reads the header at `address`, checks its length against the header size, the
    /// sanity cap and readable memory, then checksums the whole table. When `expected`
    /// is given the signature must match too.
    static func validateTable<R: PhysicalMemoryReader>(
        at address: UInt64, expecting expected: ACPISignature? = nil, reader: R
    ) throws(ACPIProblem) -> ACPITable {
        guard address != 0 else { throw ACPIProblem(.tableNullAddress) }
        guard let header = read(reader, at: address, count: ACPITable.headerLength) else {
            throw ACPIProblem(.tableUnreadable, at: address, value: UInt64(ACPITable.headerLength))
        }
        let signature = ACPISignature(raw: header.u32(0))
        if let expected, signature != expected {
            throw ACPIProblem(.tableWrongSignature, at: address, value: UInt64(signature.raw))
        }
        let length = Int(header.u32(4))
        guard length >= ACPITable.headerLength else {
            throw ACPIProblem(.tableTooShort, at: address, value: UInt64(length))
        }
        guard length <= maxTableLength else {
            throw ACPIProblem(.tableTooLong, at: address, value: UInt64(length))
        }
        guard let whole = read(reader, at: address, count: length) else {
            throw ACPIProblem(.tableUnreadable, at: address, value: UInt64(length))
        }
        guard whole.checksumIsValid(count: length) else {
            throw ACPIProblem(.tableBadChecksum, at: address, value: UInt64(signature.raw))
        }
        return ACPITable(address: address, bytes: whole)
    }

    /// Validates an RSDT or XSDT, including that its entries exactly fill its body.
    static func validateRootTable<R: PhysicalMemoryReader>(
        _ kind: ACPIRootKind, at address: UInt64, reader: R
    ) throws(ACPIProblem) -> ACPIRootTable {
        let table = try validateTable(at: address, expecting: kind.signature, reader: reader)
        guard (table.length - ACPITable.headerLength) % kind.entrySize == 0 else {
            throw ACPIProblem(.rootTableBadLength, at: address, value: UInt64(table.length))
        }
        return ACPIRootTable(kind: kind, table: table)
    }

    /// The XSDT when the RSDP is revision 2+ and the XSDT validates (its 64-bit entries
    /// are the authoritative list on ACPI 2.0+); otherwise the RSDT. A rejected XSDT
    /// is recorded before falling back, so the console shows why.
    static func rootTable<R: PhysicalMemoryReader>(
        for rsdp: ACPIRSDP, reader: R, problems: inout ACPIProblemList
    ) throws(ACPIProblem) -> ACPIRootTable {
        if rsdp.revision >= 2 && rsdp.xsdtAddress != 0 {
            do throws(ACPIProblem) {
                return try validateRootTable(.xsdt, at: rsdp.xsdtAddress, reader: reader)
            } catch {
                problems.record(error)
                problems.record(.xsdtRejected, at: rsdp.xsdtAddress)
            }
        }
        guard rsdp.rsdtAddress != 0 else {
            throw ACPIProblem(.rootTableMissing, at: rsdp.address)
        }
        return try validateRootTable(.rsdt, at: UInt64(rsdp.rsdtAddress), reader: reader)
    }

    /// Calls `body` with each valid table the root lists, in order, until it returns
    /// false. Entries that fail validation are recorded and skipped.
    static func forEachTable<R: PhysicalMemoryReader>(
        in root: ACPIRootTable, reader: R, problems: inout ACPIProblemList,
        _ body: (ACPITable) -> Bool
    ) {
        for index in 0..<root.entryCount {
            do throws(ACPIProblem) {
                let table = try validateTable(at: root.entry(index), reader: reader)
                if !body(table) { return }
            } catch {
                problems.record(error)
            }
        }
    }

    /// The first valid table with `signature`. Only tables whose header carries the
    /// signature are checksummed, and a corrupt copy does not hide a later good one.
    static func findTable<R: PhysicalMemoryReader>(
        _ signature: ACPISignature, in root: ACPIRootTable, reader: R,
        problems: inout ACPIProblemList
    ) -> ACPITable? {
        for index in 0..<root.entryCount {
            let address = root.entry(index)
            guard address != 0 else {
                problems.record(.tableNullAddress, at: root.address, value: UInt64(index))
                continue
            }
            guard let header = read(reader, at: address, count: ACPITable.headerLength) else {
                problems.record(.tableUnreadable, at: address, value: UInt64(ACPITable.headerLength))
                continue
            }
            guard ACPISignature(raw: header.u32(0)) == signature else { continue }
            do throws(ACPIProblem) {
                return try validateTable(at: address, expecting: signature, reader: reader)
            } catch {
                problems.record(error)
            }
        }
        return nil
    }
}
