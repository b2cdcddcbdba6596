// 4-level page tables. The boot stub (Boot/multiboot.asm) identity-maps 0..4 GiB
// with 2 MiB pages: the kernel image, all physical memory the kernel touches, the
// APIC registers. Everything else (kernel stacks with guard pages, later user
// space) is mapped here with 4 KiB pages. Nothing Swift points at may live above
// 2^47 (Swift keeps flag bits in the top bits of object pointers). Page-table pages come from the physical page allocator
// through `allocateTablePage`, set by the kernel once that allocator exists.

enum PageFlags {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let user: UInt64 = 1 << 2
    static let writeThrough: UInt64 = 1 << 3
    static let cacheDisable: UInt64 = 1 << 4
    static let huge: UInt64 = 1 << 7
    static let global: UInt64 = 1 << 8
    static let noExecute: UInt64 = 1 << 63
    static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
}

enum AddressSpace {
    /// Physical memory the kernel can reach through the boot identity map.
    static let directMapSize: UInt64 = 4 << 30
    /// Kernel stacks, each with an unmapped guard page below it (PML4 slot 1).
    static let kernelStacksBase: UInt64 = 0x0000_0080_0000_0000

    /// A physical address below 4 GiB as a kernel pointer (identity map).
    static func virtual(_ physical: UInt64) -> UnsafeMutableRawPointer {
        precondition(physical != 0 && physical < directMapSize, "physical address outside the direct map")
        return UnsafeMutableRawPointer(bitPattern: UInt(physical))!
    }
    /// The physical address behind a kernel pointer below 4 GiB.
    static func physical(_ va: UInt64) -> UInt64 { va }
}

enum Paging {
    /// Returns the physical address of a zeroed page for a page table, or nil.
    nonisolated(unsafe) static var allocateTablePage: (() -> UInt64?)? = nil

    private static func table(_ physical: UInt64) -> UnsafeMutablePointer<UInt64> {
        AddressSpace.virtual(physical).assumingMemoryBound(to: UInt64.self)
    }

    private static func indices(_ va: UInt64) -> (Int, Int, Int, Int) {
        (Int((va >> 39) & 511), Int((va >> 30) & 511), Int((va >> 21) & 511), Int((va >> 12) & 511))
    }

    /// The physical address `va` maps to in the current address space, or nil.
    /// Never faults: the fault reporter uses it to check pointers before reading.
    static func translate(_ va: UInt64) -> UInt64? {
        // Non-canonical addresses are never mapped.
        let top = va >> 47
        guard top == 0 || top == 0x1FFFF else { return nil }
        let (i4, i3, i2, i1) = indices(va)
        let pml4e = table(CPU.cr3 & PageFlags.addressMask)[i4]
        guard pml4e & PageFlags.present != 0 else { return nil }
        let pdpte = table(pml4e & PageFlags.addressMask)[i3]
        guard pdpte & PageFlags.present != 0 else { return nil }
        if pdpte & PageFlags.huge != 0 {
            return (pdpte & 0x000F_FFFF_C000_0000) | (va & 0x3FFF_FFFF)
        }
        let pde = table(pdpte & PageFlags.addressMask)[i2]
        guard pde & PageFlags.present != 0 else { return nil }
        if pde & PageFlags.huge != 0 {
            return (pde & 0x000F_FFFF_FFE0_0000) | (va & 0x1F_FFFF)
        }
        let pte = table(pde & PageFlags.addressMask)[i1]
        guard pte & PageFlags.present != 0 else { return nil }
        return (pte & PageFlags.addressMask) | (va & 0xFFF)
    }

    static func isMapped(_ va: UInt64, length: UInt64 = 1) -> Bool {
        guard length > 0, va <= UInt64.max - (length - 1) else { return false }
        var page = va & ~0xFFF
        let last = (va + length - 1) & ~0xFFF
        while true {
            if translate(page) == nil { return false }
            if page == last { return true }
            page += 0x1000
        }
    }

    /// Maps one 4 KiB page in the current (kernel) address space. Intermediate
    /// tables are created on demand; mapping inside a 2 MiB page is refused.
    @discardableResult
    static func map(virtual va: UInt64, physical pa: UInt64, flags: UInt64) -> Bool {
        let (i4, i3, i2, i1) = indices(va)
        guard let pdpt = nextLevel(table(CPU.cr3 & PageFlags.addressMask), i4, user: flags & PageFlags.user != 0),
              let pd = nextLevel(pdpt, i3, user: flags & PageFlags.user != 0),
              let pt = nextLevel(pd, i2, user: flags & PageFlags.user != 0) else { return false }
        pt[i1] = (pa & PageFlags.addressMask) | flags | PageFlags.present
        CPU.invalidatePage(va)
        return true
    }

    /// Replaces the boot map's first 2 MiB page with 4 KiB pages and leaves page 0
    /// unmapped, so a null-pointer dereference faults instead of reading the BIOS
    /// data area. Call once, on the boot CPU, before any other CPU starts.
    static func unmapNullPage() -> Bool {
        let pml4 = table(CPU.cr3 & PageFlags.addressMask)
        let pdpt = table(pml4[0] & PageFlags.addressMask)
        let pd = table(pdpt[0] & PageFlags.addressMask)
        guard pd[0] & PageFlags.huge != 0 else { return true }   // already split
        guard let ptPhysical = allocateTablePage?() else { return false }
        let pt = table(ptPhysical)
        let keep = pd[0] & (PageFlags.writable | PageFlags.cacheDisable | PageFlags.writeThrough)
        for i in 1..<512 { pt[i] = UInt64(i) * 4096 | keep | PageFlags.present }
        pt[0] = 0
        pd[0] = ptPhysical | PageFlags.present | PageFlags.writable
        CPU.cr3 = CPU.cr3          // flush the whole TLB: the 2 MiB entry is gone
        return true
    }

    /// Removes a 4 KiB mapping; returns the physical page it pointed to.
    @discardableResult
    static func unmap(virtual va: UInt64) -> UInt64? {
        guard let pa = translate(va) else { return nil }
        let (i4, i3, i2, i1) = indices(va)
        let pdpt = table(table(CPU.cr3 & PageFlags.addressMask)[i4] & PageFlags.addressMask)
        let pd = table(pdpt[i3] & PageFlags.addressMask)
        guard pd[i2] & PageFlags.huge == 0 else { return nil }
        let pt = table(pd[i2] & PageFlags.addressMask)
        pt[i1] = 0
        CPU.invalidatePage(va)
        return pa & PageFlags.addressMask
    }

    private static func nextLevel(_ t: UnsafeMutablePointer<UInt64>, _ i: Int, user: Bool)
        -> UnsafeMutablePointer<UInt64>? {
        let e = t[i]
        if e & PageFlags.present != 0 {
            if e & PageFlags.huge != 0 { return nil }
            if user && e & PageFlags.user == 0 { t[i] = e | PageFlags.user }
            return table(e & PageFlags.addressMask)
        }
        guard let page = allocateTablePage?() else { return nil }
        t[i] = page | PageFlags.present | PageFlags.writable | (user ? PageFlags.user : 0)
        return table(page)
    }
}
