// Physical memory as the pure-logic parsers see it (Multiboot, ACPI): a reader that
// refuses what it cannot provide, address ranges, and memory-map region types.

/// Access to physical memory. Returns nil unless all of
/// [address, address + count) is readable; must not trap on wrap-around.
protocol PhysicalMemoryReader {
    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer?
}

/// A physical address range [base, end).
struct PhysRange: Equatable {
    var base: UInt64
    var end: UInt64
    var length: UInt64 { end - base }
}

enum MemoryType: Equatable {
    case available          // 1
    case acpiReclaimable    // 3: holds ACPI tables until they are parsed
    case acpiNVS            // 4
    case bad                // 5
    case reserved(UInt32)   // 2 and anything unknown: never touch

    init(raw: UInt32) {
        switch raw {
        case 1: self = .available
        case 3: self = .acpiReclaimable
        case 4: self = .acpiNVS
        case 5: self = .bad
        default: self = .reserved(raw)
        }
    }
}

/// A sanitised memory map entry: length > 0 and base + length does not wrap.
struct MemoryRegion: Equatable {
    var base: UInt64
    var length: UInt64
    var type: MemoryType
    var end: UInt64 { base + length }
}
