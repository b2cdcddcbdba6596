// The serial monitor: a small command prompt on COM1 for people at the console
// (`make run` without run=). Polled input for now; it becomes interrupt-driven and
// grows commands (cpus, threads, ipiq statistics, scheduler state) as the kernel does.
// Garbage in gets "unknown command", never a crash: lines are bounded and
// non-printable bytes are dropped.

enum Monitor {
    static let maxLine = 120

    static func run() -> Never {
        Console.print("monitor: type 'help' for commands; 'exit' leaves QEMU with success")
        var line: [UInt8] = []
        prompt()
        while true {
            guard let byte = Console.poll() else { CPU.pause(); continue }
            switch byte {
            case 0x0D, 0x0A:
                Console.print("")
                execute(line)
                line.removeAll(keepingCapacity: true)
                prompt()
            case 0x08, 0x7F:                     // backspace / delete
                if !line.isEmpty { line.removeLast(); echo("\u{8} \u{8}") }
            case 0x20...0x7E:
                if line.count < maxLine { line.append(byte); echoByte(byte) }
            default:
                break                            // control bytes and non-ASCII are ignored
            }
        }
    }

    private static func prompt() { echo("quartet> ") }
    private static func echo(_ s: StaticString) { s.withUTF8Buffer { Console.emit(UnsafeRawBufferPointer($0)) } }
    private static func echoByte(_ b: UInt8) { withUnsafeBytes(of: b) { Console.emit($0) } }

    static func execute(_ bytes: [UInt8]) {
        let words = String(decoding: bytes, as: UTF8.self).split(separator: " ").map(String.init)
        guard let command = words.first else { return }
        switch command {
        case "help":
            Console.print("  help            this list")
            Console.print("  list            the test suites")
            Console.print("  run NAME...     run test suites (then QEMU exits with the result)")
            Console.print("  mem             memory summary")
            Console.print("  sched           bsd4: per-CPU uschedcp/upri, run queues, lwps")
            Console.print("  demo on|off     the bsd4 demo's share reports (make run)")
            Console.print("  balance         the load balancer's last report (read under a passive reference)")
            Console.print("  options         the parsed kernel command line and every known option")
            Console.print("  exit [CODE]     leave QEMU through isa-debug-exit (0 = success)")
        case "list":
            TestRunner.printList()
        case "run":
            let names = Array(words.dropFirst())
            if names.isEmpty { Console.print("run: name one or more suites ('list' shows them), or 'all'") }
            else if names == ["list"] { TestRunner.printList() }
            else { TestRunner.run(names) }
        case "sched":
            Bsd4Dump.print()
        case "balance":
            Balancer.printReport()
        case "demo":
            let on = words.count > 1 && words[1] == "on"
            if words.count < 2 || (words[1] != "on" && words[1] != "off") { Console.print("demo: say 'demo on' or 'demo off'"); return }
            Bsd4Demo.setReporting(on)
            Console.print(on ? "demo: reports on" : "demo: reports off")
        case "mem":
            BootReport.memorySummary()
        case "options":
            KernelOptions.printParsed()
            Console.print("known options:")
            KernelOptions.printKnown()
        case "exit":
            let code = words.count > 1 ? UInt8(words[1]) : 0
            guard let code else { Console.print("exit: the code must be 0..255"); return }
            QEMUExit.exit(code: code)
        default:
            Console.line { $0.write("unknown command '"); $0.write(command); $0.write("' (try 'help')") }
        }
    }
}
