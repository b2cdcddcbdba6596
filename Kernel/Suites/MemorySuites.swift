// pages, heap, paging: the memory foundation, exercised inside the kernel with the
// real allocators (the host tests cover the same Core logic with fake memory).

enum PageAllocatorSuite {
    static let suite = TestSuite(name: "pages", kind: .normal,
                                 summary: "physical page allocator: alloc/free, runs, double free", body: run)

    static func run(_ t: inout TestContext) {
        let before = PhysicalMemory.freePages
        var frames = InlineArray<256, UInt64>(repeating: 0)
        var allocated = 0
        for i in 0..<256 {
            guard let p = PhysicalMemory.allocatePage() else { break }
            frames[i] = p
            allocated += 1
            // Stamp each page with ITS allocation's number: a frame handed out
            // twice carries the later stamp, and the earlier allocation sees it.
            AddressSpace.virtual(p).storeBytes(of: 0x5EED_0000 &+ UInt64(i), as: UInt64.self)
        }
        var overwritten = 0, duplicates = 0
        for i in 0..<allocated where AddressSpace.virtual(frames[i]).load(as: UInt64.self) != 0x5EED_0000 &+ UInt64(i) {
            overwritten += 1
        }
        for i in 0..<allocated { for j in 0..<i where frames[i] == frames[j] { duplicates += 1 } }
        t.expect("stamps", allocated == 256 && overwritten == 0 && duplicates == 0) { l in
            l.dec(allocated); l.write(" single pages allocated: every one kept its own stamp ("); l.dec(overwritten)
            l.write(" overwritten), no frame handed out twice ("); l.dec(duplicates); l.write(")")
        }
        t.expect("free-count-drop", PhysicalMemory.freePages == before - 256, "free count dropped by exactly 256")
        for i in 0..<256 { PhysicalMemory.freePage(frames[i]) }
        t.expect("free-count-restored", PhysicalMemory.freePages == before, "free count restored after freeing")
        let refused = !PhysicalMemory.tryFree(frames[0], pages: 1) && !PhysicalMemory.tryFree(frames[255], pages: 1)
        t.expect("double-free", refused && PhysicalMemory.freePages == before,
                "a double free is refused and changes nothing (the kernel's free panics on it)")

        let run = PhysicalMemory.allocate(pages: 64, alignPages: 16)
        t.expect("run-aligned", run != nil && run! % (16 * 4096) == 0, "64-page run aligned to 64 KiB")
        if let run { PhysicalMemory.free(run, pages: 64) }
        let low = PhysicalMemory.allocate(pages: 1, below: 16 << 20)
        t.expect("low-frame", low != nil && low! < 16 << 20 && low! >= PhysicalMemory.lowMemoryEnd,
                "allocation below 16 MiB stays above low memory")
        if let low { PhysicalMemory.freePage(low) }
        let image = PhysicalMemory.kernelImage
        var overlapsKernel = false
        for _ in 0..<64 {
            if let p = PhysicalMemory.allocatePage() {
                if p >= image.base && p < image.end { overlapsKernel = true }
                PhysicalMemory.freePage(p)
            }
        }
        t.expect("not-kernel-image", !overlapsKernel, "no page handed out from the kernel image")
        let huge = PhysicalMemory.allocate(pages: PhysicalMemory.totalPages + 1)
        t.expect("too-large", huge == nil, "a request larger than memory fails cleanly")
        t.expect("bitmap", PhysicalMemory.bitmap?.check() ?? false, "bitmap free count matches its bits")
    }
}

/// A small class to allocate through swift_allocObject -> posix_memalign.
private final class Node {
    var value: Int
    var next: Node?
    init(_ v: Int, _ n: Node?) { value = v; next = n }
}

enum HeapSuite {
    static let suite = TestSuite(name: "heap", kind: .normal,
                                 summary: "kernel heap: classes, arrays, strings, alignment, frees", body: run)

