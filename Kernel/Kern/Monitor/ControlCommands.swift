import Synchronization

// Monitor commands that act: help, trace, nice, bind, unbind, kill, top, ktrace,
// panic, halt, reboot, exit. Each bad argument gets one line saying what was
// expected (Core's MonitorArgs).

enum ControlCommands {
    /// The monitor's halt: interrupts off before anything else (pinned to this
    /// CPU; nothing runs here between the stopper claim and the end), then the
    /// stop, serialized with any other stopper, a panic included (E8): if one
    /// is under way this CPU gives way in StopCPUs.stopOthers and waits for its
    /// NMI (it never stops the panic owner).
    static func halt() -> Never {
        CPU.disableInterrupts()
        Console.print("halt: stopping every CPU")
        StopCPUs.stopOthers()
        // A stopped CPU may hold the console lock: print without it (the
        // others are stopped, nothing interleaves).
        _ = Console.claimEmergency()
        let stopped = StopCPUs.stoppedMask
        Console.line { l in
            l.write("halt: CPU "); l.dec(PerCPU.currentNumber); l.write(" stopped "); l.dec(stopped.count)
            l.write(" of "); l.dec(StopCPUs.requested.count); l.write(" other CPUs; halting")
        }
        CPU.haltForever()
    }

    static func register() {
        Monitor.register(MonitorCommandSpec("help", help: "this list")) { _ in
            for line in Monitor.helpLines() { Console.print(line) }
        }
        Monitor.register(MonitorCommandSpec("trace", synopsis: "<thread-id> | cpu <n>", help: "symbolized backtrace of a thread or a CPU",
                                            args: 1...2)) { a in trace(a) }
        Monitor.register(MonitorCommandSpec("nice", synopsis: "<id> <n>", help: "set a user-class lwp's nice (-20..20)", args: 2...2)) { a in
            guard let td = thread(a, 0) else { return }
            switch a.int(at: 1, name: "n", range: -20...20) {
            case .failure(let e): Monitor.fail(e)
            case .success(let n):
                if Bsd4Scheduler.setNice(of: td, n) { Console.line { l in l.write("nice: #"); l.dec(td.id); l.write(" now "); l.dec(n) } }
                else { Console.line { l in l.write("nice: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is not a user-class lwp") } }
            }
        }
        Monitor.register(MonitorCommandSpec("bind", synopsis: "<id> <cpu>", help: "move a workload thread to a CPU and keep it there",
                                            args: 2...2)) { a in bind(a) }
        Monitor.register(MonitorCommandSpec("unbind", synopsis: "<id>", help: "let a thread placed by bind go (the balancer may move it again)",
                                            args: 1...1)) { a in
            guard let td = thread(a, 0) else { return }
            guard td.pinned.load(ordering: .relaxed) else {
                Console.line { l in l.write("unbind: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is not bound by the monitor") }
                return
            }
            Balancer.setAffinity(td, -1)
            Console.line { l in l.write("unbind: #"); l.dec(td.id); l.write(" may run anywhere again") }
        }
        Monitor.register(MonitorCommandSpec("kill", synopsis: "<id>", help: "stop a workload thread (spawned ones)", args: 1...1)) { a in
            guard let td = thread(a, 0) else { return }
            guard td.killable else {
                Console.line { l in l.write("kill: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is not a workload; only spawned threads can be killed") }
                return
            }
            td.killRequested.store(true, ordering: .releasing)
            Console.line { l in l.write("kill: #"); l.dec(td.id); l.write(" asked to stop") }
        }
        Monitor.register(MonitorCommandSpec("top", help: "cpus and ps every second until a key is pressed")) { _ in top() }
        Monitor.register(MonitorCommandSpec("ktrace", synopsis: "start|stop|dump|clear", help: "kernel event tracing", args: 1...1)) { a in
            guard KTrace.available else { Console.print("ktrace: not available"); return }
            switch a.word(at: 0) ?? "" {
            case "start": KTrace.start(); Console.print("ktrace: recording")
            case "stop": KTrace.stop(); Console.print("ktrace: stopped")
            case "dump": KTrace.dump(stop: { Monitor.interrupted })
            case "clear": KTrace.clear(); Console.print("ktrace: cleared")
            default: Monitor.fail(a.error("expected start, stop, dump or clear, got '" + (a.word(at: 0) ?? "") + "'"))
            }
        }
        Monitor.register(MonitorCommandSpec("panic", synopsis: "<message>", help: "panic the kernel (panic= decides what follows)",
                                            args: 1...16)) { a in
            // Formatted here: writing a String may allocate, and nothing on
            // panic()'s way to its claim may (E7).
            var text = FixedLineBuffer()
            text.write(a.args.joined(separator: " "))
            panic("monitor") { l in l.append(text) }
        }
        Monitor.register(MonitorCommandSpec("halt", help: "stop every CPU (QEMU keeps running: quit it with Ctrl-A X)")) { _ in
            ControlCommands.halt()
        }
        Monitor.register(MonitorCommandSpec("reboot", help: "reset the machine (with -no-reboot QEMU exits)")) { _ in
            Console.print("reboot: resetting")
            CPU.reset()
        }
        Monitor.register(MonitorCommandSpec("exit", synopsis: "[code]", help: "leave QEMU through isa-debug-exit (0 = success)",
                                            args: 0...1)) { a in
            var code = 0
            if a.count == 1 {
                switch a.int(at: 0, name: "code", range: 0...255) {
                case .failure(let e): Monitor.fail(e); return
                case .success(let c): code = c
                }
            }
            QEMUExit.exit(code: UInt8(code))
        }
    }

