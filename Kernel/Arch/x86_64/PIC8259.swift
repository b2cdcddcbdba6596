// The legacy 8259 interrupt controllers. Quartet uses the local APIC (and later
// the I/O APIC), so the PICs are remapped away from the exception vectors and
// masked completely. Remapping first matters: a spurious PIC interrupt on the
// default vectors 8-15 would look like a double fault or a #GP.

enum PIC8259 {
    static let masterCommand = IOPort(0x20), masterData = IOPort(0x21)
    static let slaveCommand = IOPort(0xA0), slaveData = IOPort(0xA1)
    static let vectorBase: UInt8 = 0x20      // 0x20-0x2F, see Vectors

    static func remapAndMaskAll() {
        masterCommand.write8(0x11); slaveCommand.write8(0x11)   // ICW1: init, ICW4 follows
        masterData.write8(vectorBase); slaveData.write8(vectorBase + 8)   // ICW2: vector base
        masterData.write8(0x04); slaveData.write8(0x02)         // ICW3: cascade on IRQ2
        masterData.write8(0x01); slaveData.write8(0x01)         // ICW4: 8086 mode
        masterData.write8(0xFF); slaveData.write8(0xFF)         // mask every line
    }
}

/// The interrupt vectors Quartet uses, in one place.
enum Vectors {
    static let picSpuriousMaster: Int = 0x27
    static let picSpuriousSlave: Int = 0x2F
    static let serial: Int = 0x40            // COM1 receive, through the I/O APIC
    static let ipiQueue: Int = 0xE0          // LWKT IPI queue messages
    static let rendezvous: Int = 0xE1
    static let stopIPI: Int = 0xE2           // panic's stop as a fixed IPI: negative control only
    static let waitWakeup: Int = 0xE3        // ends a halting wait (Kern/SMP/HaltingWait.swift)
    static let benchPing: Int = 0xE9         // bench: raw IPI ping-pong
    static let benchPong: Int = 0xEA
    static let benchBroadcast: Int = 0xEB    // bench: raw broadcast IPI, acknowledged
    static let timer: Int = 0xEF             // local APIC timer tick
    static let apicError: Int = 0xFE
    static let apicSpurious: Int = 0xFF
}
