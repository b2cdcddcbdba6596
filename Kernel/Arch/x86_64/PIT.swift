// The 8254 programmable interval timer, used once per boot as the reference
// clock that calibrates the TSC and the local APIC timer. Channel 2 is used
// because its gate and output are readable through port 0x61 without interrupts.

enum PIT {
    static let frequency: UInt64 = 1_193_182     // Hz
    private static let channel2 = IOPort(0x42)
    private static let command = IOPort(0x43)
    private static let gate = IOPort(0x61)

    /// Busy-waits `ms` milliseconds (<= 50) measured by the PIT alone, calling
    /// `start` right after the count begins and returning when it ends.
    static func measure(milliseconds ms: UInt64, start: () -> Void) {
        let count = frequency * ms / 1000
        precondition(count > 0 && count <= 0xFFFF, "PIT interval out of range")
        // Gate off and speaker off while programming.
        gate.write8(gate.read8() & ~0x03)
        command.write8(0xB0)                          // channel 2, lo/hi byte, mode 0, binary
        channel2.write8(UInt8(count & 0xFF))
        channel2.write8(UInt8(count >> 8))
        gate.write8((gate.read8() & ~0x02) | 0x01)    // gate on: counting starts
        start()
        var guardSpins = 0
        while gate.read8() & 0x20 == 0 && guardSpins < 50_000_000 { guardSpins += 1 }   // OUT2 goes high at 0
        gate.write8(gate.read8() & ~0x01)
    }
}