    static func run(_ t: inout TestContext) {
        let base = Heap.statistics()
        exercise(&t)
        let after = Heap.statistics()
        let ops = churnOperations
        t.expect("consistent", after.consistent && ops > 0) { l in
            l.write("heap invariants hold after "); l.dec(ops); l.write(" mixed allocations and frees")
        }
        t.expect("balanced", after.allocations == base.allocations && after.bytes == base.bytes,
                { l in l.write("everything freed: "); l.dec(after.allocations); l.write(" live allocations, as before ("); l.dec(base.allocations); l.write(")") })
        t.expect("pages-returned", after.pages <= base.pages + 8, { l in l.write("pages returned to the page allocator ("); l.dec(after.pages); l.write(" held, "); l.dec(base.pages); l.write(" before)") })
    }

    /// Every allocation of the suite lives in this function's frame, so all of it
    /// is released when it returns and the caller can compare the heap statistics.
    @inline(never)
    private static func exercise(_ t: inout TestContext) {
        do {
            var head: Node? = nil
            let budget = TimeBudget(milliseconds: 300)
            var made = 0
            while made < 5000 && !budget.expired { head = Node(made, head); made += 1 }
            var sum = 0, n = head
            while let node = n { sum += node.value; n = node.next }
            let count = made
            t.expect("objects", made > 0 && sum == made * (made - 1) / 2) { l in
                l.dec(count); l.write(" linked class instances hold their values")
            }
            // Unlink iteratively: a recursive release of a 5000-long chain would
            // use one stack frame per node.
            while let node = head { head = node.next; node.next = nil }
        }
        var arrays: [[UInt64]] = []
        for size in [1, 7, 64, 300, 1000, 3000] {
            arrays.append((0..<size).map { UInt64($0) &* 0x9E37_79B9 })
        }
        var arraysIntact = true
        for a in arrays { for (i, v) in a.enumerated() where v != UInt64(i) &* 0x9E37_79B9 { arraysIntact = false } }
        t.expect("arrays-intact", arraysIntact, "arrays of 1 to 3000 elements (small and large allocations) intact")
        arrays.removeAll()
        var s = ""
        for i in 0..<200 { s += "x"; if i % 50 == 0 { s += "-" } }
        t.expect("string", s.utf8.count == 204, "a String grown by appending 204 bytes")

        var aligned = true
        for align in [8, 16, 64, 256, 4096, 8192] {
            var p: UnsafeMutableRawPointer? = nil
            if posix_memalign(&p, align, 100) != 0 || UInt(bitPattern: p) % UInt(align) != 0 { aligned = false }
            kfree(p)
        }
        t.expect("memalign", aligned, "posix_memalign honours alignments 8 to 8192")
        var bad: UnsafeMutableRawPointer? = nil
        t.expect("memalign-einval", posix_memalign(&bad, 24, 16) == 22, "posix_memalign rejects a non-power-of-two alignment (EINVAL)")
        t.expect("enomem", posix_memalign(&bad, 16, Int.max / 2) == 12, "an impossible size fails with ENOMEM, no crash")

        // Churn: interleaved lifetimes across every size class, sized by time (the
        // nested KVM of our CI machines runs ~1000x slower than TCG).
        var live: [UnsafeMutableRawPointer?] = Array(repeating: nil, count: 512)
        var x: UInt64 = 0x1234_5678
        let churn = TimeBudget(milliseconds: 500)
        var operations = 0
        while operations < 20_000 && !churn.expired {
            operations += 1
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let slot = Int(x % 512)
            if live[slot] != nil { kfree(live[slot]); live[slot] = nil }
            else { _ = posix_memalign(&live[slot], 16, Int((x >> 20) % 3000) + 1) }
        }
        for p in live where p != nil { kfree(p) }
        live.removeAll()
        churnOperations = operations
    }

    nonisolated(unsafe) private static var churnOperations = 0
}

enum PagingSuite {
    static let suite = TestSuite(name: "paging", kind: .normal,
                                 summary: "4 KiB mappings, translation, guarded kernel stacks", body: run)

