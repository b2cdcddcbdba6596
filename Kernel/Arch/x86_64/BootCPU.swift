// The boot CPU's descriptor tables and IST stacks, in .bss so that faults are
// reported before any allocator exists. Application processors get theirs from
// the page allocator when they start.

enum BootCPU {
    /// Layout of the static area: [tables page][IDT 2 pages][IST stacks 3 x 16 KiB]
    static let istStackSize = 16 * 1024

    /// The GDT and TSS; the per-CPU header (GS) comes next, then the IDT (E6).
    static func loadDescriptorTables() {
        let base = LinkerSymbols.bspArchArea          // Boot/bootdata.asm
        let ist = base + 3 * 4096
        func top(_ i: Int) -> UInt64 { UInt64(UInt(bitPattern: ist + (i + 1) * istStackSize)) }
        let tables = DescriptorTables(page: base, istTops: (df: top(0), nmi: top(1), mc: top(2)))
        tables.load()
    }

    /// The IDT: from here an NMI is taken through it.
    static func installIDT() {
        IDT.install(storage: LinkerSymbols.bspArchArea + 4096)
    }
}
