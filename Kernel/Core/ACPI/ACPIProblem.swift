// What went wrong while reading firmware tables.
//
// Firmware tables are input, not trusted data: every defect becomes a problem with a
// fixed reason and two numbers, never a fault. Some problems stop discovery (no RSDP,
// no usable root table, no MADT); the rest are recorded and the walk goes on.

enum ACPIProblemKind: UInt8, Equatable {
    // RSDP search
    case rsdpNotFound
    case rsdpBadChecksum
    case rsdpBadExtendedChecksum
    case rsdpBadLength
    case rsdpUnreadable
    // Any system description table
    case tableNullAddress
    case tableUnreadable
    case tableTooShort
    case tableTooLong
    case tableBadChecksum
    case tableWrongSignature
    // RSDT / XSDT
    case rootTableBadLength
    case rootTableMissing
    case xsdtRejected
    case madtNotFound
    // MADT body
    case madtTooShort
    case madtTruncated
    case madtEntryHeaderTruncated
    case madtEntryBadLength
    case madtEntryPastEnd
    case madtEntryTooShort
    case tooManyProcessors
    case tooManyIOAPICs
    case tooManyOverrides
    case tooManyNMIs

    /// A sentence for the console; `at` and `value` of the problem fill in the numbers.
    var reason: StaticString {
        switch self {
        case .rsdpNotFound: return "no valid RSDP in the EBDA or 0xE0000-0xFFFFF"
        case .rsdpBadChecksum: return "RSDP checksum over the first 20 bytes is not zero"
        case .rsdpBadExtendedChecksum: return "RSDP extended checksum is not zero"
        case .rsdpBadLength: return "RSDP length (revision 2+) is out of range"
        case .rsdpUnreadable: return "RSDP candidate runs into unreadable memory"
        case .tableNullAddress: return "table pointer is zero"
        case .tableUnreadable: return "table is not readable for its whole length"
        case .tableTooShort: return "table length is below the 36-byte header"
        case .tableTooLong: return "table length exceeds the 1 MiB sanity cap"
        case .tableBadChecksum: return "table checksum is not zero"
        case .tableWrongSignature: return "table has an unexpected signature"
        case .rootTableBadLength: return "RSDT/XSDT entry area is not a multiple of the entry size"
        case .rootTableMissing: return "RSDP names no usable RSDT or XSDT"
        case .xsdtRejected: return "XSDT unusable, falling back to the RSDT"
        case .madtNotFound: return "no valid MADT (APIC) listed in the root table"
        case .madtTooShort: return "MADT is shorter than its 44-byte fixed part"
        case .madtTruncated: return "MADT length exceeds the bytes available"
        case .madtEntryHeaderTruncated: return "MADT entry header runs past the table end"
        case .madtEntryBadLength: return "MADT entry length below 2, walk stopped"
        case .madtEntryPastEnd: return "MADT entry runs past the table end, walk stopped"
        case .madtEntryTooShort: return "MADT entry shorter than its type requires, skipped"
        case .tooManyProcessors: return "more processors than the kernel supports, extra ignored"
        case .tooManyIOAPICs: return "more I/O APICs than the kernel supports, extra ignored"
        case .tooManyOverrides: return "more interrupt overrides than supported, extra ignored"
        case .tooManyNMIs: return "more local APIC NMI entries than supported, extra ignored"
        }
    }
}

/// One problem. `at` is the physical address of the structure at fault (for MADT
/// entries: the MADT's address plus the entry offset; for the too-many kinds: how many
/// were kept); `value` is the offending number (a length, a signature, the total
/// count), or 0 when there is none.
struct ACPIProblem: Error, Equatable {
    let kind: ACPIProblemKind
    let at: UInt64
    let value: UInt64

    init(_ kind: ACPIProblemKind, at: UInt64 = 0, value: UInt64 = 0) {
        self.kind = kind
        self.at = at
        self.value = value
    }

    var reason: StaticString { kind.reason }
}

/// The problems of one discovery, first ones kept. A table full of garbage produces at
/// most `capacity` entries plus a count of the rest, so reporting stays bounded.
struct ACPIProblemList {
    static let capacity = 16
    private(set) var list = ACPIFixedList<16, ACPIProblem>(filler: ACPIProblem(.rsdpNotFound))
    private(set) var dropped = 0

    mutating func record(_ problem: ACPIProblem) {
        if !list.append(problem) { dropped += 1 }
    }

    mutating func record(_ kind: ACPIProblemKind, at: UInt64 = 0, value: UInt64 = 0) {
        record(ACPIProblem(kind, at: at, value: value))
    }

    var count: Int { list.count }
    var isEmpty: Bool { list.isEmpty }

    func contains(_ kind: ACPIProblemKind) -> Bool {
        for problem in list where problem.kind == kind { return true }
        return false
    }

    func first(_ kind: ACPIProblemKind) -> ACPIProblem? {
        for problem in list where problem.kind == kind { return problem }
        return nil
    }
}
