import Synchronization

// panic() and fatal traps (FreeBSD kern_shutdown.c; docs/panic.md, E1-E7).
//
//   0. panic(): interrupts off, the detail formatted into a line buffer on this
//      stack by a non-escaping closure: nothing before the claim allocates (E7;
//      a CPU that died holding the heap lock must not hold up the report);
//   1. interrupts off, spinlock_enter (never left: the machine is ending);
//   2. claim the single owner with a compare-and-swap of `owner` (E1). A CPU
//      that loses parks itself with interrupts off (the owner's NMI stops it);
//      the owner panicking or faulting again inside its own report prints one
//      line and ends;
//   3. stop every other CPU with an NMI (StopCPUs: pending mask, stopped mask,
//      bounded wait, "timeout stopping cpus"), before printing anything
//      (FreeBSD r228424): a fault inside the report finds them stopped (E2);
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
    /// The CPUs that parked after losing the claim (bit = CPU), for the dump.
    static let parked = Atomic<UInt64>(0)
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
    /// Run inside the header, after the panic line (suite panic-header: a fault
    /// there, after the stop).
    nonisolated(unsafe) static var headerHook: (() -> Void)? = nil

    /// FreeBSD's SCHEDULER_STOPPED(): true on the panicking CPU. Only other CPUs'
    /// code could notice a difference, and they are stopped.
    static var schedulerStopped: Bool {
        let o = owner.load(ordering: .relaxed)
        return o >= 0 && o == currentCPUNumberForLocks()
    }
    static var inProgress: Bool { owner.load(ordering: .relaxed) >= 0 }

    enum Why {
        /// The message and its detail, already formatted by panic() into a
        /// buffer on its own stack (valid for good: begin never returns).
        case message(StaticString, UnsafePointer<FixedLineBuffer>?)
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
        PanicTestHooks.configure()
    }

    /// The single way down, for panic() and for fatal traps. `frame` holds the
    /// registers to report (a trap frame, or the panic call site's).
    static func begin(_ frame: UnsafeMutablePointer<TrapFrame>, _ why: Why) -> Never {
        CPU.disableInterrupts()
        let me = currentCPUNumberForLocks()
        let (won, current) = owner.compareExchange(expected: -1, desired: me, ordering: .sequentiallyConsistent)
        if won { owners.wrappingAdd(1, ordering: .relaxed) }
        if !won {
            guard current == me else { park(me) }
            nested += 1
            if nested == 1 {
                // The raw address first, in a line of its own: the fault may be
                // the symbolizer's, and symbolizing again would fault again.
                Console.line { l in
                    l.write("panic: recursive "); describe(why, frame, &l)
                    l.write(" inside the report on CPU "); l.dec(Int(me))
                    if case .fault = why { l.write(" at rip "); l.hex(frame.pointee.rip, width: 16) }
                    l.write("; stopping")
                }
                PanicDump.stopSummary()
                if case .fault = why {
                    Console.line { l in l.write("  rip "); l.hex(frame.pointee.rip, width: 16); l.write(" "); KernelSymbols.write(frame.pointee.rip, into: &l) }
                }
                finish()
            }
            if nested == 2 { finish() }                    // the symbol line faulted
            QEMUExit.exit(code: FaultReport.exitCode)      // the finish itself failed
        }
        if PerCPU.currentIfAttached != nil { SpinlockSection.enter() }
        // E4: a ticket this CPU was waiting with when it panicked (the spin
        // watchdog, a serviced rendezvous, lockInTurn's wait) is retired, not
        // left as a ghost holder.
        if !BugKnobs.panicKeepTicket { TicketWaits.abandonAll(cpu: Int(me)) }   // BUG under the control: a ghost
        if BugKnobs.panicPrintBeforeStop {            // BUG (the control): print, then stop
            _ = Console.claimEmergency()
            PanicDump.header(why, frame)
        }
        // Stop first, then format (E2): whatever faults or hangs in the report
        // below, the other CPUs are already stopped and stay so.
        StopCPUs.stopOthers()
        if !BugKnobs.panicPrintBeforeStop {
            _ = Console.claimEmergency()
            PanicDump.header(why, frame)
        }
        PanicDump.dump(frame, why)
        finish()
    }

    /// A CPU that lost the claim: interrupts off for good. The owner's NMI
    /// stops it here (its saved frame then shows this spot).
    static func park(_ me: Int32) -> Never {
        losers.wrappingAdd(1, ordering: .relaxed)
        parked.bitwiseOr(CPUMask.bit(Int(me)), ordering: .relaxed)
        CPU.haltForever()
    }

    static func finish() -> Never {
        if let suite = suiteInProgress {
            // A check like any other, with its record (docs/testing.md, "Check
            // records"; written here by hand: the record's formatter belongs to
            // the suites' layer, above this one).
            Console.line { l in l.write("FAIL: "); l.write(suite); l.write(": the suite ended in the panic above") }
            Console.line { l in l.write("CHECK suite="); l.write(suite); l.write(" id=panicked inv=- result=fail") }
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
            if let detail { l.write(": "); append(detail, to: &l) }
        case .fault:
            l.write("FAULT "); l.write(Traps.name(of: frame.pointee.vector))
        }
    }

    /// panic() is out of line (E7), so the capture inside it names panic()
    /// itself: step one frame up the rbp chain, so that frame #0 of the report
    /// is the function that asserted (a return address into it).
    static func callerSite(_ f: UnsafeMutablePointer<TrapFrame>) {
        guard let fp = UnsafePointer<UInt64>(bitPattern: UInt(f.pointee.rbp)) else { return }
        f.pointee.rip = fp[1]
        f.pointee.rsp = f.pointee.rbp &+ 16
        f.pointee.rbp = fp[0]
    }

    /// Copies a formatted detail into a line (byte by byte: no allocation).
    static func append(_ detail: UnsafePointer<FixedLineBuffer>, to l: inout FixedLineBuffer) {
        l.append(detail.pointee)
    }
}

/// Ends the kernel with a report (docs/panic.md). Out of line, so that the
/// way to the claim is one piece of code (scripts/check-panic-path.sh, E7).
@inline(never)
func panic(_ message: StaticString) -> Never {
    CPU.disableInterrupts()
    var site = TrapFrame.zero
    withUnsafeMutablePointer(to: &site) { CPU.capture($0); Panic.callerSite($0) }
    withUnsafeMutablePointer(to: &site) { Panic.begin($0, .message(message, nil)) }
}

/// The same, with `detail` added to the message. E7: the closure is
/// non-escaping (its context lives on the caller's stack) and runs here, into a
/// line buffer on this stack, before the claim: no heap allocation on the way
/// down, which a CPU holding the heap lock would turn into a hang.
@inline(never)
func panic(_ message: StaticString, _ detail: (inout FixedLineBuffer) -> Void) -> Never {
    CPU.disableInterrupts()
    var text = FixedLineBuffer()
    detail(&text)
    var site = TrapFrame.zero
    withUnsafeMutablePointer(to: &site) { CPU.capture($0); Panic.callerSite($0) }
    withUnsafePointer(to: &text) { t in
        withUnsafeMutablePointer(to: &site) { Panic.begin($0, .message(message, t)) }
    }
}
