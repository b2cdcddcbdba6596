// `panic=monitor`: after the dump, a minimal monitor on the panic CPU for a
// post-mortem look. The other CPUs are stopped and may hold any lock, so it
// takes none and allocates nothing: polled input into a fixed buffer, and
// commands that read through raw memory (cpus, trace cpu N) or through data
// that only atomics guard (locks, ktrace dump, ps over the thread table
// without its lock).

enum PanicMonitor {
    static func run() -> Never {
        Console.print("panic: post-mortem monitor (panic=monitor): cpus, ps, trace cpu N, locks, ktrace dump, exit")
        var line = InlineArray<80, UInt8>(repeating: 0)
        var n = 0
        prompt()
        while true {
            guard let b = Console.poll() else { CPU.pause(); continue }
            switch b {
            case 0x0D, 0x0A:
                Console.print("")
                var words: [UInt8] = []                        // small; the heap lock is bypassed after a panic
                for i in 0..<n { words.append(line[i]) }
                execute(words)
                n = 0
                prompt()
            case 0x08, 0x7F:
                if n > 0 { n -= 1; echo(0x08); echo(0x20); echo(0x08) }
            case 0x20...0x7E:
                if n < 80 { line[n] = b; n += 1; echo(b) }
            default:
                break
            }
        }
    }

    private static func execute(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let w = text.split(separator: " ").map(String.init)
        guard let c = w.first else { return }
        switch c {
        case "cpus": PanicDump.perCPUTable()
        case "locks": InspectCommands.locks()
        case "ktrace": if w.count == 2 && w[1] == "dump" { KTrace.dump() } else { Console.print("usage: ktrace dump") }
        case "ps":
            ThreadTable.forEachStopped { td in
                Console.line { l in
                    l.dec(td.id, width: 5); l.write("  "); l.padRight(td.name, width: 14); l.write("  ")
                    l.padRight(InspectCommands.stateName(td.state), width: 9); l.write(" cpu "); l.dec(td.cpu)
                }
            }
        case "trace":
            guard w.count == 3, w[1] == "cpu", let cpu = Int(w[2]), SMP.online.contains(cpu) else {
                Console.print("usage: trace cpu N (an online CPU)"); return
            }
            if cpu == PerCPU.currentNumber { Console.print("trace: this is the panic CPU; its backtrace is in the dump above") }
            else if StopCPUs.stoppedMask.contains(cpu) { PanicDump.stoppedCPU(cpu, registers: false) }
            else { Console.line { l in l.write("trace: CPU "); l.dec(cpu); l.write(" did not stop (no saved frame)") } }
        case "exit": QEMUExit.exit(code: FaultReport.exitCode)
        default: Console.line { l in l.write("unknown command '"); l.write(c); l.write("' (cpus, ps, trace cpu N, locks, ktrace dump, exit)") }
        }
    }

    private static func prompt() { for b in "panic> ".utf8 { echo(b) } }
    private static func echo(_ b: UInt8) { withUnsafeBytes(of: b) { Console.emit($0) } }
}
