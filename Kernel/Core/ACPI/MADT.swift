// The Multiple APIC Description Table (signature "APIC", ACPI 6.5 §5.2.12): which CPUs
// exist and whether they are enabled, where the I/O APICs are, how ISA IRQs map to
// global system interrupts, and which LINT pin carries NMI.
//
// The body is a list of variable-length entries (type byte, length byte). The walk
// trusts nothing: a length below 2 would never advance and a length past the end
// would read beyond the table, so both stop the walk with a problem; an entry too
// short for its type is skipped with a problem; unknown types are skipped by length.

/// One processor, from a Processor Local APIC entry (type 0) or a Processor Local
/// x2APIC entry (type 9).
struct MADTProcessor {
    /// ACPI processor UID (type 0 has an 8-bit "ACPI processor ID").
    var processorUID: UInt32 = 0
    var apicID: UInt32 = 0
    var flags: UInt32 = 0
    var isX2APIC = false

    /// Usable now. A disabled entry describes a CPU slot the firmware did not bring up.
    var isEnabled: Bool { flags & 1 != 0 }
    /// ACPI 6.3+: a disabled processor that may be onlined later (hot-plug).
    var isOnlineCapable: Bool { flags & 2 != 0 }
}

/// An I/O APIC (type 1).
struct MADTIOAPIC {
    var id: UInt8 = 0
    var address: UInt32 = 0
    /// First global system interrupt served by this I/O APIC's pin 0.
    var gsiBase: UInt32 = 0
}

/// MPS INTI polarity, bits 0-1 of the flags of overrides and NMI entries.
enum MADTPolarity: Equatable {
    case conformsToBus, activeHigh, reserved, activeLow

    init(flags: UInt16) {
        switch flags & 3 {
        case 0: self = .conformsToBus
        case 1: self = .activeHigh
        case 2: self = .reserved
        default: self = .activeLow
        }
    }
}

/// MPS INTI trigger mode, bits 2-3 of the same flags.
enum MADTTriggerMode: Equatable {
    case conformsToBus, edge, reserved, level

    init(flags: UInt16) {
        switch (flags >> 2) & 3 {
        case 0: self = .conformsToBus
        case 1: self = .edge
        case 2: self = .reserved
        default: self = .level
        }
    }
}

/// An Interrupt Source Override (type 2): ISA IRQ `source` arrives on `gsi`.
struct MADTInterruptOverride {
    var bus: UInt8 = 0
    var source: UInt8 = 0
    var gsi: UInt32 = 0
    var flags: UInt16 = 0

    var polarity: MADTPolarity { MADTPolarity(flags: flags) }
    var triggerMode: MADTTriggerMode { MADTTriggerMode(flags: flags) }
}

/// A Local APIC NMI entry (type 4) or Local x2APIC NMI entry (type 0xA).
struct MADTLocalNMI {
    /// 0xFF (type 4) or 0xFFFFFFFF (type 0xA) mean every processor.
    var processorUID: UInt32 = 0
    var flags: UInt16 = 0
    /// Local APIC LINT input (0 or 1) wired to NMI.
    var lint: UInt8 = 0
    var isX2APIC = false

    var appliesToAllProcessors: Bool { processorUID == (isX2APIC ? 0xFFFF_FFFF : 0xFF) }
    var polarity: MADTPolarity { MADTPolarity(flags: flags) }
    var triggerMode: MADTTriggerMode { MADTTriggerMode(flags: flags) }

    func applies(toProcessorUID uid: UInt32) -> Bool { appliesToAllProcessors || processorUID == uid }
}

/// Where an ISA IRQ ends up, after overrides and with "conforms to bus" resolved to
/// the ISA defaults (active high, edge).
struct MADTISARoute: Equatable {
    let gsi: UInt32
    let activeLow: Bool
    let levelTriggered: Bool
}

/// Everything the kernel needs from the MADT, in fixed-capacity lists.
struct MADTInfo {
    static let maxProcessors = 64
    static let maxIOAPICs = 8
    static let maxOverrides = 16
    static let maxNMIs = 16

    /// The 32-bit address in the fixed part of the table.
    var localAPICAddress32: UInt32 = 0
    /// The 64-bit address from a Local APIC Address Override (type 5), if any.
    var localAPICAddressOverride: UInt64?
    var flags: UInt32 = 0

    var processors = ACPIFixedList<64, MADTProcessor>(filler: MADTProcessor())
    var ioAPICs = ACPIFixedList<8, MADTIOAPIC>(filler: MADTIOAPIC())
    var overrides = ACPIFixedList<16, MADTInterruptOverride>(filler: MADTInterruptOverride())
    var nmis = ACPIFixedList<16, MADTLocalNMI>(filler: MADTLocalNMI())

    /// Entries seen of each kind, including those dropped for lack of capacity.
    var processorEntries = 0
    var ioAPICEntries = 0
    var overrideEntries = 0
    var nmiEntries = 0
    /// Entries of types this parser does not use, skipped by their length.
    var skippedEntries = 0
    /// False when a malformed entry stopped the walk before the end of the table.
    var walkCompleted = false

    /// The address to map for the local APIC: the override wins when present.
    var localAPICAddress: UInt64 { localAPICAddressOverride ?? UInt64(localAPICAddress32) }
    /// PCAT_COMPAT: a dual 8259 is present and must be masked before using the I/O APIC.
    var hasLegacyPICs: Bool { flags & 1 != 0 }

    var enabledProcessorCount: Int {
        var n = 0
        for cpu in processors where cpu.isEnabled { n += 1 }
        return n
    }

