import BenchKit
import Foundation

// benchreport: tables, Markdown, an SVG chart, the Linux comparison and the
// scale table from the BENCH lines of serial logs (docs/benchmarks.md).

let usage = """
usage: benchreport table    [--accel NAME] [--host-cpu TEXT] LOG...
       benchreport markdown [--accel NAME] [--host-cpu TEXT] [--append FILE] LOG...
       benchreport svg      --out FILE LOG...
       benchreport compare  --quartet LOG --linux LOG [--accel NAME] [--host-cpu TEXT] [--markdown] [--append FILE]
       benchreport scale    [--markdown] [--append FILE] LOG...
"""

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
    exit(status)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { fail(usage, status: 2) }
args.removeFirst()
var options: [String: String] = [:]
var flags: Set<String> = []
var files: [String] = []
let valued: Set<String> = ["--accel", "--host-cpu", "--append", "--out", "--quartet", "--linux"]
var i = 0
while i < args.count {
    let a = args[i]
    if valued.contains(a) {
        guard i + 1 < args.count else { fail("benchreport: \(a) needs a value\n" + usage, status: 2) }
        options[a] = args[i + 1]; i += 2
    } else if a == "--markdown" {
        flags.insert(a); i += 1
    } else if a.hasPrefix("--") {
        fail("benchreport: unknown option \(a)\n" + usage, status: 2)
    } else {
        files.append(a); i += 1
    }
}

func load(_ path: String) -> BenchLog {
    guard let data = FileManager.default.contents(atPath: path) else { fail("benchreport: cannot read \(path)", status: 1) }
    let log = BenchLog.parse(String(decoding: data, as: UTF8.self))
    for e in log.errors { FileHandle.standardError.write("benchreport: \(path): \(e)\n".data(using: .utf8)!) }
    return log
}

func requireBench(_ log: BenchLog, _ path: String) {
    if log.records.isEmpty { fail("benchreport: \(path) holds no BENCH lines", status: 1) }
}

let date: String = {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date())
}()
let context = BenchContext(accel: options["--accel"] ?? "?", hostCPU: options["--host-cpu"] ?? "?", date: date)

func emit(_ text: String) {
    print(text)
    guard let path = options["--append"] else { return }
    let existing = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    let out = BenchResultsFile.appending(text, to: existing)
    guard FileManager.default.createFile(atPath: path, contents: out.data(using: .utf8)) else {
        fail("benchreport: cannot write \(path)", status: 1)
    }
}

switch command {
case "table", "markdown":
    guard !files.isEmpty else { fail(usage, status: 2) }
    for f in files {
        let log = load(f)
        requireBench(log, f)
        if command == "table" { print(BenchReport.table(log, context) + "\n") } else { emit(BenchReport.markdown(log, context)) }
    }
case "svg":
    guard let out = options["--out"], !files.isEmpty else { fail(usage, status: 2) }
    let logs = files.map { f -> (name: String, log: BenchLog) in
        let log = load(f)
        requireBench(log, f)
        return ("\(log.system) \(log.env["hypervisor"] ?? "") -smp \(log.env["smp"] ?? "?")", log)
    }
    let svg = BenchSVG.render(logs, title: "Quartet: each measurement / its floor, same boot (\(date))")
    guard FileManager.default.createFile(atPath: out, contents: svg.data(using: .utf8)) else { fail("benchreport: cannot write \(out)", status: 1) }
case "compare":
    guard let q = options["--quartet"], let l = options["--linux"] else { fail(usage, status: 2) }
    let ql = load(q)
    requireBench(ql, q)
    let ll = load(l)            // may hold only a SKIP line: Linux could not run there
    let text = BenchCompare.table(quartet: ql, linux: ll, context, markdown: flags.contains("--markdown"))
    if flags.contains("--markdown") { emit(text) } else { print(text) }
case "scale":
    guard !files.isEmpty else { fail(usage, status: 2) }
    let logs = files.map { f -> BenchLog in let log = load(f); requireBench(log, f); return log }
    let text = BenchScale.table(logs, markdown: flags.contains("--markdown"), date: date)
    if flags.contains("--markdown") { emit(text) } else { print(text) }
default:
    fail("benchreport: unknown command '\(command)'\n" + usage, status: 2)
}
