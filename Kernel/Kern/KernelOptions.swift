// The kernel command line (`-append`, `make run CMDLINE=...`): every option the
// kernel understands is registered here with a one-line description. An unknown
// option is reported and ignored; a malformed word is reported and skipped.

enum KernelOptions {
    struct Option {
        let key: StaticString
        let help: StaticString
    }

    /// Every known option. Negative-control knobs re-introduce a historical bug on
    /// purpose; they are named `bug.*` so nobody mistakes them for tuning.
    static let known: [Option] = [
        Option(key: "run", help: "run=NAME[,NAME...] | all | bench | list: run in-kernel suites, then exit QEMU"),
        Option(key: "apic", help: "apic=x2apic|xapic: local APIC access (default x2APIC when the CPU has it)"),
        Option(key: "smp.maxcpus", help: "smp.maxcpus=N: start at most N CPUs (boot CPU included)"),
        Option(key: "tick", help: "tick=0|1: the periodic timer tick on every CPU (default 1)"),
        Option(key: "torture.seconds", help: "torture.seconds=N: duration of each torture test (default 2)"),
        Option(key: "bug.sleep_nointerlock", help: "bug.sleep_nointerlock=1: negative control, sleep releases its interlock before queueing (lost wake-ups)"),
        Option(key: "ipiq.fifo", help: "ipiq.fifo=N: slots per IPI ring, a power of two 4..256 (default 32)"),
        Option(key: "bug.ipiq_nofence", help: "bug.ipiq_nofence=1: negative control, no MFENCE between releasing the IPI poll latch and the re-check"),
        Option(key: "bug.ipiq_noargfence", help: "bug.ipiq_noargfence=1: no fence between reading rindex and the message arguments (seed 003)"),
        Option(key: "litmus.iterations", help: "litmus.iterations=N: at most N runs of each litmus test (default 200000)"),
        Option(key: "litmus.tests", help: "litmus.tests=SB,MP,...: run only these litmus tests (default all)"),
        Option(key: "litmus.ms", help: "litmus.ms=N: at most N ms per litmus test (default 300)"),
        Option(key: "bench.ms", help: "bench.ms=N: time per benchmark (default 400)"),
        Option(key: "locktorture.lock", help: "locktorture.lock=ticket|broken: the lock spinlock-torture hammers; broken is the negative control"),
    ]

    nonisolated(unsafe) static var parsed = ParsedCommandLine(options: [], problems: [], imageName: nil)

    /// Parses the multiboot command line (already validated and NUL-bounded).
    static func load(_ bytes: UnsafeRawBufferPointer?) {
        if let bytes { parsed = KernelCommandLine.parse(bytes, skipImageName: true) }
        for problem in parsed.problems {
            Console.line { l in
                l.write(problem.severity == .error ? "cmdline: error: " : "cmdline: warning: ")
                l.write(problem.reason); l.write(": '"); l.write(problem.word); l.write("'")
            }
        }
        for key in KernelCommandLine.unknownKeys(parsed, known: known.map { $0.key }) {
            Console.line { $0.write("cmdline: unknown option '"); $0.write(key); $0.write("' ignored (known: see 'options' in the monitor or README)") }
        }
    }

    static func printParsed() {
        if parsed.options.isEmpty {
            Console.print("cmdline: (no options)")
        }
        for o in parsed.options {
            Console.line { $0.write("cmdline: "); $0.write(o.key); $0.write(" = "); $0.write(o.value) }
        }
    }

    static func printKnown() {
        for o in known { Console.line { $0.write("  "); $0.padRight(o.key, width: 16); $0.write(o.help) } }
    }

    static func value(_ key: String) -> String? { parsed.value(for: key) }
    static func list(_ key: String) -> [String] { parsed.list(key) }
    static func flag(_ key: String, default d: Bool) -> Bool {
        parsed.value(for: key) == nil ? d : parsed.flag(key)
    }
    static func int(_ key: String, default d: Int) -> Int { parsed.int(key, default: d) }
}
