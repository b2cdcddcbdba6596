import Synchronization

// What panic() and a fatal trap print (docs/panic.md), readable without host
// tools: the message or fault, the owner CPU and thread, its registers and
// symbolized backtrace; how the other CPUs were stopped; every stopped CPU's
// registers and backtrace; a table of per-CPU state; and whether the stopped
// CPUs' heartbeats stayed frozen (E5). Reads other CPUs' state through raw
// memory only (their per-CPU headers, their thread objects): no lock, no heap.

enum PanicDump {
    /// The first lines, once the other CPUs are stopped (E2).
    static func header(_ why: Panic.Why, _ frame: UnsafeMutablePointer<TrapFrame>) {
        let me = PerCPU.currentNumber
        switch why {
        case .message(let m, let detail):
            Console.line { l in
                l.write("panic: "); l.write(m)
                if let detail { l.write(": "); Panic.append(detail, to: &l) }
                l.write(" (CPU "); l.dec(me); l.write(")")
            }
        case .fault:
            FaultReport.faultLine(frame.pointee)
        }
        if let hook = Panic.headerHook { Panic.headerHook = nil; hook() }
        Console.line { l in
            l.write("  owner: CPU "); l.dec(me)
            if let td = Thread.currentIfAny {
                l.write(", thread "); l.write(td.name); l.write(" #"); l.dec(td.id)
                l.write(", critnest "); l.dec(td.critnest); l.write(", owepreempt "); l.write(td.owepreempt ? "1" : "0")
            }
            l.write(", interrupt depth "); l.dec(PerCPU.interruptDepth)
        }
    }

    static func dump(_ frame: UnsafeMutablePointer<TrapFrame>, _ why: Panic.Why) {
        if case .fault = why { FaultReport.describeCause(frame.pointee) }
        FaultReport.registerDump(frame.pointee)
        // A panic's frame #0 is its call site (a return address); a fault's is
        // the faulting instruction.
        var isPanic = false
        if case .message = why { isPanic = true }
        FaultReport.backtrace(rip: frame.pointee.rip, rbp: frame.pointee.rbp, ripIsReturnAddress: isPanic)
        stopReport()
        if let hook = Panic.dumpHook { Panic.dumpHook = nil; hook() }
        let stopped = StopCPUs.stoppedMask
        stopped.forEach { stoppedCPU($0, registers: true) }
        perCPUTable()
        heartbeats(stopped)
        // With tracing on, the events that led here (docs/tracing.md).
        if KTrace.on {
            Console.print("panic: the event trace up to the panic follows")
            KTrace.dump()
        }
        // Last, after everything else had time to happen: a second winner of the
        // claim (E1 broken) would have counted itself by now.
        Console.line { l in
            l.write("panic: "); l.dec(Panic.owners.load(ordering: .relaxed)); l.write(" owner (E1), ")
            l.dec(Panic.losers.load(ordering: .relaxed)); l.write(" other panics or faults parked")
            let parked = CPUMask(bits: Panic.parked.load(ordering: .relaxed))
            if !parked.isEmpty { l.write(" (CPUs "); list(parked, &l); l.write(")") }
        }
    }

    /// One line for the recursive-panic path: which CPUs the stop asked for
    /// and which are stopped (E2 holds even when the report itself faulted).
    static func stopSummary() {
        let asked = StopCPUs.requested.union(StopCPUs.late)
        let stopped = StopCPUs.stoppedMask.intersection(asked)
        Console.line { l in
            l.write("panic: other CPUs stopped: ")
            if stopped.isEmpty { l.write("none") } else { list(stopped, &l) }
            l.write(" of "); l.dec(asked.count); l.write(" asked")
            if !StopCPUs.done { l.write(" (the stop had not finished)") }
        }
    }

    private static func stopReport() {
        if StopCPUs.tookOverFrom >= 0 {
            Console.line { l in
                l.write("stop: CPU "); l.dec(StopCPUs.tookOverFrom); l.write(" was stopping and did not finish in ")
                l.dec(StopCPUs.timeoutMs); l.write(" ms; CPU "); l.dec(PerCPU.currentNumber); l.write(" took the stop over")
            }
        }
        lateReport()
        let asked = StopCPUs.requested
        guard !asked.isEmpty else { Console.print("stop: no other CPU online"); return }
        let stopped = StopCPUs.stoppedMask.intersection(asked)
        let how: StaticString = BugKnobs.panicStopIPI ? "fixed IPI (bug.panic_stop_ipi)" : "NMI"
        if stopped == asked {
            Console.line { l in
                l.write("stop: "); l.write(how); l.write(" to CPUs "); list(asked, &l)
                l.write("; all "); l.dec(asked.count); l.write(" stopped in "); l.dec(StopCPUs.elapsedNs / 1000); l.write(" us")
            }
        } else {
            Console.line { l in
                l.write("timeout stopping cpus: CPU "); list(asked.subtracting(stopped), &l)
                l.write(" did not stop after "); l.dec(StopCPUs.timeoutMs); l.write(" ms ("); l.write(how)
                l.write("; pending "); l.hex(StopCPUs.pendingNMI.load(ordering: .relaxed))
                l.write(", stopped "); l.hex(stopped.bits); l.write(")")
            }
        }
    }

