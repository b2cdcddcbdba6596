// Finding the Root System Description Pointer on a BIOS machine.
//
// ACPI 6.5 §5.2.5.1: the RSDP sits on a 16-byte boundary either in the first KiB of
// the Extended BIOS Data Area (whose real-mode segment is the word at physical 0x40E)
// or in the read-only BIOS area 0xE0000-0xFFFFF. A candidate counts only if its
// checksums hold; a bad one is recorded and the search goes on, because stale or
// partial copies exist in the wild.

struct ACPIRSDP {
    let address: UInt64
    /// 0 for ACPI 1.0 (20-byte RSDP, RSDT only), 2 or more for ACPI 2.0+ (XSDT too).
    let revision: UInt8
    let oemID: ACPIOEMID
    let rsdtAddress: UInt32
    /// Zero before revision 2.
    let xsdtAddress: UInt64
    /// 20 before revision 2, the structure's own length field afterwards.
    let length: Int

    static let v1Length = 20
    static let v2MinimumLength = 36
    /// The v2 structure is 36 bytes; allow growth but not a length that is clearly junk.
    static let maximumLength = 4096
}

extension ACPI {
    static let ebdaPointerAddress: UInt64 = 0x40E
    static let ebdaSearchLength: UInt64 = 1024
    static let biosAreaStart: UInt64 = 0xE0000
    static let biosAreaEnd: UInt64 = 0x100000

    /// Searches the EBDA's first KiB, then the BIOS area. Rejected candidates are
    /// recorded in `problems`; nil means no valid RSDP anywhere.
    static func findRSDP<R: PhysicalMemoryReader>(
        _ reader: R, problems: inout ACPIProblemList
    ) -> ACPIRSDP? {
        if let ebda = ebdaAddress(reader),
           let found = scanForRSDP(reader, from: ebda, to: ebda + ebdaSearchLength, problems: &problems) {
            return found
        }
        return scanForRSDP(reader, from: biosAreaStart, to: biosAreaEnd, problems: &problems)
    }

    /// The EBDA base from the BIOS Data Area, or nil when the word is absent or points
    /// somewhere an EBDA cannot be (inside the BDA/IVT, or at or above video memory).
    static func ebdaAddress<R: PhysicalMemoryReader>(_ reader: R) -> UInt64? {
        guard let word = read(reader, at: ebdaPointerAddress, count: 2) else { return nil }
        let base = UInt64(word.u16(0)) << 4
        guard base >= 0x500, base + ebdaSearchLength <= 0xA0000 else { return nil }
        return base
    }

    /// Checks every 16-byte boundary in [start, end). Each candidate is read on its own
    /// so an unreadable hole in the range only hides the candidates inside it.
    static func scanForRSDP<R: PhysicalMemoryReader>(
        _ reader: R, from start: UInt64, to end: UInt64, problems: inout ACPIProblemList
    ) -> ACPIRSDP? {
        var address = (start + 15) & ~15
        while address + 8 <= end {
            if let signature = read(reader, at: address, count: 8), isRSDPSignature(signature) {
                do throws(ACPIProblem) {
                    return try validateRSDP(at: address, reader: reader)
                } catch {
                    problems.record(error)
                }
            }
            address += 16
        }
        return nil
    }

    static func isRSDPSignature(_ bytes: ACPIBytes) -> Bool {
        // "RSD PTR " as a little-endian UInt64.
        bytes.has(8, at: 0) && bytes.u64(0) == 0x2052_5450_2044_5352
    }

    /// Validates the RSDP whose signature is at `address`. ACPICA's rule: the 20-byte
    /// checksum always, and for revision 2+ also the extended checksum over `length`.
    static func validateRSDP<R: PhysicalMemoryReader>(
        at address: UInt64, reader: R
    ) throws(ACPIProblem) -> ACPIRSDP {
        guard let head = read(reader, at: address, count: ACPIRSDP.v1Length) else {
            throw ACPIProblem(.rsdpUnreadable, at: address)
        }
        guard head.checksumIsValid(count: ACPIRSDP.v1Length) else {
            throw ACPIProblem(.rsdpBadChecksum, at: address)
        }
        let revision = head.u8(15)
        let oemID = head.oemID(9)
        let rsdtAddress = head.u32(16)
        guard revision >= 2 else {
            return ACPIRSDP(address: address, revision: revision, oemID: oemID,
                            rsdtAddress: rsdtAddress, xsdtAddress: 0,
                            length: ACPIRSDP.v1Length)
        }
        guard let v2Head = read(reader, at: address, count: ACPIRSDP.v2MinimumLength) else {
            throw ACPIProblem(.rsdpUnreadable, at: address)
        }
        let length = Int(v2Head.u32(20))
        guard length >= ACPIRSDP.v2MinimumLength, length <= ACPIRSDP.maximumLength else {
            throw ACPIProblem(.rsdpBadLength, at: address, value: UInt64(length))
        }
        guard let full = read(reader, at: address, count: length) else {
            throw ACPIProblem(.rsdpUnreadable, at: address, value: UInt64(length))
        }
        guard full.checksumIsValid(count: length) else {
            throw ACPIProblem(.rsdpBadExtendedChecksum, at: address)
        }
        return ACPIRSDP(address: address, revision: revision, oemID: oemID,
                        rsdtAddress: rsdtAddress, xsdtAddress: full.u64(24),
                        length: length)
    }
}
