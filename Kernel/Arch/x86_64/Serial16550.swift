// COM1, a 16550 UART at 115200 8N1, polled. The console lock (Kern/Debug/Console.swift)
// serialises whole lines above this; this file only moves bytes.

struct Serial16550 {
    let base: IOPort
    static let com1 = Serial16550(base: IOPort(0x3F8))

    // Register offsets from the base port.
    private var data: IOPort { base }                 // THR/RBR (DLAB=0), DLL (DLAB=1)
    private var interruptEnable: IOPort { base.offset(1) }   // IER, DLM (DLAB=1)
    private var fifoControl: IOPort { base.offset(2) }
    private var lineControl: IOPort { base.offset(3) }
    private var modemControl: IOPort { base.offset(4) }
    private var lineStatus: IOPort { base.offset(5) }

    /// Returns false when no UART answers (loopback test failed).
    @discardableResult
    func initialize() -> Bool {
        interruptEnable.write8(0x00)          // polled for now
        lineControl.write8(0x80)              // DLAB on
        data.write8(0x01)                     // divisor 1 = 115200 baud
        interruptEnable.write8(0x00)
        lineControl.write8(0x03)              // 8 data bits, no parity, 1 stop; DLAB off
        // FIFOs on, clear only the transmit FIFO: input typed (or piped) before
        // the kernel got here stays in the receive FIFO. 14-byte threshold.
        fifoControl.write8(0xC5)
        modemControl.write8(0x1E)             // loopback mode for the self-test
        data.write8(0xAE)
        let ok = data.read8() == 0xAE
        modemControl.write8(0x0F)             // normal mode: DTR, RTS, OUT1, OUT2
        return ok
    }

    /// Interrupt on received data (IER bit 0); the FIFO's 14-byte threshold
    /// and its character timeout both raise it.
    func enableReceiveInterrupts() { interruptEnable.write8(0x01) }

    func put(_ byte: UInt8) {
        // Wait for the transmit holding register to empty (LSR bit 5), bounded so a
        // missing UART cannot hang the kernel.
        var spins = 0
        while lineStatus.read8() & 0x20 == 0 && spins < 100_000 { spins += 1 }
        data.write8(byte)
    }

    /// A received byte, if one is waiting (LSR bit 0).
    func poll() -> UInt8? {
        lineStatus.read8() & 0x01 != 0 ? data.read8() : nil
    }
}
