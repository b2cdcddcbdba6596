// The I/O APIC: routes a device interrupt to a vector on one CPU. Only what the
// serial console needs: one redirection entry per routed ISA IRQ, after the
// MADT's interrupt source overrides (polarity, trigger). The chip's page is
// mapped uncached by the boot page tables.

enum IOAPIC {
    private static func select(_ base: UInt64, _ reg: UInt32) { MMIORegister32(address: base).write(reg) }
    private static func read(_ base: UInt64, _ reg: UInt32) -> UInt32 {
        select(base, reg)
        return MMIORegister32(address: base + 0x10).read()
    }
    private static func write(_ base: UInt64, _ reg: UInt32, _ v: UInt32) {
        select(base, reg)
        MMIORegister32(address: base + 0x10).write(v)
    }

    /// Routes ISA IRQ `irq` to `vector` on the CPU with local APIC id `apicID`
    /// (physical destination, fixed delivery). False when no I/O APIC of the
    /// MADT serves the IRQ's global system interrupt.
    static func route(isaIRQ irq: UInt8, vector: UInt8, apicID: UInt32, madt: MADTInfo) -> Bool {
        guard apicID <= 0xFF else { return false }              // 8-bit destination without remapping
        let r = madt.isaRoute(irq: irq)
        for chip in madt.ioAPICs {
            let base = UInt64(chip.address)
            let entries = (read(base, 1) >> 16 & 0xFF) + 1      // IOAPICVER: max redirection entry
            guard r.gsi >= chip.gsiBase, r.gsi < chip.gsiBase + entries else { continue }
            let pin = r.gsi - chip.gsiBase
            var low = UInt32(vector)
            if r.activeLow { low |= 1 << 13 }
            if r.levelTriggered { low |= 1 << 15 }
            write(base, 0x10 + 2 * pin, 1 << 16)                 // masked while it changes
            write(base, 0x11 + 2 * pin, apicID << 24)
            write(base, 0x10 + 2 * pin, low)                     // unmasked
            return true
        }
        return false
    }
}
