// When the way out of an interrupt may take an owed preemption (x86-64 facts,
// kept here as pure logic so the host tests cover every vector;
// docs/critical-sections.md, C1).
//
// Never out of a vector that runs on an IST stack (NMI 2, #DF 8, #MC 18): those
// can arrive in the middle of anything, including a switch or a spinlock section,
// and their frame is not on the interrupted thread's stack. Never when the
// interrupted code had interrupts disabled (RFLAGS.IF clear): it relied on not
// being interrupted, let alone switched away.

enum InterruptReturn {
    static let nmi: UInt64 = 2
    static let doubleFault: UInt64 = 8
    static let machineCheck: UInt64 = 18
    static let interruptFlag: UInt64 = 1 << 9

    static func mayPreempt(vector: UInt64, interruptedFlags: UInt64) -> Bool {
        if vector == nmi || vector == doubleFault || vector == machineCheck { return false }
        return interruptedFlags & interruptFlag != 0
    }
}
