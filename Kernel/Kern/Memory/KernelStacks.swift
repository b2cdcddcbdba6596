// Kernel stacks live in their own region (AddressSpace.kernelStacksBase), each in
// a fixed-size slot whose lowest page is left unmapped: the guard page. Running
// off the bottom of a stack faults on the guard page; the CPU then cannot push the
// #PF frame on the same stack, raises #DF, and the #DF handler runs on its own IST
// stack and reports "kernel stack overflow" (FaultReport).
//
// Slots are tracked in a bitmap (1 = in use); a freed slot is reused. A freed
// stack is only retired at first: other CPUs may still hold its translations in
// their TLBs (the CPU that created the thread, CPUs it ran on), so its frames and
// its slot are released in batches by `reclaim`, after one TLB shootdown of every
// CPU (Kern/Memory/TLBShootdown.swift). Retired stacks stay mapped until then.

enum KernelStacks {
    static let slotSize: UInt64 = 128 * 1024      // guard page + up to 124 KiB of stack
    static let maxSlots = 4096
    static let defaultPages = 16                  // 64 KiB
    /// Retired stacks that trigger a reclaim at the next allocation.
    static let reclaimBatch = 16
    static let lock = SpinLock("kernel stacks")
    // Under `lock`: slots in use (retired ones included), retired slots, and the
    // page count of every slot.
    nonisolated(unsafe) static var slotsInUse = InlineArray<64, UInt64>(repeating: 0)  // 4096 bits
    nonisolated(unsafe) static var retired = InlineArray<64, UInt64>(repeating: 0)
    nonisolated(unsafe) static var retiredCount = 0
    nonisolated(unsafe) static var slotPages = InlineArray<4096, UInt8>(repeating: 0)
    /// Slots in use, retired ones included.
    nonisolated(unsafe) static var liveCount = 0

    struct Stack {
        let slot: Int
        let pages: Int
        var bottom: UInt64 { KernelStacks.bottom(slot) }
        var top: UInt64 { bottom + UInt64(pages) * 4096 }
        var guardPage: UInt64 { bottom - 4096 }
    }

    static func bottom(_ slot: Int) -> UInt64 { AddressSpace.kernelStacksBase + UInt64(slot) * slotSize + 4096 }

    /// Maps a new stack of `pages` pages (<= 31). Returns nil when out of memory.
    /// Thread context, no spinlock held (it may reclaim, which shoots down TLBs).
    static func allocate(pages: Int = defaultPages) -> Stack? {
        precondition(pages >= 1 && UInt64(pages + 1) * 4096 <= slotSize, "kernel stack too large")
        if retiredCount >= reclaimBatch { reclaim() }
        if let s = tryAllocate(pages: pages) { return s }
        reclaim()                                     // memory or slots may be retired
        return tryAllocate(pages: pages)
    }

    private static func tryAllocate(pages: Int) -> Stack? {
        lock.lock()
        var slot = -1
        for w in 0..<64 where slotsInUse[w] != UInt64.max {
            let bit = (~slotsInUse[w]).trailingZeroBitCount
            slotsInUse[w] |= 1 << UInt64(bit)
            slot = w * 64 + bit
            slotPages[slot] = UInt8(pages)
            liveCount += 1
            break
        }
        lock.unlock()
        guard slot >= 0 else { return nil }
        let stack = Stack(slot: slot, pages: pages)
        for i in 0..<pages {
            guard let frame = PhysicalMemory.allocatePage() else {
                retire(stack.slot)
                return nil
            }
            let va = stack.bottom + UInt64(i) * 4096
            guard KernelPageTables.map(virtual: va, physical: frame,
                                       flags: PageFlags.writable | PageFlags.noExecute) else {
                PhysicalMemory.freePage(frame)
                retire(stack.slot)
                return nil
            }
        }
        return stack
    }

    /// Retires a stack: released by the next `reclaim`. Any context.
    static func free(_ stack: Stack) { retire(stack.slot) }

    private static func retire(_ slot: Int) {
        lock.lock()
        retired[slot / 64] |= 1 << UInt64(slot % 64)
        retiredCount += 1
        lock.unlock()
    }

    /// Unmaps every retired stack, shoots down every CPU's TLB once, then returns
    /// the frames and the slots. Thread context, no spinlock held.
    static func reclaim() {
        lock.lock()
        var batch = retired
        retired = InlineArray<64, UInt64>(repeating: 0)
        let n = retiredCount
        retiredCount = 0
        lock.unlock()
        guard n > 0 else { return }
        // Unmap (this CPU's TLB entries go now) and chain the frames through their
        // own first word (identity map): they are ours until after the shootdown.
        var frames: UInt64 = 0
        for w in 0..<64 where batch[w] != 0 {
            var bits = batch[w]
            while bits != 0 {
                let slot = w * 64 + bits.trailingZeroBitCount
                bits &= bits &- 1
                for i in 0..<Int(slotPages[slot]) {
                    guard let frame = KernelPageTables.unmapLocal(virtual: bottom(slot) + UInt64(i) * 4096) else { continue }
                    AddressSpace.virtual(frame).storeBytes(of: frames, as: UInt64.self)
                    frames = frame
                }
            }
        }
        TLBShootdown.flushAll()
        while frames != 0 {
            let next = AddressSpace.virtual(frames).load(as: UInt64.self)
            PhysicalMemory.freePage(frames)
            frames = next
        }
        lock.lock()
        for w in 0..<64 { slotsInUse[w] &= ~batch[w]; liveCount -= batch[w].nonzeroBitCount; batch[w] = 0 }
        lock.unlock()
    }

    /// True when `address` is in the guard page of some kernel stack slot.
    static func isGuardPage(_ address: UInt64) -> Bool {
        guard address >= AddressSpace.kernelStacksBase,
              address < AddressSpace.kernelStacksBase + UInt64(maxSlots) * slotSize else { return false }
        return (address - AddressSpace.kernelStacksBase) % slotSize < 4096
    }
}
