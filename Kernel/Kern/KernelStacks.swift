// Kernel stacks live in their own region (AddressSpace.kernelStacksBase), each in
// a fixed-size slot whose lowest page is left unmapped: the guard page. Running
// off the bottom of a stack faults on the guard page; the CPU then cannot push the
// #PF frame on the same stack, raises #DF, and the #DF handler runs on its own IST
// stack and reports "kernel stack overflow" (FaultReport).
//
// Slots are tracked in a bitmap (1 = in use); a freed slot is reused.

enum KernelStacks {
    static let slotSize: UInt64 = 128 * 1024      // guard page + up to 124 KiB of stack
    static let maxSlots = 4096
    static let defaultPages = 16                  // 64 KiB
    static let lock = SpinLock("kernel stacks")
    nonisolated(unsafe) static var slotsInUse = InlineArray<64, UInt64>(repeating: 0)  // 4096 bits
    nonisolated(unsafe) static var liveCount = 0

    struct Stack {
        let slot: Int
        let pages: Int
        var bottom: UInt64 { AddressSpace.kernelStacksBase + UInt64(slot) * slotSize + 4096 }
        var top: UInt64 { bottom + UInt64(pages) * 4096 }
        var guardPage: UInt64 { bottom - 4096 }
    }

    /// Maps a new stack of `pages` pages (<= 31). Returns nil when out of memory.
    static func allocate(pages: Int = defaultPages) -> Stack? {
        precondition(pages >= 1 && UInt64(pages + 1) * 4096 <= slotSize, "kernel stack too large")
        lock.lock()
        var slot = -1
        for w in 0..<64 where slotsInUse[w] != UInt64.max {
            let bit = (~slotsInUse[w]).trailingZeroBitCount
            slotsInUse[w] |= 1 << UInt64(bit)
            slot = w * 64 + bit
            liveCount += 1
            break
        }
        lock.unlock()
        guard slot >= 0 else { return nil }
        let stack = Stack(slot: slot, pages: pages)
        for i in 0..<pages {
            guard let frame = PhysicalMemory.allocatePage() else {
                release(stack, mappedPages: i)
                return nil
            }
            let va = stack.bottom + UInt64(i) * 4096
            guard Paging.map(virtual: va, physical: frame,
                             flags: PageFlags.writable | PageFlags.noExecute) else {
                PhysicalMemory.freePage(frame)
                release(stack, mappedPages: i)
                return nil
            }
        }
        return stack
    }

    static func free(_ stack: Stack) { release(stack, mappedPages: stack.pages) }

    private static func release(_ stack: Stack, mappedPages: Int) {
        for i in 0..<mappedPages {
            if let frame = Paging.unmap(virtual: stack.bottom + UInt64(i) * 4096) {
                PhysicalMemory.freePage(frame)
            }
        }
        lock.lock()
        slotsInUse[stack.slot / 64] &= ~(1 << UInt64(stack.slot % 64))
        liveCount -= 1
        lock.unlock()
    }

    /// True when `address` is in the guard page of some kernel stack slot.
    static func isGuardPage(_ address: UInt64) -> Bool {
        guard address >= AddressSpace.kernelStacksBase,
              address < AddressSpace.kernelStacksBase + UInt64(maxSlots) * slotSize else { return false }
        return (address - AddressSpace.kernelStacksBase) % slotSize < 4096
    }
}
