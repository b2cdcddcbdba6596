// `panic=monitor`: after the dump, a minimal monitor on the panic CPU for a
// post-mortem look. The other CPUs are stopped and may hold any lock, so it
// takes none and allocates nothing: polled input into a fixed buffer, byte
// comparisons instead of strings, and
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
                execute(line, n)
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

    /// Byte comparisons over the fixed buffer: no String, no array (the heap
    /// may be mid-change on a stopped CPU).
    private static func execute(_ line: InlineArray<80, UInt8>, _ n: Int) {
        func equals(_ s: StaticString) -> Bool {
            s.withUTF8Buffer { w in w.count == n && (0..<n).allSatisfy { line[$0] == w[$0] } }
        }
        func startsWith(_ s: StaticString) -> Bool {
            s.withUTF8Buffer { w in w.count <= n && (0..<w.count).allSatisfy { line[$0] == w[$0] } }
        }
        if n == 0 { return }
        if equals("cpus") { PanicDump.perCPUTable() }
        else if equals("locks") { InspectCommands.locks() }
        else if equals("ktrace dump") { KTrace.dump() }
        else if equals("exit") { QEMUExit.exit(code: FaultReport.exitCode) }
        else if equals("ps") {
            ThreadTable.forEachStopped { td in
                Console.line { l in
                    l.dec(td.id, width: 5); l.write("  "); l.padRight(td.name, width: 14); l.write("  ")
                    l.padRight(InspectCommands.stateName(td.state), width: 9); l.write(" cpu "); l.dec(td.cpu)
                }
            }
        } else if startsWith("trace cpu ") {
            var cpu = 0, digits = 0
            for i in 10..<n where line[i] >= 0x30 && line[i] <= 0x39 && digits < 3 { cpu = cpu * 10 + Int(line[i] - 0x30); digits += 1 }
            guard digits > 0, digits == n - 10, SMP.online.contains(cpu) else { Console.print("usage: trace cpu N (an online CPU)"); return }
            if cpu == PerCPU.currentNumber { Console.print("trace: this is the panic CPU; its backtrace is in the dump above") }
            else if StopCPUs.stoppedMask.contains(cpu) { PanicDump.stoppedCPU(cpu, registers: false) }
            else { Console.line { l in l.write("trace: CPU "); l.dec(cpu); l.write(" did not stop (no saved frame)") } }
        } else {
            Console.print("unknown command (cpus, ps, trace cpu N, locks, ktrace dump, exit)")
        }
    }

    private static func prompt() { for b in "panic> ".utf8 { echo(b) } }
    private static func echo(_ b: UInt8) { withUnsafeBytes(of: b) { Console.emit($0) } }
}
