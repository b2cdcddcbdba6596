// ktrace: turns the kernel's trace dump, found in a serial log, into a Chrome
// Trace Event JSON file (open it at ui.perfetto.dev or chrome://tracing) and,
// with --svg FILE, a timeline picture. The dump format is described in
// scripts/KtraceKit/Parser.swift.
//
//   swift run ktrace < serial.log > trace.json
//   swift run ktrace --svg trace.svg < serial.log > trace.json
//
// Problems go to stderr, one line each with its log line number; a malformed
// K line is skipped. Exit status: 0 a dump was converted, 1 no dump in the log,
// 2 a usage or I/O error.

import Foundation
import KtraceKit

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("ktrace: \(message)\n".utf8))
    exit(status)
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("ktrace: \(message)\n".utf8))
}

let usage = "usage: ktrace [--svg FILE] [LOG | -] > trace.json   (no LOG or -: read stdin)"
var svgPath: String?
var input: String?
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--svg":
        guard let p = args.popFirst() else { fail("--svg needs a file name\n\(usage)", status: 2) }
        svgPath = p
    case "-h", "--help":
        print(usage)
        print("Reads a Quartet serial log, finds the last complete 'ktrace: begin' ... 'ktrace: end' dump")
        print("and writes it as Chrome Trace Event JSON to stdout (ui.perfetto.dev, chrome://tracing).")
        print("--svg FILE also writes an SVG timeline (one lane per CPU) to FILE.")
        exit(0)
    default:
        if a.hasPrefix("-") && a != "-" { fail("unknown option \(a)\n\(usage)", status: 2) }
        if input != nil { fail("one log at a time\n\(usage)", status: 2) }
        input = a
    }
}

let source = (input == nil || input == "-") ? "<stdin>" : input!
let data: Data
if source == "<stdin>" {
    data = FileHandle.standardInput.readDataToEndOfFile()
} else {
    guard let d = FileManager.default.contents(atPath: source) else { fail("cannot read \(source)", status: 2) }
    data = d
}

let log = KtraceParser.parse(String(decoding: data, as: UTF8.self))
for d in log.diagnostics { warn("\(source): \(d)") }
guard let dump = log.dump else { exit(1) }

let timeline = KtraceTimeline(dump)
FileHandle.standardOutput.write(Data(ChromeTrace.render(timeline).utf8))
if let svgPath {
    do {
        try SVGTimeline.render(timeline).write(toFile: svgPath, atomically: true, encoding: .utf8)
    } catch {
        fail("cannot write \(svgPath): \(error.localizedDescription)", status: 2)
    }
}
func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
warn("\(count(dump.cpus, "CPU")), \(count(dump.events.count, "event")) (\(count(dump.unknownEventCount, "unknown kind")), "
     + "\(count(dump.malformed.count, "malformed K line")) skipped), \(count(timeline.flows.count, "IPI")) paired "
     + "(\(count(timeline.unmatchedSends, "send")) and \(count(timeline.unmatchedReceives, "receive")) unpaired), "
     + "dropped=\(dump.dropped)")
