// Starting application processors (Intel SDM vol. 3, "MP initialization"): copy
// the real-mode trampoline (Boot/trampoline.asm) below 1 MiB, fill its data block
// and a start table (one entry per AP: APIC ID, stack, argument), then INIT,
// 10 ms, STARTUP, and a second STARTUP to the APs the first one did not reach.
// The APs may be started all at once (parallel bring-up, as Linux since 6.5):
// each finds its own entry by its APIC ID, so nothing in the data block is per
// AP. BOOT-ONLY CODE.

struct APStartEntry {
    var apicID: UInt32
    /// Set to 1 by the AP when it reached long mode (trampoline).
    var reached: UInt32
    var stackTop: UInt64
    var argument: UInt64
}

enum APStart {
    static let trampolinePhysical: UInt64 = 0x8000
    static var startupVector: UInt8 { UInt8(trampolinePhysical >> 12) }

    /// Field offsets in the trampoline's data block.
    private enum Field: Int { case cr3 = 0, efer = 8, table = 16, entry = 24, count = 32, started = 40 }

    private static var data: UnsafeMutableRawPointer {
        let offset = LinkerSymbols.trampolineData - LinkerSymbols.trampolineStart
        return AddressSpace.virtual(trampolinePhysical) + offset
    }

    typealias Entry = @convention(c) (UInt64) -> Void

    /// The start table: written by the boot CPU before any STARTUP, then only the
    /// `reached` words change (each by its AP). Never freed: an AP that starts
    /// late still reads it.
    nonisolated(unsafe) private static var table = UnsafeMutablePointer<APStartEntry>.allocate(capacity: 1)
    nonisolated(unsafe) private static var count = 0

    /// Copies the trampoline to its low-memory page (reserved: below 1 MiB is never
    /// handed out by the page allocator) and fills its data block.
    static func prepare(entries: [APStartEntry], entry: Entry) {
        let size = LinkerSymbols.trampolineEnd - LinkerSymbols.trampolineStart
        precondition(size <= 4096, "AP trampoline larger than a page")
        AddressSpace.virtual(trampolinePhysical).copyMemory(from: LinkerSymbols.trampolineStart, byteCount: size)
        table = .allocate(capacity: max(1, entries.count))
        for (i, e) in entries.enumerated() { (table + i).initialize(to: e) }
        count = entries.count
        let d = data
        d.storeBytes(of: CPU.cr3, toByteOffset: Field.cr3.rawValue, as: UInt64.self)
        d.storeBytes(of: MSR.efer.read(), toByteOffset: Field.efer.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt64(UInt(bitPattern: table)), toByteOffset: Field.table.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt64(UInt(bitPattern: unsafeBitCast(entry, to: UnsafeRawPointer.self))),
                     toByteOffset: Field.entry.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt64(count), toByteOffset: Field.count.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt32(0), toByteOffset: Field.started.rawValue, as: UInt32.self)
        CPU.mfence()   // the data block and table are complete before any AP can read them
    }

    /// Starts the APs at `indices` of the table at once: INIT to each, one 10 ms
    /// wait, STARTUP to each, and after `retryMs` a second STARTUP to those that
    /// have not reached long mode (to an AP already running it is ignored: only a
    /// CPU waiting for SIPI takes one).
    static func start(_ indices: [Int], retryMs: UInt64 = 20) {
        for i in indices { LocalAPIC.sendIPI(to: table[i].apicID, delivery: .initialize, level: true) }
        TSC.delay(microseconds: 10_000)
        for i in indices { LocalAPIC.sendIPI(to: table[i].apicID, vector: startupVector, delivery: .startup) }
        let deadline = TSC.now &+ TSC.ticksPerMs * retryMs
        while TSC.now < deadline && !indices.allSatisfy({ reached($0) }) { CPU.pause() }
        for i in indices where !reached(i) {
            LocalAPIC.sendIPI(to: table[i].apicID, vector: startupVector, delivery: .startup)
        }
    }

    /// True once the AP of table entry `i` reached long mode.
    static func reached(_ i: Int) -> Bool {
        CPU.compilerBarrier()
        return UnsafeMutableRawPointer(table + i).load(fromByteOffset: 4, as: UInt32.self) != 0
    }

    /// APs the STARTUP IPIs reached (each counts itself in real mode).
    static var startedCount: Int {
        CPU.compilerBarrier()
        return Int(data.load(fromByteOffset: Field.started.rawValue, as: UInt32.self))
    }
}
