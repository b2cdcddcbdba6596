// Per-CPU GDT and TSS. Each CPU has its own because the TSS holds per-CPU stacks
// (rsp0 for entries from user mode, IST stacks for #DF, NMI and #MC) and the TSS
// descriptor's busy bit is per descriptor.
//
// Selector layout (SYSRET needs user data right below user code, STAR[63:48] = 0x10):
//   0x08 kernel code   0x10 kernel data   0x1B user data   0x23 user code   0x28 TSS

enum Selector {
    static let kernelCode: UInt16 = 0x08
    static let kernelData: UInt16 = 0x10
    static let userData: UInt16 = 0x18 | 3
    static let userCode: UInt16 = 0x20 | 3
    static let tss: UInt16 = 0x28
}

/// Interrupt-stack-table slots (1-based, as the IDT gate's IST field).
enum ISTSlot: UInt8 {
    case doubleFault = 1   // a kernel stack overflow faults again while pushing: #DF
    case nmi = 2           // an NMI can arrive on any stack, even a broken one
    case machineCheck = 3
}

/// One CPU's descriptor tables, laid out in one page it owns:
///   0   GDT, 8 entries     64  GDTR (10 bytes)     128  TSS (104 bytes)
///   256 the per-CPU header that GS points at (Kern/SMP/PerCPU.swift)
struct DescriptorTables {
    static let size = 4096
    let page: UnsafeMutableRawPointer

    private var gdt: UnsafeMutableRawPointer { page }
    private var gdtr: UnsafeMutableRawPointer { page + 64 }
    private var tss: UnsafeMutableRawPointer { page + 128 }
    private static let tssLimit = 104 - 1

    /// Wraps tables already built in `page`.
    init(existing page: UnsafeMutableRawPointer) { self.page = page }

    /// Builds the tables in `page` (zeroed by the caller); IST stacks are given by top.
    init(page: UnsafeMutableRawPointer, istTops: (df: UInt64, nmi: UInt64, mc: UInt64)) {
        self.page = page
        gdt.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)
        gdt.storeBytes(of: 0x00AF_9A00_0000_FFFF, toByteOffset: 8, as: UInt64.self)  // kernel code, L=1
        gdt.storeBytes(of: 0x00CF_9200_0000_FFFF, toByteOffset: 16, as: UInt64.self) // kernel data
        gdt.storeBytes(of: 0x00CF_F200_0000_FFFF, toByteOffset: 24, as: UInt64.self) // user data, DPL 3
        gdt.storeBytes(of: 0x00AF_FA00_0000_FFFF, toByteOffset: 32, as: UInt64.self) // user code, DPL 3
        // 64-bit TSS descriptor: 16 bytes, type 0x9 (available), present.
        let base = UInt64(UInt(bitPattern: page + 128))
        var low: UInt64 = UInt64(Self.tssLimit) & 0xFFFF
        low |= (base & 0xFFFF) << 16
        low |= ((base >> 16) & 0xFF) << 32
        low |= UInt64(0x89) << 40
        low |= ((base >> 24) & 0xFF) << 56
        gdt.storeBytes(of: low, toByteOffset: 40, as: UInt64.self)
        gdt.storeBytes(of: base >> 32, toByteOffset: 48, as: UInt64.self)
        // GDTR: 16-bit limit, 64-bit base (unaligned store is fine).
        gdtr.storeBytes(of: UInt16(7 * 8 - 1), as: UInt16.self)
        gdtr.storeBytes(of: UInt64(UInt(bitPattern: gdt)), toByteOffset: 2, as: UInt64.self)
        // TSS: rsp0 at 4, IST1..7 at 36 + 8*(n-1), I/O map base past the limit (no map).
        tss.storeBytes(of: istTops.df, toByteOffset: 36, as: UInt64.self)
        tss.storeBytes(of: istTops.nmi, toByteOffset: 44, as: UInt64.self)
        tss.storeBytes(of: istTops.mc, toByteOffset: 52, as: UInt64.self)
        tss.storeBytes(of: UInt16(104), toByteOffset: 102, as: UInt16.self)
    }

    /// Loads GDT, segment registers and TR on the calling CPU.
    func load() {
        CPU.loadGDT(UnsafeRawPointer(gdtr))
        CPU.reloadSegments(code: Selector.kernelCode, data: Selector.kernelData)
        CPU.loadTaskRegister(Selector.tss)
    }

    /// The stack the CPU switches to on an interrupt from user mode.
    func setKernelStack(_ top: UInt64) {
        tss.storeBytes(of: top, toByteOffset: 4, as: UInt64.self)
    }

    func istTop(_ slot: ISTSlot) -> UInt64 {
        tss.load(fromByteOffset: 36 + 8 * (Int(slot.rawValue) - 1), as: UInt64.self)
    }
}
