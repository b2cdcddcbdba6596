// C symbols the Embedded Swift standard library expects from its platform, beyond
// the allocator (Heap.swift), putchar (Console.swift) and the mem* functions
// (Boot/string.asm).

/// Hash seeding for Dictionary/Set and hashable enums. Not cryptographic: mixes
/// the TSC through splitmix64. A kernel with RDRAND could use it here.
@_cdecl("arc4random_buf")
func arc4random_buf(_ buffer: UnsafeMutableRawPointer, _ count: Int) {
    var state = CPU.rdtsc()
    for i in 0..<count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        buffer.storeBytes(of: UInt8(truncatingIfNeeded: z ^ (z >> 31)), toByteOffset: i, as: UInt8.self)
    }
}

/// Dictionary and Set size their hash tables with ceil(). Exact for the values
/// the standard library passes (capacities, far below 2^53).
@_cdecl("ceil")
func ceil(_ x: Double) -> Double {
    guard x.isFinite, x.magnitude < 9.0e15 else { return x }
    let truncated = Double(Int64(x))
    return truncated < x ? truncated + 1 : truncated
}
