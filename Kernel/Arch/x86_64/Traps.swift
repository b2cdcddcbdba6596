// Trap dispatch: every vector enters Swift here, from Boot/interrupts.asm.
// Devices and IPIs register handlers by vector; exceptions nobody claims go to the
// kernel's fatal-trap reporter (Kern/Debug/FaultReport.swift).

// Handlers are plain Swift functions without captures (no allocation to store them).
typealias TrapHandler = (UnsafeMutablePointer<TrapFrame>) -> Void

enum Traps {
    static let vectorCount = 256
    // Filled at boot on CPU 0 before any other CPU runs or interrupts are enabled,
    // then only read, so no lock is needed. A heap table reached through a pointer:
    // a global InlineArray would be copied (4 KiB) onto the stack at every trap.
    nonisolated(unsafe) static var handlers: UnsafeMutablePointer<TrapHandler?>? = nil
    /// Called for an exception or vector with no handler; never returns to the trap.
    nonisolated(unsafe) static var fatal: TrapHandler? = nil
    /// Called around every trap (interrupt-depth accounting, C1); set by the kernel.
    nonisolated(unsafe) static var enter: TrapHandler? = nil
    nonisolated(unsafe) static var exit: TrapHandler? = nil

    static func register(vector: Int, _ handler: @escaping TrapHandler) {
        precondition(vector >= 0 && vector < vectorCount, "bad interrupt vector")
        if handlers == nil {
            let table = UnsafeMutablePointer<TrapHandler?>.allocate(capacity: vectorCount)
            table.initialize(repeating: nil, count: vectorCount)
            handlers = table
        }
        handlers![vector] = handler
    }

    static func name(of vector: UInt64) -> StaticString {
        switch vector {
        case 0: return "#DE divide error"
        case 1: return "#DB debug"
        case 2: return "NMI"
        case 3: return "#BP breakpoint"
        case 4: return "#OF overflow"
        case 5: return "#BR bound range exceeded"
        case 6: return "#UD invalid opcode"
        case 7: return "#NM device not available"
        case 8: return "#DF double fault"
        case 10: return "#TS invalid TSS"
        case 11: return "#NP segment not present"
        case 12: return "#SS stack-segment fault"
        case 13: return "#GP general protection"
        case 14: return "#PF page fault"
        case 16: return "#MF x87 floating-point error"
        case 17: return "#AC alignment check"
        case 18: return "#MC machine check"
        case 19: return "#XM SIMD floating-point"
        case 20: return "#VE virtualization"
        case 21: return "#CP control protection"
        case 9, 15, 22...31: return "reserved exception"
        default: return "interrupt"
        }
    }
}

@_cdecl("trap_dispatch")
func trapDispatch(_ rawFrame: UnsafeMutableRawPointer) {
    let frame = rawFrame.assumingMemoryBound(to: TrapFrame.self)
    Traps.enter?(frame)
    let vector = Int(truncatingIfNeeded: frame.pointee.vector)
    if vector >= 0 && vector < Traps.vectorCount, let table = Traps.handlers, let handler = table[vector] {
        handler(frame)
    } else if vector == 2 {
        // E6: an NMI before its handler is registered (the boot CPU's first
        // steps) is an ordinary NMI: it returns, it is not a fault.
    } else if ExceptionFixup.recover(frame) {
        // a fault in a probe instruction: resumes at its recovery point
    } else if let fatal = Traps.fatal {
        fatal(frame)
    } else {
        CPU.haltForever()
    }
    Traps.exit?(frame)
}
