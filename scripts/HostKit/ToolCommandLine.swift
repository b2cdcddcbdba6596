// The command line shared by the host tools that read one text and may draw it
// (ktrace, schedsim): `TOOL [--svg FILE] [FLAG...] [INPUT | -]`, where no INPUT
// or - reads stdin. Problems go to stderr as "TOOL: message"; a usage or I/O
// error exits with status 2 (HostTool.swift).

public struct ToolCommandLine: Equatable {
    /// --svg FILE.
    public var svgPath: String?
    /// INPUT as given, - included; nil when none was.
    public var input: String?
    /// The tool's own options without a value that were given (--check).
    public var flags: Set<String> = []

    public init(svgPath: String? = nil, input: String? = nil, flags: Set<String> = []) {
        self.svgPath = svgPath
        self.input = input
        self.flags = flags
    }

    /// No INPUT, or -.
    public var readsStdin: Bool { input == nil || input == "-" }

    /// The input's name in messages: the file, or <stdin>.
    public var source: String { readsStdin ? "<stdin>" : input! }

    public enum Parsed: Equatable {
        case run(ToolCommandLine)
        /// -h or --help, before any error.
        case help
        /// The first problem met, without the usage line.
        case usageError(String)
    }

    /// Reads `arguments` (without the program name) left to right. `flags` are
    /// the options the tool adds; `what` names INPUT in "one log at a time".
    public static func parse(_ arguments: [String], flags known: Set<String> = [], what: String) -> Parsed {
        var result = ToolCommandLine()
        var args = arguments[...]
        while let a = args.popFirst() {
            switch a {
            case "--svg":
                guard let p = args.popFirst() else { return .usageError("--svg needs a file name") }
                result.svgPath = p
            case "-h", "--help":
                return .help
            case _ where known.contains(a):
                result.flags.insert(a)
            default:
                if a.hasPrefix("-") && a != "-" { return .usageError("unknown option \(a)") }
                if result.input != nil { return .usageError("one \(what) at a time") }
                result.input = a
            }
        }
        return .run(result)
    }
}
