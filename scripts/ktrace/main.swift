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
import HostKit
import KtraceKit

let tool = HostTool("ktrace")
let usage = "usage: ktrace [--svg FILE] [--hit] [LOG | -] > trace.json   (no LOG or -: read stdin)"
let commandLine = tool.commandLine(usage: usage, help: """
    Reads a Quartet serial log, finds the last complete 'ktrace: begin' ... 'ktrace: end' dump
    and writes it as Chrome Trace Event JSON to stdout (ui.perfetto.dev, chrome://tracing).
    --svg FILE also writes an SVG timeline (one lane per CPU) to FILE.
    --hit cuts the trace around the last critical_exit window in which a rendezvous
    action ran on the same CPU (status 1 if there is none).
    """, flags: ["--hit"], what: "log")
let source = commandLine.source

let log = KtraceParser.parse(tool.readInput(commandLine))
for d in log.diagnostics { tool.warn("\(source): \(d)") }
guard let whole = log.dump else { exit(1) }
let dump: KtraceDump
if commandLine.flags.contains("--hit") {
    guard let cut = whole.cutAtHit() else {
        tool.warn("\(source): no critical_exit window with a rendezvous action in it")
        exit(1)
    }
    dump = cut
} else {
    dump = whole
}

let timeline = KtraceTimeline(dump)
FileHandle.standardOutput.write(Data(ChromeTrace.render(timeline).utf8))
if let svgPath = commandLine.svgPath {
    do {
        try SVGTimeline.render(timeline).write(toFile: svgPath, atomically: true, encoding: .utf8)
    } catch {
        tool.fail("cannot write \(svgPath): \(error.localizedDescription)", status: 2)
    }
}
func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
tool.warn("\(count(dump.cpus, "CPU")), \(count(dump.events.count, "event")) (\(count(dump.unknownEventCount, "unknown kind")), "
          + "\(count(dump.malformed.count, "malformed K line")) skipped), \(count(timeline.flows.count, "IPI")) paired "
          + "(\(count(timeline.unmatchedSends, "send")) and \(count(timeline.unmatchedReceives, "receive")) unpaired), "
          + "dropped=\(dump.dropped)")
