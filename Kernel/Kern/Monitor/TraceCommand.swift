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
        guard a.count == 1, let td = thread(a, 0) else { return }
        if td.state == .running {
            Console.line { l in l.write("trace: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is running on CPU "); l.dec(td.cpu) }
            traceCPU(td.cpu)
            return
        }
        let rsp = td.context.pointee.rsp
        guard rsp != 0, Paging.isMapped(rsp, length: 56) else {
            Console.line { l in l.write("trace: #"); l.dec(td.id); l.write(" has no saved frame") }
            return
        }
        let p = UnsafeRawPointer(bitPattern: UInt(rsp))!
        Console.line { l in
            l.write("trace: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write("), "); l.write(InspectCommands.stateName(td.state))
            l.write(" on CPU "); l.dec(td.cpu); l.write(", saved rsp "); l.hex(rsp)
        }
        FaultReport.backtrace(rip: p.load(fromByteOffset: 48, as: UInt64.self), rbp: p.load(fromByteOffset: 40, as: UInt64.self),
                              ripIsReturnAddress: true)
    }

    static func traceCPU(_ c: Int) {
        if c == PerCPU.currentNumber {                 // the monitor's own CPU (the monitor stays on CPU 0)
            backtraceHere()
            return
        }
        if let ticket = IPIQueue.send(to: c, { _, _ in ControlCommands.backtraceHere() }) { IPIQueue.wait(ticket) }
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
