// A host tool's messages, its command line (ToolCommandLine.swift) and input.

import Foundation

/// A host tool's name, for its messages on stderr.
public struct HostTool {
    public let name: String

    public init(_ name: String) { self.name = name }

    public func warn(_ message: String) {
        FileHandle.standardError.write(Data("\(name): \(message)\n".utf8))
    }

    public func fail(_ message: String, status: Int32) -> Never {
        warn(message)
        exit(status)
    }

    /// This process's arguments parsed: on -h or --help prints `usage` and
    /// `help` and exits 0; on a usage error names it, then `usage`, and exits 2.
    public func commandLine(usage: String, help: String, flags: Set<String> = [], what: String) -> ToolCommandLine {
        switch ToolCommandLine.parse(Array(CommandLine.arguments.dropFirst()), flags: flags, what: what) {
        case .run(let c): return c
        case .help:
            print(usage)
            print(help)
            exit(0)
        case .usageError(let m): fail("\(m)\n\(usage)", status: 2)
        }
    }

    /// The whole input as UTF-8 text (stdin, or the file); exits 2 when the
    /// file cannot be read.
    public func readInput(_ c: ToolCommandLine) -> String {
        if c.readsStdin { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        guard let data = FileManager.default.contents(atPath: c.source) else { fail("cannot read \(c.source)", status: 2) }
        return String(decoding: data, as: UTF8.self)
    }
}
