// schedsim: runs a workload through the bsd4 scheduler's pure core
// (Kernel/Core/Bsd4) and prints per-lwp CPU use, final priority and estcpu;
// with --svg FILE it also writes a chart. The format is described in
// scripts/SchedSimKit/Workload.swift and README.md (section 6).
//
//   swift run schedsim scripts/schedsim/examples/mixed.txt
//   swift run schedsim --svg mixed.svg scripts/schedsim/examples/mixed.txt
//   echo 'cpus=2
//   hog nice=0
//   hog nice=10' | swift run schedsim -
//
// Exit status: 0 success, 1 a malformed workload, 2 a usage or I/O error.

import Foundation
import QuartetCore
import SchedSimKit

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("schedsim: \(message)\n".utf8))
    exit(status)
}

let usage = "usage: schedsim [--svg FILE] [--check] [WORKLOAD | -]   (no WORKLOAD or -: read stdin)"
var svgPath: String?
var input: String?
var check = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--svg":
        guard let p = args.popFirst() else { fail("--svg needs a file name\n\(usage)", status: 2) }
        svgPath = p
    case "--check": check = true
    case "-h", "--help":
        print(usage)
        print("--check verifies the queue and accounting invariants (A2, A3, A5) after every simulated ms")
        exit(0)
    default:
        if a.hasPrefix("-") && a != "-" { fail("unknown option \(a)\n\(usage)", status: 2) }
        if input != nil { fail("one workload at a time\n\(usage)", status: 2) }
        input = a
    }
}

let source = (input == nil || input == "-") ? "<stdin>" : input!
let text: String
if source == "<stdin>" {
    text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
} else {
    guard let data = FileManager.default.contents(atPath: source) else { fail("cannot read \(source)", status: 2) }
    text = String(decoding: data, as: UTF8.self)
}

let workload: SchedSimWorkload
do {
    workload = try WorkloadParser.parse(text)
} catch let e as WorkloadError {
    fail(e.line > 0 ? "\(source):\(e.line): \(e.message)" : "\(source): \(e.message)", status: 1)
} catch {
    fail("\(source): \(error)", status: 1)
}

let simulator = Bsd4Simulator(workload.sim)
simulator.checkEveryMs = check ? 1 : 0
let result = simulator.run()
print(Report.table(workload, result), terminator: "")

if let svgPath {
    do {
        try SVGChart.render(workload, result).write(toFile: svgPath, atomically: true, encoding: .utf8)
        print("chart: \(svgPath)")
    } catch {
        fail("cannot write \(svgPath): \(error.localizedDescription)", status: 2)
    }
}
if result.violation != nil { exit(1) }
