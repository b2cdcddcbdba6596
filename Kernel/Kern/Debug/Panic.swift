import Synchronization

// panic() and fatal traps (FreeBSD kern_shutdown.c; docs/panic.md, E1-E6).
//
//   1. interrupts off, spinlock_enter (never left: the machine is ending);
//   2. claim the single owner with a compare-and-swap of `owner` (E1). A CPU
//      that loses parks itself with interrupts off (the owner's NMI stops it);
//      the owner panicking or faulting again inside its own report prints one
//      line and ends;
//   3. stop every other CPU with an NMI (StopCPUs: pending mask, stopped mask,
//      bounded wait, "timeout stopping cpus");
//   4. from here the scheduler is stopped for the owner: every lock slow path
//      returns at once (E4), sleep and switch return at once (E3), IPI sends,
//      waits, cpusync and rendezvous do not wait for the stopped CPUs;
//   5. the dump (PanicDump), then `panic=exit|halt|reboot`.

enum Panic {
    /// The panicking CPU, or -1 (E1: set once, by compare-and-swap).
    static let owner = Atomic<Int32>(-1)
    /// CPUs whose panic or fault lost the claim (they parked), and claims won:
    /// E1 says the latter is exactly 1 (the dump prints both at its end).
    static let losers = Atomic<UInt64>(0)
    static let owners = Atomic<UInt64>(0)
    /// Owner only: panics and faults inside its own report.
    nonisolated(unsafe) static var nested = 0
    enum Action { case exit, halt, reboot, monitor }
    /// `panic=exit|halt|reboot|monitor`, read at boot.
    nonisolated(unsafe) static var action = Action.exit
    /// The test suite running when the kernel panicked, if it is one that
    /// should not (set by the test runner): the panic is its FAILURE.
    nonisolated(unsafe) static var suiteInProgress: StaticString? = nil
    /// Run by the dump after the other CPUs are stopped (suites: take a lock a
    /// stopped CPU holds, fault inside the dump).
    nonisolated(unsafe) static var dumpHook: (() -> Void)? = nil

    /// FreeBSD's SCHEDULER_STOPPED(): true on the panicking CPU. Only other CPUs'
    /// code could notice a difference, and they are stopped.
    static var schedulerStopped: Bool {
        let o = owner.load(ordering: .relaxed)
        return o >= 0 && o == currentCPUNumberForLocks()
    }
    static var inProgress: Bool { owner.load(ordering: .relaxed) >= 0 }

    enum Why {
        case message(StaticString, ((inout FixedLineBuffer) -> Void)?)
        case fault
    }

    static func configure() {
        switch KernelOptions.value("panic") {
        case "halt": action = .halt
        case "reboot": action = .reboot
        case "monitor": action = .monitor
        case nil, "exit": action = .exit
        default: Console.print("panic: panic= must be exit, halt, reboot or monitor; using exit")
        }
    }

    /// The single way down, for panic() and for fatal traps. `frame` holds the
    /// registers to report (a trap frame, or the panic call site's).
    static func begin(_ frame: UnsafeMutablePointer<TrapFrame>, _ why: Why) -> Never {
        CPU.disableInterrupts()
        let me = currentCPUNumberForLocks()
        let (won, current) = owner.compareExchange(expected: -1, desired: me, ordering: .sequentiallyConsistent)
        if won { owners.wrappingAdd(1, ordering: .relaxed) }
        if !won {
            guard current == me else { park() }
            nested += 1
            if nested == 1 {
                Console.line { l in
                    l.write("panic: recursive "); describe(why, frame, &l)
                    l.write(" inside the report on CPU "); l.dec(Int(me))
                    if case .fault = why { l.write(" at "); KernelSymbols.write(frame.pointee.rip, into: &l) }
                    l.write("; stopping")
                }
                finish()
            }
            QEMUExit.exit(code: FaultReport.exitCode)      // the finish itself failed
        }
        _ = Console.claimEmergency()
        if PerCPU.currentIfAttached != nil { SpinlockSection.enter() }
        PanicDump.header(why, frame)
        StopCPUs.stopOthers()
        PanicDump.dump(frame, why)
        finish()
    }

    /// A CPU that lost the claim: interrupts off for good. The owner's NMI
    /// stops it here (its saved frame then shows this spot).
    static func park() -> Never {
        losers.wrappingAdd(1, ordering: .relaxed)
        CPU.haltForever()
    }

    static func finish() -> Never {
        if let suite = suiteInProgress {
            Console.line { l in l.write("FAIL: "); l.write(suite); l.write(": the suite ended in the panic above") }
            Console.print("End of test: FAILURE")
        }
        switch action {
        case .exit:
            Console.print("panic: leaving QEMU (panic=exit)")
            QEMUExit.exit(code: FaultReport.exitCode)
        case .halt:
            Console.print("panic: halted (panic=halt); attach gdb (make debug) to look around")
            CPU.haltForever()
        case .reboot:
            Console.print("panic: rebooting (panic=reboot)")
            CPU.reset()
        case .monitor:
            PanicMonitor.run()
        }
    }

    static func describe(_ why: Why, _ frame: UnsafeMutablePointer<TrapFrame>, _ l: inout FixedLineBuffer) {
        switch why {
        case .message(let m, let detail):
            l.write("panic: "); l.write(m)
            if let detail { l.write(": "); detail(&l) }
        case .fault:
            l.write("FAULT "); l.write(Traps.name(of: frame.pointee.vector))
        }
    }
}

/// Ends the kernel with a report (docs/panic.md). `detail` adds to the message.
func panic(_ message: StaticString, _ detail: ((inout FixedLineBuffer) -> Void)? = nil) -> Never {
    CPU.disableInterrupts()
    var site = TrapFrame.zero
    withUnsafeMutablePointer(to: &site) { CPU.capture($0) }
    withUnsafeMutablePointer(to: &site) { Panic.begin($0, .message(message, detail)) }
}