    /// The thread named by argument `i`, or nil after an error line.
    static func thread(_ a: MonitorArgs, _ i: Int) -> Thread? {
        switch a.int(at: i, name: "id", range: 1...Int(Int32.max)) {
        case .failure(let e): Monitor.fail(e); return nil
        case .success(let id):
            guard let td = ThreadTable.find(id: id) else { Monitor.fail(a.error("no thread #" + MonitorArgs.decimal(id) + " (ps lists them)")); return nil }
            return td
        }
    }

    static func bind(_ a: MonitorArgs) {
        guard let td = thread(a, 0) else { return }
        let cpu: Int
        switch a.cpu(at: 1, online: SMP.online) {
        case .failure(let e): Monitor.fail(e); return
        case .success(let c): cpu = c
        }
        // Only threads nobody else places: bsd4 places lwps, and the kernel's
        // per-CPU threads must stay where they were created.
        guard td.killable || td.balanced, td.lwpIdentity == 0 else {
            Console.line { l in l.write("bind: #"); l.dec(td.id); l.write(" ("); l.write(td.name); l.write(") is not a workload the monitor may move") }
            return
        }
        Balancer.setAffinity(td, cpu)        // also drops a target the balancer chose
        Console.line { l in
            l.write("bind: #"); l.dec(td.id); l.write(" moves to CPU "); l.dec(cpu)
            l.write(" at its next preemption (retried until it is there) and stays; the balancer leaves it")
        }
    }

    static func top() {
        Console.print("top: every second; press any key to stop")
        while true {
            InspectCommands.cpus()
            InspectCommands.ps()
            for _ in 0..<10 {
                if Monitor.interrupted || MonitorInput.take() != nil {
                    while MonitorInput.take() != nil {}       // the key (or the Ctrl-C byte) is spent
                    MonitorInput.interrupted.store(false, ordering: .relaxed)
                    Console.print("top: stopped")
                    return
                }
                if Clock.enabled { _ = Sleep.sleep(on: Sleep.channel(Thread.current), timeoutTicks: max(1, Clock.hz / 10)) }
                else { TSC.delay(microseconds: 100_000) }
            }
        }
    }
}