    static func run(_ t: inout TestContext) {
        let image = PhysicalMemory.kernelImage
        t.expect("identity", Paging.translate(image.base) == image.base, "kernel image is identity mapped")
        t.expect("apic-mapped", Paging.translate(0xFEE0_0000) == 0xFEE0_0000, "local APIC page is mapped")
        t.expect("non-canonical", Paging.translate(0x0000_8000_0000_0000) == nil, "non-canonical address reported unmapped")
        guard let frame = PhysicalMemory.allocateZeroedPage() else { t.expect("alloc-page", false, "allocate a page"); return }
        let va: UInt64 = AddressSpace.kernelStacksBase - 0x10_0000   // a scratch address below the stacks
        t.expect("map", KernelPageTables.map(virtual: va, physical: frame, flags: PageFlags.writable), "map a 4 KiB page")
        t.expect("translate", Paging.translate(va + 0x123) == frame + 0x123, "translate the new mapping")
        UnsafeMutableRawPointer(bitPattern: UInt(va))!.storeBytes(of: 0xC0FFEE, as: UInt64.self)
        t.expect("write-through", AddressSpace.virtual(frame).load(as: UInt64.self) == 0xC0FFEE, "a write through it reaches the frame")
        t.expect("unmap", KernelPageTables.unmap(virtual: va) == frame && Paging.translate(va) == nil, "unmap removes it")
        PhysicalMemory.freePage(frame)

        if let stack = KernelStacks.allocate(pages: 4) {
            t.expect("stack-guard", Paging.translate(stack.guardPage) == nil, "a kernel stack's guard page is unmapped")
            t.expect("stack-mapped", Paging.isMapped(stack.bottom, length: 4 * 4096), "its pages are mapped")
            t.expect("guard-recognised", KernelStacks.isGuardPage(stack.guardPage + 8), "the guard page is recognised")
            Scheduler.waitForReaps()            // nothing else retired: the count below is ours
            let freeBefore = PhysicalMemory.freePages
            KernelStacks.free(stack)
            KernelStacks.reclaim()
            t.expect("stack-reclaimed", PhysicalMemory.freePages == freeBefore + 4 && Paging.translate(stack.bottom) == nil,
                    "freeing a stack (then reclaiming after the TLB shootdown) unmaps it and returns its pages")
        } else {
            t.expect("alloc-stack", false, "allocate a guarded kernel stack")
        }
        concurrentMapping(&t)
    }

    /// Every CPU maps pages into the same fresh 2 MiB region at once, so they all
    /// race to create the same missing table levels. The page-table lock keeps
    /// every mapping; without it one CPU's new table page replaces another's.
    nonisolated(unsafe) static var region: UInt64 = 0x0000_0100_0000_0000     // PML4 slot 2
    static func concurrentMapping(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("concurrent-map", reason: .needs2CPUs, "concurrent mapping needs 2 CPUs"); return }
        region &+= 1 << 30                          // a new 1 GiB each run: new tables
        let base = region, n = UInt64(cpus.count), perCPU: UInt64 = 32
        let frames = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(n * perCPU))
        frames.initialize(repeating: 0, count: Int(n * perCPU))
        let go = SharedCounters()
        SuiteThreads.runOnEveryCPU("mapper") {
            let k = UInt64(cpus.rank(of: PerCPU.currentNumber) ?? 0)
            go.values[1 + Int(k)] = 1
            while (0..<Int(n)).contains(where: { go.values[1 + $0] == 0 }) { CPU.compilerBarrier(); CPU.pause() }
            for i in 0..<perCPU {
                let page = i * n + k                      // interleaved: same tables for everyone
                guard let f = PhysicalMemory.allocateZeroedPage() else { continue }
                frames[Int(page)] = f
                if !KernelPageTables.map(virtual: base + page * 4096, physical: f, flags: PageFlags.writable) {
                    PhysicalMemory.freePage(f); frames[Int(page)] = 0
                }
            }
        }
        var present = 0, lost = 0
        for p in 0..<Int(n * perCPU) where frames[p] != 0 {
            if Paging.translate(base + UInt64(p) * 4096) == frames[p] { present += 1 } else { lost += 1 }
        }
        for p in 0..<Int(n * perCPU) where frames[p] != 0 { _ = KernelPageTables.unmapLocal(virtual: base + UInt64(p) * 4096) }
        TLBShootdown.flushAll()
        for p in 0..<Int(n * perCPU) where frames[p] != 0 { PhysicalMemory.freePage(frames[p]) }
        frames.deallocate()
        t.expect("concurrent-map", lost == 0 && present == Int(n * perCPU)) { l in
            l.dec(cpus.count); l.write(" CPUs mapped "); l.dec(present); l.write(" pages into one fresh 2 MiB region at once; ")
            l.dec(lost); l.write(" mappings lost")
        }
    }
}
