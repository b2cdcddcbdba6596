// The register frame built by Boot/interrupts.asm. Field order is the memory order
// (lowest address first), the reverse of the push order; keep both files in step.

struct TrapFrame {
    var r15: UInt64, r14: UInt64, r13: UInt64, r12: UInt64
    var r11: UInt64, r10: UInt64, r9: UInt64, r8: UInt64
    var rbp: UInt64, rdi: UInt64, rsi: UInt64, rdx: UInt64
    var rcx: UInt64, rbx: UInt64, rax: UInt64
    var vector: UInt64
    var errorCode: UInt64
    // Pushed by the CPU.
    var rip: UInt64, cs: UInt64, rflags: UInt64, rsp: UInt64, ss: UInt64

    var fromUserMode: Bool { cs & 3 == 3 }

    static let zero = TrapFrame(r15: 0, r14: 0, r13: 0, r12: 0, r11: 0, r10: 0, r9: 0, r8: 0, rbp: 0, rdi: 0,
                                rsi: 0, rdx: 0, rcx: 0, rbx: 0, rax: 0, vector: 0, errorCode: 0,
                                rip: 0, cs: 0, rflags: 0, rsp: 0, ss: 0)
}