    /// The GSI and electrical settings for ISA IRQ `irq`: identity-mapped, active high,
    /// edge triggered unless an ISA (bus 0) override says otherwise.
    func isaRoute(irq: UInt8) -> MADTISARoute {
        for o in overrides where o.bus == 0 && o.source == irq {
            return MADTISARoute(gsi: o.gsi, activeLow: o.polarity == .activeLow,
                                levelTriggered: o.triggerMode == .level)
        }
        return MADTISARoute(gsi: UInt32(irq), activeLow: false, levelTriggered: false)
    }
}

extension MADTInfo {
    static let fixedPartLength = 44

    /// Minimum entry length per type, from the ACPI specification. Longer entries are
    /// accepted (later revisions append fields); 0 means "type not parsed".
    static func minimumLength(ofType type: UInt8) -> Int {
        switch type {
        case 0: return 8    // Processor Local APIC
        case 1: return 12   // I/O APIC
        case 2: return 10   // Interrupt Source Override
        case 4: return 6    // Local APIC NMI
        case 5: return 12   // Local APIC Address Override
        case 9: return 16   // Processor Local x2APIC
        case 0xA: return 12 // Local x2APIC NMI
        default: return 0
        }
    }

    /// Parses a MADT whose header (checksum included) was already validated, e.g. by
    /// `ACPI.validateTable`. `address` is only used to locate problems. Returns nil
    /// when even the fixed part is missing; otherwise whatever the entries yielded.
    static func parse(
        _ bytes: ACPIBytes, address: UInt64 = 0, problems: inout ACPIProblemList
    ) -> MADTInfo? {
        guard bytes.count >= fixedPartLength else {
            problems.record(.madtTooShort, at: address, value: UInt64(bytes.count))
            return nil
        }
        var end = Int(bytes.u32(4))
        if end > bytes.count {
            // Only reachable when called directly on raw bytes: validateTable already
            // guarantees the buffer covers the length field.
            problems.record(.madtTruncated, at: address, value: UInt64(end))
            end = bytes.count
        }
        guard end >= fixedPartLength else {
            problems.record(.madtTooShort, at: address, value: UInt64(end))
            return nil
        }

        var info = MADTInfo()
        info.localAPICAddress32 = bytes.u32(36)
        info.flags = bytes.u32(40)

        var offset = fixedPartLength
        while offset < end {
            let at = address &+ UInt64(offset)
            guard end - offset >= 2 else {
                problems.record(.madtEntryHeaderTruncated, at: at, value: UInt64(end - offset))
                break
            }
            let type = bytes.u8(offset)
            let length = Int(bytes.u8(offset + 1))
            guard length >= 2 else {
                problems.record(.madtEntryBadLength, at: at, value: UInt64(length))
                break
            }
            guard length <= end - offset else {
                problems.record(.madtEntryPastEnd, at: at, value: UInt64(length))
                break
            }
            let minimum = minimumLength(ofType: type)
            if minimum == 0 {
                info.skippedEntries += 1
            } else if length < minimum {
                problems.record(.madtEntryTooShort, at: at, value: UInt64(length))
            } else {
                info.record(entryOfType: type, in: bytes, at: offset)
            }
            offset += length
        }
        info.walkCompleted = offset == end
        info.reportDropped(problems: &problems)
        return info
    }

    /// Decodes one entry whose length has been checked against its type's minimum.
    private mutating func record(entryOfType type: UInt8, in b: ACPIBytes, at o: Int) {
        switch type {
        case 0:
            processorEntries += 1
            processors.append(MADTProcessor(processorUID: UInt32(b.u8(o + 2)), apicID: UInt32(b.u8(o + 3)),
                                            flags: b.u32(o + 4), isX2APIC: false))
        case 9:
            processorEntries += 1
            processors.append(MADTProcessor(processorUID: b.u32(o + 12), apicID: b.u32(o + 4),
                                            flags: b.u32(o + 8), isX2APIC: true))
        case 1:
            ioAPICEntries += 1
            ioAPICs.append(MADTIOAPIC(id: b.u8(o + 2), address: b.u32(o + 4), gsiBase: b.u32(o + 8)))
        case 2:
            overrideEntries += 1
            overrides.append(MADTInterruptOverride(bus: b.u8(o + 2), source: b.u8(o + 3),
                                                   gsi: b.u32(o + 4), flags: b.u16(o + 8)))
        case 4:
            nmiEntries += 1
            nmis.append(MADTLocalNMI(processorUID: UInt32(b.u8(o + 2)), flags: b.u16(o + 3),
                                     lint: b.u8(o + 5), isX2APIC: false))
        case 0xA:
            nmiEntries += 1
            nmis.append(MADTLocalNMI(processorUID: b.u32(o + 4), flags: b.u16(o + 2),
                                     lint: b.u8(o + 8), isX2APIC: true))
        case 5:
            localAPICAddressOverride = b.u64(o + 4)
        default:
            break
        }
    }

    /// One problem per overflowing list, carrying the total the firmware listed.
    private func reportDropped(problems: inout ACPIProblemList) {
        if processorEntries > processors.count {
            problems.record(.tooManyProcessors, at: UInt64(processors.count), value: UInt64(processorEntries))
        }
        if ioAPICEntries > ioAPICs.count {
            problems.record(.tooManyIOAPICs, at: UInt64(ioAPICs.count), value: UInt64(ioAPICEntries))
        }
        if overrideEntries > overrides.count {
            problems.record(.tooManyOverrides, at: UInt64(overrides.count), value: UInt64(overrideEntries))
        }
        if nmiEntries > nmis.count {
            problems.record(.tooManyNMIs, at: UInt64(nmis.count), value: UInt64(nmiEntries))
        }
    }
}
