import Synchronization

// The suites' monitor commands: list, run (back to the prompt afterwards),
// demo, spawn. Registered by the Init layer, so that the monitor (Kern) never
// names a suite.

enum SuiteCommands {
    static func register() {
        Monitor.register(MonitorCommandSpec("list", help: "the test suites")) { _ in TestRunner.printList() }
        Monitor.register(MonitorCommandSpec("run", synopsis: "<suite>... [key=value]...",
                                            help: "run test suites with options, then back to the prompt", args: 1...16)) { a in
            let names = a.args.filter { !$0.contains("=") }
            let options = a.args.filter { $0.contains("=") }
            guard !names.isEmpty else { Console.print("run: name one or more suites ('list' shows them), or 'all'"); return }
            if let unknown = names.first(where: { $0 != "all" && $0 != "bench" && TestRunner.find($0) == nil }) {
                Console.print("run: unknown suite '" + unknown + "' ('list' shows them)")
                return
            }
            // The suites run in a thread of ordinary priority (as under run=),
            // not in the monitor's high-priority one: a suite that yields on
            // CPU 0 waiting for its own workers must not starve them.
            if let e = KernelOptions.withOverrides(options, {
                guard let td = Thread.spawn("run", cpu: 0, { TestRunner.runAndReturn(names) }) else {
                    Console.print("run: no memory for the runner thread"); return
                }
                td.join()
            }) { Console.print("run: " + e) }
        }
        Monitor.register(MonitorCommandSpec("demo", synopsis: "on|off", help: "the bsd4 demo's share reports", args: 1...1)) { a in
            switch a.word(at: 0) {
            case "on": Bsd4Demo.setReporting(true); Console.print("demo: reports on")
            case "off": Bsd4Demo.setReporting(false); Console.print("demo: reports off")
            default: Console.print("demo: say 'demo on' or 'demo off'")
            }
        }
        Monitor.register(MonitorCommandSpec("spawn", synopsis: "hog|sleeper [cpu] | lwp <n>",
                                            help: "start a workload (ps shows it, kill stops it)", args: 1...2)) { a in spawn(a) }
    }

    static func spawn(_ a: MonitorArgs) {
        let kind = a.word(at: 0) ?? ""
        switch kind {
        case "hog", "sleeper":
            var cpu = 0
            if a.count == 2 {
                switch a.cpu(at: 1, online: SMP.online) {
                case .failure(let e): Monitor.fail(e); return
                case .success(let c): cpu = c
                }
            }
            let sleeper = kind == "sleeper"
            if sleeper && !Clock.enabled { Console.print("spawn: a sleeper needs the tick (tick=1) to wake"); return }
            guard let td = Thread.spawn(sleeper ? "sleeper" : "hog", cpu: cpu, balanced: !sleeper, {
                let me = Thread.current
                while !me.killRequested.load(ordering: .acquiring) {
                    TSC.spin(cycles: TSC.ticksPerMs)
                    if sleeper { _ = Sleep.sleep(on: Sleep.channel(me), timeoutTicks: max(1, Clock.hz / 100)) }
                }
            }) else { Console.print("spawn: no memory for a thread"); return }
            td.killable = true
            Console.line { l in l.write("spawn: "); l.write(td.name); l.write(" #"); l.dec(td.id); l.write(" on CPU "); l.dec(cpu) }
        case "lwp":
            guard a.count == 2 else { Console.print("usage: spawn lwp <nice>"); return }
            switch a.int(at: 1, name: "nice", range: -20...20) {
            case .failure(let e): Monitor.fail(e)
            case .success(let nice):
                guard let lp = Bsd4Scheduler.spawn("lwp", nice: nice, cpu: SMP.online.nth(SMP.online.count - 1) ?? 0, { lp in
                    while !(lp.thread?.killRequested.load(ordering: .acquiring) ?? true) {
                        Bsd4Scheduler.userret(lp)
                        TSC.spin(cycles: TSC.ticksPerMs / 10)
                        lp.progress.wrappingAdd(1, ordering: .relaxed)
                    }
                }), let td = lp.thread else { Console.print("spawn: no memory for an lwp"); return }
                td.killable = true
                Console.line { l in l.write("spawn: lwp #"); l.dec(td.id); l.write(" nice "); l.dec(nice) }
            }
        default:
            Console.print("spawn: expected hog, sleeper or lwp, got '" + kind + "'")
        }
    }
}
