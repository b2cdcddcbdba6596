// MonitorCommand.swift - monitor command lines: words, typed arguments and the
// command table. (Not the kernel command line: see KernelCommandLine.swift.)
//
// Every mistake at the prompt gets one line that says what was wrong and what
// was expected, prefixed by the command's name as Unix tools do:
//     nice: n: expected a number from -20 to 20, got 'x'
//     usage: nice <id> <n>
//     unknown command 'xyzzy' (try 'help')
// Errors are values (Result, MonitorArgError), not `throws`: an untyped throw
// would need `any Error`, which Embedded Swift does not have.
//
// The table is generic over the handler so that Core knows nothing about the
// kernel: the kernel instantiates it with its own closure or enum type.
// Words the user typed are echoed through KernelCommandLine.echo (bounded,
// unprintable bytes as '?'), since a line need not come from LineEditor.

struct MonitorArgError: Error, Equatable {
    var message: String
}

/// A submitted line split into words at blanks (spaces, tabs; runs of them
/// count as one). `name` is the first word, `args` the rest.
struct MonitorArgs {
    let name: String
    let args: [String]

    /// nil for a line with no words, which is not an error: Enter on an
    /// empty prompt just prints another prompt.
    init?(line: [UInt8]) {
        let words = line.split(omittingEmptySubsequences: true) { $0 == 0x20 || $0 == 0x09 }
        guard let first = words.first else { return nil }
        name = String(decoding: first, as: UTF8.self)
        args = words.dropFirst().map { String(decoding: $0, as: UTF8.self) }
    }

    var count: Int { args.count }

    func word(at i: Int) -> String? {
        i >= 0 && i < args.count ? args[i] : nil
    }

    /// Argument `i` as an integer in `range` (decimal, or hex with 0x, with an
    /// optional '-'; the parser of the kernel command line). `name` names the
    /// argument in the message, as in the synopsis.
    func int(at i: Int, name arg: String, range: ClosedRange<Int>) -> Result<Int, MonitorArgError> {
        let expected = "expected a number from " + MonitorArgs.decimal(range.lowerBound)
            + " to " + MonitorArgs.decimal(range.upperBound)
        guard let w = word(at: i) else {
            return .failure(error(arg + ": missing, " + expected))
        }
        guard let n = ParsedCommandLine.parseInt(w), range.contains(n) else {
            return .failure(error(arg + ": " + expected + ", got '" + KernelCommandLine.echo(w.utf8) + "'"))
        }
        return .success(n)
    }

    /// Argument `i` as the number of an online CPU. A number out of 0..63 and
    /// an offline CPU get different messages: the first is a typo, the second
    /// is worth knowing.
    func cpu(at i: Int, online: CPUMask) -> Result<Int, MonitorArgError> {
        let n: Int
        switch int(at: i, name: "cpu", range: 0...(CPUMask.capacity - 1)) {
        case .failure(let e): return .failure(e)
        case .success(let v): n = v
        }
        if online.contains(n) { return .success(n) }
        return .failure(error("cpu " + MonitorArgs.decimal(n) + " is not online (online: "
                              + MonitorArgs.cpuList(online) + ")"))
    }

    func cpu(at i: Int, online: UInt64) -> Result<Int, MonitorArgError> {
        cpu(at: i, online: CPUMask(bits: online))
    }

    func cpu(at i: Int, online: [Bool]) -> Result<Int, MonitorArgError> {
        var m = CPUMask()
        for (c, up) in online.prefix(CPUMask.capacity).enumerated() where up { m.insert(c) }
        return cpu(at: i, online: m)
    }

    func error(_ text: String) -> MonitorArgError {
        MonitorArgError(message: name + ": " + text)
    }

    // MARK: text helpers

    static func decimal(_ v: Int) -> String {
        var d: [UInt8] = []
        var m = v.magnitude
        repeat { d.append(0x30 + UInt8(m % 10)); m /= 10 } while m > 0
        if v < 0 { d.append(0x2D) }
        return String(decoding: d.reversed(), as: UTF8.self)
    }

    /// "0-3,6" (ranges of consecutive CPUs), "none" for an empty set.
    static func cpuList(_ m: CPUMask) -> String {
        var s = ""
        var c = 0
        while c < CPUMask.capacity {
            guard m.contains(c) else { c += 1; continue }
            var e = c
            while e + 1 < CPUMask.capacity && m.contains(e + 1) { e += 1 }
            if !s.isEmpty { s += "," }
            s += decimal(c)
            if e > c { s += "-" + decimal(e) }
            c = e + 1
        }
        return s.isEmpty ? "none" : s
    }
}

/// One command as the user sees it: `help` lists `name synopsis  help`.
struct MonitorCommandSpec {
    var name: String
    /// The arguments, e.g. "<id> <n>" or "[CODE]"; empty for none.
    var synopsis: String
    var help: String
    var minArgs: Int
    /// Int.max for "any number".
    var maxArgs: Int

    init(_ name: String, synopsis: String = "", help: String, args: ClosedRange<Int> = 0...0) {
        self.name = name
        self.synopsis = synopsis
        self.help = help
        minArgs = args.lowerBound
        maxArgs = args.upperBound
    }

    var usage: String {
        synopsis.isEmpty ? "usage: " + name : "usage: " + name + " " + synopsis
    }

    /// nil when `args` has an acceptable number of arguments, else the usage line.
    func checkCount(_ args: MonitorArgs) -> MonitorArgError? {
        args.count >= minArgs && args.count <= maxArgs ? nil : MonitorArgError(message: usage)
    }
}

/// The monitor's commands, in the order `help` lists them, each with a
/// handler of the kernel's choosing.
struct MonitorCommandTable<Handler> {
    struct Entry {
        var spec: MonitorCommandSpec
        var handler: Handler
    }

    private(set) var entries: [Entry] = []

    init() {}

    /// Names must be unique: a second entry could never be reached.
    mutating func add(_ spec: MonitorCommandSpec, _ handler: Handler) {
        precondition(lookup(spec.name) == nil, "duplicate monitor command")
        entries.append(Entry(spec: spec, handler: handler))
    }

    func lookup(_ name: String) -> Entry? {
        // Byte comparison: names are ASCII, and it keeps Unicode
        // normalisation out of the kernel's hot path.
        entries.first { $0.spec.name.utf8.elementsEqual(name.utf8) }
    }

    /// The entry to run for `args`, or the one line to print instead: an
    /// unknown command or a usage line.
    func resolve(_ args: MonitorArgs) -> Result<Entry, MonitorArgError> {
        guard let e = lookup(args.name) else {
            return .failure(MonitorArgError(message: "unknown command '"
                + KernelCommandLine.echo(args.name.utf8) + "' (try 'help')"))
        }
        if let err = e.spec.checkCount(args) { return .failure(err) }
        return .success(e)
    }

    /// "  name synopsis   help", the help texts aligned two columns after the
    /// longest name plus synopsis.
    func helpLines() -> [String] {
        func left(_ s: MonitorCommandSpec) -> String {
            s.synopsis.isEmpty ? s.name : s.name + " " + s.synopsis
        }
        var width = 0
        for e in entries { width = max(width, left(e.spec).utf8.count) }
        return entries.map { e in
            let l = left(e.spec)
            let pad = [UInt8](repeating: 0x20, count: width - l.utf8.count + 2)
            return "  " + l + String(decoding: pad, as: UTF8.self) + e.spec.help
        }
    }
}
