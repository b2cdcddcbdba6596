// The local APIC of the calling CPU: xAPIC through uncached MMIO at 0xFEE00000
// (the boot map marks that page PCD|PWT), or x2APIC through MSRs when the CPU has
// it (CPUID.1:ECX[21]) and `apic=xapic` is not given. Every CPU runs the same code
// on its own APIC; nothing here is shared state except the mode, chosen on the
// boot CPU before any AP starts.

enum LocalAPIC {
    enum Mode { case xapic, x2apic }
    nonisolated(unsafe) static var mode = Mode.xapic
    nonisolated(unsafe) static var mmioBase: UInt64 = 0xFEE0_0000

    // Register offsets (xAPIC MMIO offsets; x2APIC MSR = 0x800 + offset >> 4).
    enum Reg: Int {
        case id = 0x20, version = 0x30, tpr = 0x80, eoi = 0xB0, svr = 0xF0, esr = 0x280
        case icrLow = 0x300, icrHigh = 0x310, lvtTimer = 0x320, lvtLint0 = 0x350
        case lvtLint1 = 0x360, lvtError = 0x370, timerInitial = 0x380, timerCurrent = 0x390
        case timerDivide = 0x3E0
    }

    static var hasX2APIC: Bool { CPU.cpuid(1).ecx & (1 << 21) != 0 }

    /// Chooses the mode (boot CPU, once) and records the MMIO base from the MADT.
    static func configure(preferX2APIC: Bool, mmioBase base: UInt64) {
        mmioBase = base
        mode = preferX2APIC && hasX2APIC ? .x2apic : .xapic
    }

    static func read(_ r: Reg) -> UInt32 {
        switch mode {
        case .xapic: return MMIORegister32(address: mmioBase + UInt64(r.rawValue)).read()
        case .x2apic: return UInt32(truncatingIfNeeded: rdmsr(0x800 + UInt32(r.rawValue >> 4)))
        }
    }

    static func write(_ r: Reg, _ v: UInt32) {
        switch mode {
        case .xapic: MMIORegister32(address: mmioBase + UInt64(r.rawValue)).write(v)
        case .x2apic: wrmsr(0x800 + UInt32(r.rawValue >> 4), UInt64(v))
        }
    }

    private static func rdmsr(_ n: UInt32) -> UInt64 { RawMSR(n).read() }
    private static func wrmsr(_ n: UInt32, _ v: UInt64) { RawMSR(n).write(v) }

    /// This CPU's APIC id (8 bits in xAPIC mode, 32 in x2APIC mode).
    static var id: UInt32 {
        mode == .x2apic ? read(.id) : read(.id) >> 24
    }

    /// Enables the APIC on the calling CPU: global enable in IA32_APIC_BASE (plus
    /// x2APIC mode when chosen), software enable with the spurious vector, error
    /// interrupts on, LINT0 masked (the 8259s are masked too), LINT1 as NMI when
    /// the MADT says so for this processor.
    static func enableOnThisCPU(lint1IsNMI: Bool) {
        var base = MSR.apicBase.read()
        base |= 1 << 11                                   // global enable
        if mode == .x2apic { base |= 1 << 10 }
        MSR.apicBase.write(base)
        write(.tpr, 0)                                    // accept every priority
        write(.lvtLint0, 1 << 16)                         // masked
        write(.lvtLint1, lint1IsNMI ? (4 << 8) : (1 << 16))   // delivery mode NMI
        write(.lvtError, UInt32(Vectors.apicError))
        write(.esr, 0); write(.esr, 0)                    // clear by back-to-back writes
        write(.svr, 0x100 | UInt32(Vectors.apicSpurious))  // software enable
        eoi()
    }

    static func eoi() { write(.eoi, 0) }

    // MARK: inter-processor interrupts

    enum Delivery: UInt32 { case fixed = 0, nmi = 4, initialize = 5, startup = 6 }

    /// Sends an IPI and, in xAPIC mode, waits (bounded) for the delivery-status bit
    /// to clear. Returns false when it did not clear in time. The caller must keep
    /// interrupts off across the two ICR writes (xAPIC) so no handler on this CPU
    /// sends its own IPI in between.
    @discardableResult
    static func sendIPI(to apicID: UInt32, vector: UInt8 = 0, delivery: Delivery = .fixed,
                        level: Bool = true, shorthand: UInt32 = 0) -> Bool {
        let low = UInt32(vector) | delivery.rawValue << 8 | (level ? 1 << 14 : 0) | shorthand << 18
        let flags = CPU.saveFlagsAndDisableInterrupts()
        defer { CPU.restoreFlags(flags) }
        switch mode {
        case .x2apic:
            // One 64-bit MSR write; no delivery status in x2APIC mode. WRMSR to the
            // x2APIC range is not serializing: without MFENCE;LFENCE the IPI can
            // overtake our earlier stores (the message it announces), as Linux's
            // weak_wrmsr_fence() notes. The xAPIC's MMIO write is ordered anyway.
            CPU.mfence()
            CPU.lfence()
            wrmsr(0x830, UInt64(apicID) << 32 | UInt64(low))
            return true
        case .xapic:
            guard waitIdle() else { return false }
            write(.icrHigh, apicID << 24)
            write(.icrLow, low)
            return waitIdle()
        }
    }

    /// Sends `vector` to every CPU but this one (ICR shorthand 3).
    @discardableResult
    static func sendToAllButSelf(vector: UInt8, delivery: Delivery = .fixed) -> Bool {
        sendIPI(to: 0, vector: vector, delivery: delivery, shorthand: 3)
    }

    private static func waitIdle() -> Bool {
        var spins = 0
        while read(.icrLow) & (1 << 12) != 0 {
            spins += 1
            if spins > 1_000_000 { return false }
            CPU.pause()
        }
        return true
    }

    // MARK: timer

    static let timerDivideBy16: UInt32 = 0x3

    /// Starts the timer counting down from its maximum, masked (for calibration).
    static func startFreeRunning() {
        write(.timerDivide, timerDivideBy16)
        write(.lvtTimer, 1 << 16)
        write(.timerInitial, UInt32.max)
    }

    static var timerCurrent: UInt32 { read(.timerCurrent) }

    static func startPeriodic(vector: Int, initialCount: UInt32) {
        write(.timerDivide, timerDivideBy16)
        write(.lvtTimer, UInt32(vector) | 1 << 17)        // periodic mode
        write(.timerInitial, initialCount)
    }

    static func stopTimer() {
        write(.lvtTimer, 1 << 16)
        write(.timerInitial, 0)
    }
}

/// An MSR by number (for the x2APIC register block, which has no names in `MSR`).
struct RawMSR {
    let number: UInt32
    init(_ n: UInt32) { number = n }
    func read() -> UInt64 { MSRAccess.read(number) }
    func write(_ v: UInt64) { MSRAccess.write(number, v) }
}
