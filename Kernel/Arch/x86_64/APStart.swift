// Starting an application processor (Intel SDM vol. 3, "MP initialization"):
// copy the real-mode trampoline (Boot/trampoline.asm) below 1 MiB, fill its data
// block, then INIT, 10 ms, STARTUP, and a second STARTUP only if the first one
// did not get the AP running. BOOT-ONLY CODE.

enum APStart {
    static let trampolinePhysical: UInt64 = 0x8000
    static var startupVector: UInt8 { UInt8(trampolinePhysical >> 12) }

    /// Field offsets in the trampoline's data block.
    private enum Field: Int { case cr3 = 0, efer = 8, stackTop = 16, entry = 24, argument = 32, started = 40 }

    private static var data: UnsafeMutableRawPointer {
        let offset = LinkerSymbols.trampolineData - LinkerSymbols.trampolineStart
        return AddressSpace.virtual(trampolinePhysical) + offset
    }

    /// Copies the trampoline to its low-memory page (reserved: below 1 MiB is never
    /// handed out by the page allocator).
    static func installTrampoline() {
        let size = LinkerSymbols.trampolineEnd - LinkerSymbols.trampolineStart
        precondition(size <= 4096, "AP trampoline larger than a page")
        AddressSpace.virtual(trampolinePhysical).copyMemory(from: LinkerSymbols.trampolineStart, byteCount: size)
    }

    typealias Entry = @convention(c) (UInt64) -> Void

    /// Starts the AP with `apicID`; it will call `entry(argument)` on `stackTop`.
    /// Returns false if the AP never reached the trampoline (after both STARTUPs).
    static func start(apicID: UInt32, entry: Entry, argument: UInt64, stackTop: UInt64) -> Bool {
        let d = data
        d.storeBytes(of: CPU.cr3, toByteOffset: Field.cr3.rawValue, as: UInt64.self)
        d.storeBytes(of: MSR.efer.read(), toByteOffset: Field.efer.rawValue, as: UInt64.self)
        d.storeBytes(of: stackTop, toByteOffset: Field.stackTop.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt64(UInt(bitPattern: unsafeBitCast(entry, to: UnsafeRawPointer.self))),
                     toByteOffset: Field.entry.rawValue, as: UInt64.self)
        d.storeBytes(of: argument, toByteOffset: Field.argument.rawValue, as: UInt64.self)
        d.storeBytes(of: UInt32(0), toByteOffset: Field.started.rawValue, as: UInt32.self)
        CPU.mfence()   // the data block is complete before the AP can read it

        LocalAPIC.sendIPI(to: apicID, delivery: .initialize, level: true)
        TSC.delay(microseconds: 10_000)
        for _ in 0..<2 {
            LocalAPIC.sendIPI(to: apicID, vector: startupVector, delivery: .startup)
            // The AP sets `started` as its first act in real mode.
            let deadline = TSC.now &+ TSC.ticksPerMs * 20
            while TSC.now < deadline {
                if started(d) { return true }
                CPU.pause()
            }
        }
        return started(d)
    }

    private static func started(_ d: UnsafeMutableRawPointer) -> Bool {
        CPU.compilerBarrier()
        return d.load(fromByteOffset: Field.started.rawValue, as: UInt32.self) != 0
    }
}
