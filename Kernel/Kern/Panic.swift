// panic(): the end of the kernel, with a readable report on the serial console.
// For now it claims the one report (FaultReport.claim: a second CPU that panics
// or faults meanwhile stops silently), prints the message, the CPU and a
// backtrace, and exits through isa-debug-exit with FaultReport.exitCode. The SMP
// panic of docs/panic.md (stopping the other CPUs with NMIs, scheduler stopped)
// builds on this entry point.

func panic(_ message: StaticString, _ detail: ((inout FixedLineBuffer) -> Void)? = nil) -> Never {
    let flags = CPU.saveFlagsAndDisableInterrupts()
    _ = flags
    if !FaultReport.claim() {
        // A panic inside this CPU's own report: one line, then stop.
        Console.line { $0.write("panic: recursive panic while reporting: "); $0.write(message) }
        QEMUExit.exit(code: FaultReport.exitCode)
    }
    Console.line { l in
        l.write("panic: "); l.write(message)
        if let detail { l.write(": "); detail(&l) }
        l.write(" (CPU "); l.dec(UInt64(currentCPUNumberForLocks())); l.write(")")
    }
    FaultReport.backtrace(rip: returnAddressHint(), rbp: CPU.framePointer, ripIsReturnAddress: true)
    QEMUExit.exit(code: FaultReport.exitCode)
}

/// The address panic() was called from is the first return address on the rbp
/// chain; frame #0 is reported as panic's own frame.
private func returnAddressHint() -> UInt64 {
    let rbp = CPU.framePointer
    guard rbp != 0, Paging.isMapped(rbp, length: 16) else { return 0 }
    return UnsafeRawPointer(bitPattern: UInt(rbp))!.load(fromByteOffset: 8, as: UInt64.self)
}
