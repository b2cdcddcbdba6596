// Small building blocks shared by the ACPI parsers.
//
// The kernel parses ACPI before its heap exists, so nothing here allocates: results
// live in fixed-capacity lists, names are packed into integers, and table bytes are
// read in place through the PhysicalMemoryReader's buffer.

/// A list with a capacity fixed at compile time, stored inline (no heap).
/// `append` refuses instead of growing, so a firmware table that lists more items than
/// the kernel supports cannot make the parser allocate or overrun.
struct ACPIFixedList<let capacity: Int, Element>: RandomAccessCollection {
    private var storage: InlineArray<capacity, Element>
    private(set) var count = 0

    init(filler: Element) {
        storage = InlineArray(repeating: filler)
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }
    var isFull: Bool { count == capacity }

    subscript(index: Int) -> Element {
        precondition(index >= 0 && index < count, "ACPIFixedList index out of range")
        return storage[index]
    }

    /// Returns false (and keeps the list unchanged) when the list is full.
    @discardableResult
    mutating func append(_ element: Element) -> Bool {
        guard count < capacity else { return false }
        storage[count] = element
        count += 1
        return true
    }
}

/// A four-character ACPI table signature ("APIC", "RSDT", ...) packed little-endian,
/// which is exactly how it sits in the first four bytes of a table.
struct ACPISignature: Equatable {
    let raw: UInt32

    init(raw: UInt32) { self.raw = raw }

    init(_ text: StaticString) {
        precondition(text.utf8CodeUnitCount == 4, "ACPI signatures have four characters")
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(text.utf8Start[i]) << (8 * UInt32(i)) }
        raw = value
    }

    /// Character `index` (0...3) as an ASCII byte, for printing without a String.
    func byte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: raw >> (8 * UInt32(index))) }

    // Computed rather than stored so no lazy global initialisation is needed early in boot.
    static var rsdt: ACPISignature { ACPISignature("RSDT") }
    static var xsdt: ACPISignature { ACPISignature("XSDT") }
    static var madt: ACPISignature { ACPISignature("APIC") }
    static var fadt: ACPISignature { ACPISignature("FACP") }
    static var hpet: ACPISignature { ACPISignature("HPET") }
    static var mcfg: ACPISignature { ACPISignature("MCFG") }
}

/// The six-byte OEM ID of the RSDP or a table header, packed little-endian into the
/// low 48 bits (space padded, as the firmware wrote it).
struct ACPIOEMID: Equatable {
    let raw: UInt64
    static let length = 6

    init(raw: UInt64) { self.raw = raw & 0xFFFF_FFFF_FFFF }

    func byte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: raw >> (8 * UInt64(index))) }
}

/// Bounds-checked little-endian reads from table bytes. Callers check lengths before
/// reading; the precondition is a second line of defence, not the validation itself.
struct ACPIBytes {
    let buffer: UnsafeRawBufferPointer

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var count: Int { buffer.count }

    func has(_ size: Int, at offset: Int) -> Bool {
        offset >= 0 && size >= 0 && offset <= buffer.count && size <= buffer.count - offset
    }

    func u8(_ offset: Int) -> UInt8 {
        precondition(has(1, at: offset), "ACPI read out of bounds")
        return buffer[offset]
    }

    func u16(_ offset: Int) -> UInt16 {
        precondition(has(2, at: offset), "ACPI read out of bounds")
        return UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) -> UInt32 {
        precondition(has(4, at: offset), "ACPI read out of bounds")
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) -> UInt64 {
        precondition(has(8, at: offset), "ACPI read out of bounds")
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func oemID(_ offset: Int) -> ACPIOEMID {
        var value: UInt64 = 0
        for i in 0..<ACPIOEMID.length { value |= UInt64(u8(offset + i)) << (8 * UInt64(i)) }
        return ACPIOEMID(raw: value)
    }

    /// ACPI checksums are defined so that all bytes of the structure sum to zero mod 256.
    func checksumIsValid(count length: Int) -> Bool {
        precondition(has(length, at: 0), "ACPI checksum out of bounds")
        var sum: UInt8 = 0
        for i in 0..<length { sum &+= buffer[i] }
        return sum == 0
    }
}

/// Namespace for the discovery entry points (see ACPI.swift, RSDP.swift, ACPITables.swift).
enum ACPI {
    /// Upper bound on any table's length: QEMU's tables are a few hundred bytes, real
    /// machines' DSDTs reach a few hundred KiB; a larger length is corruption.
    static let maxTableLength = 1 << 20

    /// The only way the parsers touch memory. Rejects ranges that wrap past 2^64 and
    /// buffers shorter than asked for, so a faulty reader cannot cause an out-of-bounds
    /// read further on.
    static func read<R: PhysicalMemoryReader>(_ reader: R, at address: UInt64, count: Int) -> ACPIBytes? {
        guard count >= 0, address <= UInt64.max - UInt64(count),
              let buffer = reader.bytes(at: address, count: count), buffer.count >= count
        else { return nil }
        return ACPIBytes(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
}
