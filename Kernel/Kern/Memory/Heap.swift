// The kernel heap: Core's SlabHeap on pages from the physical allocator, behind
// the two functions the Embedded Swift runtime calls for every class instance and
// array: posix_memalign and free (free is a NASM jump to kfree, Boot/string.asm,
// because Swift cannot define a function named `free`). One lock, interrupts off
// while held: the runtime allocates from any CPU.

struct KernelPageSource: PageSource {
    mutating func allocatePages(_ count: Int) -> UnsafeMutableRawPointer? {
        PhysicalMemory.allocate(pages: count).map { AddressSpace.virtual($0) }
    }
    mutating func freePages(_ p: UnsafeMutableRawPointer, _ count: Int) {
        PhysicalMemory.free(AddressSpace.physical(UInt64(UInt(bitPattern: p))), pages: count)
    }
}

enum Heap {
    static let lock = SpinLock("heap")
    nonisolated(unsafe) static var slab: SlabHeap<KernelPageSource>? = nil
    /// Allocation failures, for the memory summary and tests.
    nonisolated(unsafe) static var failures = 0

    static func initialize(poison: Bool) {
        slab = SlabHeap(source: KernelPageSource(), poison: poison)
    }

    static func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        lock.lock()
        let p = slab?.allocate(size: size, alignment: alignment)
        if p == nil { failures += 1 }
        lock.unlock()
        return p
    }

    static func free(_ p: UnsafeMutableRawPointer?) {
        lock.lock()
        let result = slab?.free(p) ?? .badMagic
        lock.unlock()
        if result.isError {
            panic(result.message) { $0.write("pointer "); $0.hex(UInt64(UInt(bitPattern: p))) }
        }
    }

    /// A consistent snapshot of the statistics (taken under the lock).
    static func statistics() -> (bytes: Int, allocations: Int, pages: Int, consistent: Bool) {
        lock.lock()
        let s = (slab?.bytesInUse ?? 0, slab?.allocationsInUse ?? 0, slab?.pagesHeld ?? 0, slab?.check() ?? false)
        lock.unlock()
        return s
    }
}

@_cdecl("posix_memalign")
func posix_memalign(_ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int) -> Int32 {
    // POSIX: alignment must be a power of two multiple of sizeof(void *).
    guard alignment >= 8, alignment & (alignment - 1) == 0 else { return 22 }   // EINVAL
    guard let p = Heap.allocate(size: size, alignment: alignment) else { return 12 }  // ENOMEM
    out.pointee = p
    return 0
}

@_cdecl("kfree")
func kfree(_ p: UnsafeMutableRawPointer?) {
    Heap.free(p)
}
