import Synchronization

// What happens when kernel code faults: the panic path (Kern/Debug/Panic.swift) with
// the trap frame, so the report reads: the FAULT line, the cause (error code, CR2
// decoded, a Swift trap or a stack overflow named), every register, an rbp-chain
// backtrace whose frames are named from the kernel's symbol table, then the other
// CPUs stopped and their state (Kern/Debug/PanicDump.swift), then a failure exit through
// isa-debug-exit. Never a silent triple fault or reboot.

enum FaultReport {
    /// QEMU exit code for a kernel fault or panic (QEMU status (2<<1)|1 = 5).
    static let exitCode: UInt8 = 2

    static func install() {
        Traps.fatal = { frame in FaultReport.fatalTrap(frame) }
    }

    /// A trap nobody handles: the panic path, with this frame (one owner, the
    /// other CPUs stopped, the dump; docs/panic.md).
    static func fatalTrap(_ frame: UnsafeMutablePointer<TrapFrame>) {
        Panic.begin(frame, .fault)
    }

    /// "FAULT: #PF page fault (vector 14) in kernel mode on CPU n"
    static func faultLine(_ f: TrapFrame) {
        Console.line { l in
            l.write("FAULT: "); l.write(Traps.name(of: f.vector))
            l.write(" (vector "); l.dec(f.vector); l.write(") in ")
            l.write(f.fromUserMode ? "user mode" : "kernel mode")
            l.write(" on CPU "); l.dec(UInt64(currentCPUNumberForLocks()))
        }
    }

    static func describeCause(_ f: TrapFrame) {
        Console.line { l in
            l.write("  error code "); l.hex(f.errorCode)
            if f.vector == 14 {
                l.write(" ("); l.write(f.errorCode & 1 != 0 ? "protection" : "not-present")
                l.write(f.errorCode & 2 != 0 ? " write" : " read")
                if f.errorCode & 16 != 0 { l.write(" instruction-fetch") }
                l.write(f.errorCode & 4 != 0 ? " user" : " supervisor"); l.write(")")
                l.write("  cr2 "); l.hex(CPU.cr2, width: 16)
            }
        }
        if f.vector == 6 && isSwiftTrap(at: f.rip) {
            Console.print("  ud2 at rip: a Swift runtime trap (overflow, bounds, nil unwrap, precondition)")
        }
        if f.vector == 8 {
            let cr2 = CPU.cr2
            if KernelStacks.isGuardPage(cr2) {
                Console.line { l in
                    l.write("  kernel stack overflow: fault address "); l.hex(cr2)
                    l.write(" is the guard page below a kernel stack")
                }
            }
        }
    }

    private static func isSwiftTrap(at rip: UInt64) -> Bool {
        guard Paging.isMapped(rip, length: 2) else { return false }
        let p = UnsafeRawPointer(bitPattern: UInt(rip))!
        return p.load(as: UInt8.self) == 0x0F && p.load(fromByteOffset: 1, as: UInt8.self) == 0x0B
    }

    static func registerDump(_ f: TrapFrame) {
        reg3("rax", f.rax, "rbx", f.rbx, "rcx", f.rcx)
        reg3("rdx", f.rdx, "rsi", f.rsi, "rdi", f.rdi)
        reg3("rbp", f.rbp, "rsp", f.rsp, "r8 ", f.r8)
        reg3("r9 ", f.r9, "r10", f.r10, "r11", f.r11)
        reg3("r12", f.r12, "r13", f.r13, "r14", f.r14)
        reg3("r15", f.r15, "rip", f.rip, "rfl", f.rflags)
        reg3("cs ", f.cs, "ss ", f.ss, "cr3", CPU.cr3)
    }

    private static func reg3(_ a: StaticString, _ av: UInt64, _ b: StaticString, _ bv: UInt64,
                             _ c: StaticString, _ cv: UInt64) {
        Console.line { l in
            l.write("  "); l.write(a); l.write(" "); l.hex(av, width: 16)
            l.write("  "); l.write(b); l.write(" "); l.hex(bv, width: 16)
            l.write("  "); l.write(c); l.write(" "); l.hex(cv, width: 16)
        }
    }

    /// Walks the saved-rbp chain: [rbp] = caller's rbp, [rbp+8] = return address.
    /// Each frame pointer is checked to be mapped before it is read, frames must
    /// move up the stack, and the walk stops at rbp 0 (set by the boot stub).
    /// Every frame is named by KernelSymbols ("  NAME + 0xOFFSET") when the
    /// table covers it. `ripIsReturnAddress`: frame #0 is a return address too
    /// (panic), not the faulting instruction.
    /// `probing`: every load goes through CPU.probeRead (a stack that may be
    /// freed and unmapped while we read it: the monitor's `trace <thread>`).
    static func backtrace(rip: UInt64, rbp: UInt64, maxFrames: Int = 32, ripIsReturnAddress: Bool = false,
                          probing: Bool = false) {
        Console.print("  backtrace (rbp chain; scripts/symbolize.sh adds file:line):")
        Console.line { l in
            l.write("    #0  "); l.hex(rip, width: 16)
            KernelSymbols.write(rip, into: &l, returnAddress: ripIsReturnAddress)
        }
        var frame = rbp
        var depth = 1
        while frame != 0 && depth < maxFrames {
            guard frame & 7 == 0, Paging.isMapped(frame, length: 16) else {
                Console.line { $0.write("    (frame pointer "); $0.hex(frame); $0.write(" is not readable; stop)") }
                return
            }
            let next: UInt64, ret: UInt64
            if probing {
                guard let n = CPU.probeRead(frame), let r = CPU.probeRead(frame + 8) else {
                    Console.line { $0.write("    (frame "); $0.hex(frame); $0.write(" went away while it was read; stop)") }
                    return
                }
                (next, ret) = (n, r)
            } else {
                let p = UnsafeRawPointer(bitPattern: UInt(frame))!
                (next, ret) = (p.load(as: UInt64.self), p.load(fromByteOffset: 8, as: UInt64.self))
            }
            if ret == 0 { break }
            Console.line { l in
                l.write("    #"); l.dec(UInt64(depth)); l.write(depth < 10 ? "  " : " "); l.hex(ret, width: 16)
                KernelSymbols.write(ret, into: &l, returnAddress: true)
            }
            if next != 0 && next <= frame { break }   // a chain must climb the stack
            frame = next
            depth += 1
        }
    }
}
