// The monitor's `trace`: a symbolized backtrace of a CPU (it captures its own
// frame in an IPI handler, so the chain runs through whatever it interrupted)
// or of a thread (a running one: its CPU; a switched-out one: from the frame
// Boot/switch.asm left on its stack - a snapshot, the thread may run meanwhile).

extension ControlCommands {
    static func trace(_ a: MonitorArgs) {
        if a.word(at: 0) == "cpu" {
            guard a.count == 2 else { Console.print("usage: trace <thread-id> | cpu <n>"); return }
            switch a.cpu(at: 1, online: SMP.online) {
            case .failure(let e): Monitor.fail(e)
            case .success(let c): traceCPU(c)
            }
            return
        }
        guard a.count == 1 else { Console.print("usage: trace <thread-id> | cpu <n>"); return }
        guard let td = thread(a, 0) else { return }
        if td.state == .running {
            Console.line { l in l.write("trace: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is running on CPU "); l.dec(td.cpu) }
            traceCPU(td.cpu)
            return
        }
        // The thread may exit and its stack be freed while we read: every load
        // is a probe (a fault ends the walk with a line, not a panic).
        let rsp = td.context.pointee.rsp
        guard td.state != .exited, rsp != 0, let rbp = CPU.probeRead(rsp + 40), let ret = CPU.probeRead(rsp + 48) else {
            Console.line { l in l.write("trace: #"); l.dec(td.id); l.write(" has no saved frame (exited or never ran)") }
            return
        }
        Console.line { l in
            l.write("trace: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write("), "); l.write(InspectCommands.stateName(td.state))
            l.write(" on CPU "); l.dec(td.cpu); l.write(", saved rsp "); l.hex(rsp)
        }
        FaultReport.backtrace(rip: ret, rbp: rbp, ripIsReturnAddress: true, probing: true)
    }

    static func traceCPU(_ c: Int) {
        if c == PerCPU.currentNumber {                 // the monitor's own CPU (the monitor stays on CPU 0)
            backtraceHere()
            return
        }
        // Bounded (and Ctrl-C stops it): the CPU worth tracing may be the one
        // spinning with interrupts off. Its handler prints whenever it runs.
        guard let ticket = IPIQueue.send(to: c, { _, _ in ControlCommands.backtraceHere() }) else { return }
        let end = TSC.now &+ TSC.ticksPerMs &* 2000
        while !IPIQueue.isDone(ticket) {
            if TSC.now >= end || Monitor.interrupted {
                Console.line { l in
                    l.write("trace: CPU "); l.dec(c); l.write(" did not answer in 2 s (interrupts off?); it prints when it does")
                }
                return
            }
            IPIQueue.process()
            Scheduler.yield()
        }
    }

    /// Runs on the CPU to trace (its IPI handler, or the monitor itself).
    static func backtraceHere() {
        var frame = TrapFrame.zero
        withUnsafeMutablePointer(to: &frame) { CPU.capture($0) }
        Console.line { l in
            l.write("trace: CPU "); l.dec(PerCPU.currentNumber)
            if let td = Thread.currentIfAny { l.write(", thread "); l.write(td.name); l.write(" #"); l.dec(td.id) }
            l.write(PerCPU.inInterrupt ? " (from its IPI handler: the frames below the trap entry are what it was running)" : "")
        }
        FaultReport.backtrace(rip: frame.rip, rbp: frame.rbp, ripIsReturnAddress: true)
    }
}
