// benchreport: tables, Markdown, an SVG chart, the Linux comparison and the
// scale table from the BENCH lines of serial logs (docs/benchmarks.md; the
// parser and writers are scripts/BenchKit). One log = one boot.
//
//   swift run benchreport table build/bench/quartet-tcg.log
//
// Problems with a log go to stderr with their line numbers; a malformed BENCH
// line is left out and the rest is used. Exit status: 0 done, 1 a log is
// unreadable or holds no BENCH line at all (the others are still reported) or
// an output cannot be written, 2 bad usage.

import BenchKit
import Foundation

let usage = """
usage: benchreport table    [--accel NAME] [--host-cpu TEXT] LOG...
       benchreport markdown [--accel NAME] [--host-cpu TEXT] [--append FILE] LOG...
       benchreport svg      --out FILE LOG...
       benchreport compare  --quartet LOG --linux LOG [--accel NAME] [--host-cpu TEXT] [--markdown] [--append FILE]
       benchreport scale    [--accel NAME] [--host-cpu TEXT] [--markdown] [--append FILE] LOG...
  table     one aligned table per log: median, p99, samples, unit, ratio to the floor
  markdown  the same as Markdown under a dated heading; --append FILE adds it to FILE
            (bench/results.md), which is created with a heading if absent
  svg       the ratios to the floors as a bar chart, one colour per log
  compare   Quartet against Linux per shared measurement (docs/benchmarks.md's pairs)
  scale     boot time and IPI-queue throughput against -smp (logs of run=bench-scale)
LOG is a serial log, or - for stdin. --accel names the accelerator (tcg, kvm);
--host-cpu describes the machine QEMU ran on. --append always writes Markdown.
"""

func say(_ message: String) { FileHandle.standardError.write(Data("benchreport: \(message)\n".utf8)) }

func usageError(_ message: String) -> Never {
    say(message)
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "-h" || args.first == "--help" { print(usage); exit(0) }
guard let command = args.first else { usageError("no command") }
args.removeFirst()

let allowed: [String: Set<String>] = [
    "table": ["--accel", "--host-cpu"],
    "markdown": ["--accel", "--host-cpu", "--append"],
    "svg": ["--out"],
    "compare": ["--quartet", "--linux", "--accel", "--host-cpu", "--markdown", "--append"],
    "scale": ["--accel", "--host-cpu", "--markdown", "--append"],
]
guard let permitted = allowed[command] else { usageError("unknown command '\(command)'") }
let flagOptions: Set<String> = ["--markdown"]

var options: [String: String] = [:]
var markdownFlag = false
var files: [String] = []
while let a = args.first {
    args.removeFirst()
    if a == "-h" || a == "--help" { print(usage); exit(0) }
    if a.hasPrefix("--") {
        guard permitted.contains(a) else { usageError("\(command) takes no option \(a)") }
        if flagOptions.contains(a) { markdownFlag = true; continue }
        guard let v = args.first, !v.isEmpty else { usageError("\(a) needs a value") }
        args.removeFirst()
        guard options[a] == nil else { usageError("\(a) given twice") }
        options[a] = v
    } else {
        files.append(a)
    }
}

let context = BenchContext(accel: options["--accel"], hostCPU: options["--host-cpu"], date: Date())
var status: Int32 = 0
var stdinUsed = false

/// Reads and parses a log; reports its problems. nil (and status 1) when it
/// cannot be read or holds no BENCH line.
func load(_ path: String) -> NamedLog? {
    let data: Data?
    if path == "-" {
        if stdinUsed { say("- (stdin) given twice"); status = 1; return nil }
        stdinUsed = true
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        data = FileManager.default.contents(atPath: path)
    }
    let name = path == "-" ? "<stdin>" : path
    guard let data else { say("cannot read \(name)"); status = 1; return nil }
    let log = BenchParser.parse(String(decoding: data, as: UTF8.self))
    for d in log.diagnostics { say("\(name): \(d)") }
    guard !log.records.isEmpty else {
        let why = log.skips.first.map { " (SKIP \($0.what): \($0.reason))" } ?? ""
        say("\(name) holds no valid BENCH line\(why)")
        status = 1
        return nil
    }
    return NamedLog(name, log)
}

/// Stands in for a log that could not be used, so that compare still names why.
func placeholder(_ path: String) -> NamedLog {
    var log = FileManager.default.contents(atPath: path).map { BenchParser.parse(String(decoding: $0, as: UTF8.self)) }
        ?? BenchLog()
    if log.skips.isEmpty {
        let why = FileManager.default.isReadableFile(atPath: path) ? "no BENCH lines in \(path)" : "cannot read \(path)"
        log.diagnostics.insert(BenchDiagnostic(line: 0, why), at: 0)
    }
    return NamedLog(path, log)
}

func appendMarkdown(_ text: String) {
    guard let path = options["--append"] else { return }
    do {
        try BenchResultsFile.append(text, toFile: path)
    } catch {
        say("cannot append to \(path): \(error.localizedDescription)")
        status = 1
    }
}

switch command {
case "table", "markdown":
    guard !files.isEmpty else { usageError("\(command) needs at least one LOG") }
    var first = true
    for f in files {
        guard let l = load(f) else { continue }
        if !first { print("") }
        first = false
        if command == "table" {
            print(BenchReport.table(l, context), terminator: "")
        } else {
            let text = BenchReport.markdown(l, context)
            print(text, terminator: "")
            appendMarkdown(text)
        }
    }

case "svg":
    guard let out = options["--out"] else { usageError("svg needs --out FILE") }
    guard !files.isEmpty else { usageError("svg needs at least one LOG") }
    let logs = files.compactMap(load)
    guard !logs.isEmpty else { exit(1) }
    let series = logs.map { l -> (name: String, log: BenchLog) in
        let env = l.log.env
        let what = [env?.system, env?.hypervisor, env?.smp.map { "smp \($0)" }].compactMap { $0 }.joined(separator: " ")
        let file = (l.source as NSString).lastPathComponent
        return (what.isEmpty ? file : "\(what) (\(file))", l.log)
    }
    let svg = BenchSVG.render(series, title: "Quartet benchmarks: ratio to the floor, \(BenchFormat.utc(context.date))")
    do {
        try svg.write(toFile: out, atomically: true, encoding: .utf8)
    } catch {
        say("cannot write \(out): \(error.localizedDescription)")
        exit(1)
    }

case "compare":
    guard files.isEmpty else { usageError("compare takes its logs as --quartet LOG --linux LOG") }
    guard let qPath = options["--quartet"], let lPath = options["--linux"] else {
        usageError("compare needs --quartet LOG and --linux LOG")
    }
    let q = load(qPath) ?? placeholder(qPath)
    let l = load(lPath) ?? placeholder(lPath)
    print(BenchReport.compare(quartet: q, linux: l, context, markdown: markdownFlag), terminator: "")
    if options["--append"] != nil {
        appendMarkdown(BenchReport.compare(quartet: q, linux: l, context, markdown: true))
    }

case "scale":
    guard !files.isEmpty else { usageError("scale needs at least one LOG") }
    let logs = files.compactMap(load)
    guard !logs.isEmpty else { exit(1) }
    print(BenchReport.scale(logs, context, markdown: markdownFlag), terminator: "")
    if options["--append"] != nil { appendMarkdown(BenchReport.scale(logs, context, markdown: true)) }

default:
    usageError("unknown command '\(command)'")
}
exit(status)