    /// E8: a CPU that marked itself online after the stopper's snapshot of the
    /// online mask was not sent an NMI; it must have stopped itself.
    private static func lateReport() {
        // test.late_ap: the held-back AP comes online only after the snapshot;
        // on a loaded host its vCPU may not have run by now. Give it a bounded
        // time, so that the late case is what the dump reports on.
        let held = PanicTestHooks.lateAP
        if held >= 0 && held < PerCPU.maxCPUs {
            let until = TSC.now &+ max(TSC.ticksPerMs, 1) &* 2000
            while SMP.onlineMask.load(ordering: .acquiring) & CPUMask.bit(held) == 0 && TSC.now < until { CPU.pause() }
        }
        let late = StopCPUs.late
        guard !late.isEmpty else { return }
        let deadline = TSC.now &+ max(TSC.ticksPerMs, 1) &* 200       // it may still be on its way
        while StopCPUs.stoppedMask.intersection(late) != late && TSC.now < deadline { CPU.pause() }
        late.forEach { cpu in
            let ok = StopCPUs.stoppedMask.contains(cpu)
            Console.line { l in
                l.write("stop: CPU "); l.dec(cpu); l.write(" came online during the stop and ")
                l.write(ok ? "stopped itself" : "is RUNNING (not stopped)")
            }
        }
    }

    /// A stopped CPU's saved frame: where it was, its registers, its backtrace.
    static func stoppedCPU(_ cpu: Int, registers: Bool) {
        guard let f = StopCPUs.frames?[cpu] else { return }
        Console.line { l in
            l.write("CPU "); l.dec(cpu); l.write(": stopped at rip "); l.hex(f.rip, width: 16)
            KernelSymbols.write(f.rip, into: &l)
        }
        Console.line { l in
            l.write("CPU "); l.dec(cpu); l.write(": interrupts "); l.write(f.rflags & CPU.interruptFlag != 0 ? "on" : "off")
            l.write(" when stopped, "); l.dec(spinlocksHeld(cpu)); l.write(" spinlocks held")
        }
        if registers { FaultReport.registerDump(f) }
        FaultReport.backtrace(rip: f.rip, rbp: f.rbp)
    }

    /// The spinlocks `cpu` holds, from its per-CPU header (raw memory: no lock).
    static func spinlocksHeld(_ cpu: Int) -> UInt64 {
        (PerCPU.cpus[cpu].archPage + PerCPUHeader.offsetInPage).load(fromByteOffset: PerCPUHeader.locksHeld, as: UInt64.self)
    }

    /// One line per online CPU, from its per-CPU header and its thread. The
    /// thread object is read only for this CPU and for CPUs that are stopped: a
    /// CPU that did not stop may have freed the thread its header points to.
    static func perCPUTable() {
        Console.print("per-CPU state:  cpu  thread                 critnest owe spin locks intr ipiq-in  heartbeat")
        let me = PerCPU.currentNumber
        let stopped = StopCPUs.stoppedMask
        SMP.online.forEach { cpu in
            let header = PerCPU.cpus[cpu].archPage + PerCPUHeader.offsetInPage
            func field(_ off: Int) -> UInt64 { header.load(fromByteOffset: off, as: UInt64.self) }
            let raw = field(PerCPUHeader.currentThread)
            var pending: UInt64 = 0
            for s in 0..<IPIQueue.cpuCount {
                let q = IPIQueue.ringFor(source: s, target: cpu)
                pending &+= UInt64(q.pointee.windex.load(ordering: .relaxed) &- q.pointee.rindex.load(ordering: .relaxed))
            }
            Console.line { l in
                l.write("                "); l.dec(cpu, width: 4); l.write("  ")
                if cpu != me && !stopped.contains(cpu) {
                    l.write("(running: not read)             -   -")
                } else if raw != 0 {
                    let td = Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
                    l.padRight(td.name, width: 14); l.write(" #"); l.dec(td.id, width: 5); l.write(" ")
                    l.dec(td.critnest, width: 8); l.write(td.owepreempt ? "   1" : "   0")
                } else {
                    l.write("(none)                          0   0")
                }
                l.dec(field(PerCPUHeader.spinlockCount), width: 5); l.dec(field(PerCPUHeader.locksHeld), width: 6)
                l.dec(field(PerCPUHeader.interruptDepth), width: 5); l.dec(pending, width: 8)
                l.dec(PerCPU.cpus[cpu].heartbeat.load(ordering: .relaxed), width: 11)
            }
        }
    }

    /// E5: the stopped CPUs' heartbeats, sampled twice 50 ms apart.
    private static func heartbeats(_ stopped: CPUMask) {
        let asked = StopCPUs.requested.union(StopCPUs.late)
        guard !asked.isEmpty else { return }
        var before = InlineArray<64, UInt64>(repeating: 0)
        asked.forEach { before[$0] = PerCPU.cpus[$0].heartbeat.load(ordering: .relaxed) }
        TSC.delay(microseconds: 50_000)
        Console.line { l in
            l.write("heartbeats over 50 ms:")
            asked.forEach { cpu in
                let now = PerCPU.cpus[cpu].heartbeat.load(ordering: .relaxed)
                l.write(" CPU "); l.dec(cpu); l.write(" "); l.dec(before[cpu]); l.write("->"); l.dec(now)
                l.write(now == before[cpu] ? " frozen;" : " MOVING;")
            }
        }
    }

    static func list(_ m: CPUMask, _ l: inout FixedLineBuffer) {
        var first = true
        m.forEach { if !first { l.write(", ") }; first = false; l.dec($0) }
    }
}
