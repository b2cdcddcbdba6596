import Synchronization

// The serial monitor (in the spirit of DDB and Zircon's kernel console): a
// kernel thread on CPU 0 that reads COM1 through MonitorInput, edits lines with
// Core's LineEditor (backspace, Ctrl-U, Ctrl-C, history on up/down) and runs
// commands from a table that is data: every layer registers its own commands
// (Kern here and in MonitorCommands*.swift, the suites in SuiteCommands), so
// the monitor knows no layer above it. The rest of the kernel keeps running.
// Garbage in gets a one-line error, never a crash: lines are bounded, control
// bytes and non-ASCII are dropped and counted.

typealias MonitorHandler = (MonitorArgs) -> Void

enum Monitor {
    static let maxLine = 120
    nonisolated(unsafe) private static var table = MonitorCommandTable<MonitorHandler>()
    nonisolated(unsafe) private static var editor = LineEditor(capacity: maxLine)
    /// Commands run so far (tests and `uptime` read it).
    nonisolated(unsafe) private(set) static var executed = 0

    static func register(_ spec: MonitorCommandSpec, _ handler: @escaping MonitorHandler) {
        table.add(spec, handler)
    }

    static func helpLines() -> [String] { table.helpLines() }

    /// The monitor's thread; the boot thread returns to being an ordinary one.
    static func start() {
        MonitorInput.start()
        guard Thread.spawn("monitor", priority: Thread.highPriority, cpu: 0, { Monitor.loop() }) != nil else {
            panic("no memory for the monitor thread")
        }
    }

    static func loop() {
        Console.print("monitor: type 'help' for commands; 'exit' leaves QEMU with success")
        prompt()
        var out: [UInt8] = []
        var overruns = MonitorInput.overruns.load(ordering: .relaxed)
        while true {
            let b = MonitorInput.next()
            out.removeAll(keepingCapacity: true)
            let event = editor.feed(b, into: &out)
            echo(out)
            switch event {
            case .none:
                break
            case .overflow:
                Console.print("")
                Console.print(editor.overflowMessage)
                prompt()
                echo(editor.line)
            case .interrupt:
                MonitorInput.interrupted.store(false, ordering: .relaxed)
                echo(Array("^C\r\n".utf8))
                prompt()
            case .discarded:
                Console.line { l in l.write("line discarded: longer than "); l.dec(maxLine); l.write(" bytes") }
                prompt()
            case .submit(let line):
                MonitorInput.interrupted.store(false, ordering: .relaxed)
                // Bytes lost to a full input ring (a paste faster than us) may
                // have merged or cut lines: run nothing that may not be what
                // was typed.
                let now = MonitorInput.overruns.load(ordering: .relaxed)
                if now != overruns {
                    Console.line { l in l.write("input overrun: "); l.dec(now &- overruns); l.write(" bytes lost; line discarded") }
                    overruns = now
                } else {
                    execute(line)
                }
                prompt()
            }
        }
    }

    static func execute(_ line: [UInt8]) {
        guard let args = MonitorArgs(line: line) else { return }
        switch table.resolve(args) {
        case .success(let entry):
            executed += 1
            entry.handler(args)
        case .failure(let e):
            Console.print(e.message)
        }
    }

    /// A one-line error for a bad argument.
    static func fail(_ e: MonitorArgError) { Console.print(e.message) }

    /// True once Ctrl-C arrived while a long command runs (it should stop).
    static var interrupted: Bool { MonitorInput.interrupted.load(ordering: .relaxed) }

    private static func prompt() { echo(Array("quartet> ".utf8)) }

    private static func echo(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { Console.emit($0) }
    }
}
