// The interrupt descriptor table: one table shared by all CPUs (the handlers are
// the same everywhere; per-CPU state is reached through GS). Every vector points at
// its stub in Boot/interrupts.asm, which calls Traps.dispatch.

enum IDT {
    private static let entries = 256
    // 16 bytes per gate, plus the 10-byte IDTR; allocated once, never freed.
    private static var table: UnsafeMutableRawPointer? = nil
    private static var idtr: UnsafeMutableRawPointer? = nil

    /// Builds the table in `storage` (>= 4096 + 16 bytes, zeroed) and loads it.
    static func install(storage: UnsafeMutableRawPointer) {
        table = storage
        idtr = storage + 4096
        let stubAddresses = LinkerSymbols.isrStubTable
        for v in 0..<entries {
            let handler = stubAddresses.load(fromByteOffset: v * 8, as: UInt64.self)
            setGate(vector: v, handler: handler, ist: ist(for: v), userCallable: false)
        }
        idtr!.storeBytes(of: UInt16(entries * 16 - 1), as: UInt16.self)
        idtr!.storeBytes(of: UInt64(UInt(bitPattern: table!)), toByteOffset: 2, as: UInt64.self)
        loadOnThisCPU()
    }

    static func loadOnThisCPU() { CPU.loadIDT(UnsafeRawPointer(idtr!)) }

    /// Lets user mode raise `vector` with INT n (DPL 3), e.g. a breakpoint or syscall gate.
    static func allowFromUserMode(vector: Int) {
        let gate = table! + vector * 16
        let handler = UInt64(gate.load(fromByteOffset: 0, as: UInt16.self))
            | UInt64(gate.load(fromByteOffset: 6, as: UInt16.self)) << 16
            | UInt64(gate.load(fromByteOffset: 8, as: UInt32.self)) << 32
        setGate(vector: vector, handler: handler, ist: ist(for: vector), userCallable: true)
    }

    private static func ist(for vector: Int) -> UInt8 {
        switch vector {
        case 2: return ISTSlot.nmi.rawValue
        case 8: return ISTSlot.doubleFault.rawValue
        case 18: return ISTSlot.machineCheck.rawValue
        default: return 0
        }
    }

    private static func setGate(vector: Int, handler: UInt64, ist: UInt8, userCallable: Bool) {
        let gate = table! + vector * 16
        // Interrupt gate (type 0xE): the CPU clears IF on entry, so handlers start
        // with interrupts off and the trap frame is consistent.
        let typeAttr: UInt8 = 0x8E | (userCallable ? 0x60 : 0)
        gate.storeBytes(of: UInt16(truncatingIfNeeded: handler), toByteOffset: 0, as: UInt16.self)
        gate.storeBytes(of: Selector.kernelCode, toByteOffset: 2, as: UInt16.self)
        gate.storeBytes(of: ist, toByteOffset: 4, as: UInt8.self)
        gate.storeBytes(of: typeAttr, toByteOffset: 5, as: UInt8.self)
        gate.storeBytes(of: UInt16(truncatingIfNeeded: handler >> 16), toByteOffset: 6, as: UInt16.self)
        gate.storeBytes(of: UInt32(truncatingIfNeeded: handler >> 32), toByteOffset: 8, as: UInt32.self)
        gate.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
    }
}
