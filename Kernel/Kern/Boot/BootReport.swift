// What the kernel tells the console at boot: the multiboot memory map, problems
// found in the boot information, and the memory summary.

enum BootReport {
    static func multibootProblems(_ info: MultibootInfo) {
        for i in 0..<info.problems.count {
            let p = info.problems[i]
            Console.line { l in
                l.write(p.severity == .error ? "multiboot: error: " : "multiboot: warning: ")
                l.write(p.reason); l.write(" ("); l.hex(p.detail); l.write(")")
            }
        }
        if info.problems.dropped > 0 {
            Console.line { $0.write("multiboot: "); $0.dec(info.problems.dropped); $0.write(" more problems not shown") }
        }
    }

    static func memoryMap(_ info: MultibootInfo) {
        Console.print("memory map (from the boot loader):")
        info.forEachMemoryRegion(DirectMapReader()) { r in
            Console.line { l in
                l.write("  "); l.hex(r.base, width: 12); l.write(" - "); l.hex(r.end, width: 12)
                l.write("  "); l.padRight(typeName(r.type), width: 18); l.bytes(r.length)
            }
        }
    }

    static func typeName(_ t: MemoryType) -> StaticString {
        switch t {
        case .available: return "available"
        case .acpiReclaimable: return "ACPI reclaimable"
        case .acpiNVS: return "ACPI NVS"
        case .bad: return "bad"
        case .reserved: return "reserved"
        }
    }

    static func memorySummary() {
        let image = PhysicalMemory.kernelImage
        let heap = Heap.statistics()
        Console.line { l in
            l.write("memory: "); l.bytes(UInt64(PhysicalMemory.totalPages) * 4096); l.write(" usable, ")
            l.bytes(UInt64(PhysicalMemory.freePages) * 4096); l.write(" free; kernel image ")
            l.hex(image.base); l.write("-"); l.hex(image.end); l.write(" ("); l.bytes(image.length); l.write(")")
        }
        Console.line { l in
            l.write("memory: heap "); l.dec(heap.allocations); l.write(" allocations, ")
            l.bytes(UInt64(heap.bytes)); l.write(" in use, "); l.dec(heap.pages); l.write(" pages held")
            if PhysicalMemory.ignoredAbove4GiB > 0 {
                l.write("; "); l.bytes(PhysicalMemory.ignoredAbove4GiB); l.write(" above 4 GiB not used")
            }
        }
    }
}
