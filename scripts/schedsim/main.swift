// schedsim: runs a workload through the bsd4 scheduler's pure core
// (Kernel/Core/Bsd4) and prints per-lwp CPU use, final priority and estcpu;
// with --svg FILE it also writes a chart. The format is described in
// scripts/SchedSimKit/Workload.swift and docs/usage.md ("Host tools").
//
//   swift run schedsim scripts/schedsim/examples/mixed.txt
//   swift run schedsim --svg mixed.svg scripts/schedsim/examples/mixed.txt
//   echo 'cpus=2
//   hog nice=0
//   hog nice=10' | swift run schedsim -
//
// Exit status: 0 success, 1 a malformed workload, 2 a usage or I/O error.

import Foundation
import HostKit
import QuartetCore
import SchedSimKit

let tool = HostTool("schedsim")
let usage = "usage: schedsim [--svg FILE] [--check] [WORKLOAD | -]   (no WORKLOAD or -: read stdin)"
let commandLine = tool.commandLine(usage: usage,
    help: "--check verifies the queue and accounting invariants (A2, A3, A5) after every simulated ms",
    flags: ["--check"], what: "workload")
let source = commandLine.source

let workload: SchedSimWorkload
do {
    workload = try WorkloadParser.parse(tool.readInput(commandLine))
} catch let e as WorkloadError {
    tool.fail(e.line > 0 ? "\(source):\(e.line): \(e.message)" : "\(source): \(e.message)", status: 1)
} catch {
    tool.fail("\(source): \(error)", status: 1)
}

let simulator = Bsd4Simulator(workload.sim)
simulator.checkEveryMs = commandLine.flags.contains("--check") ? 1 : 0
let result = simulator.run()
print(Report.table(workload, result), terminator: "")

if let svgPath = commandLine.svgPath {
    do {
        try SVGChart.render(workload, result).write(toFile: svgPath, atomically: true, encoding: .utf8)
        print("chart: \(svgPath)")
    } catch {
        tool.fail("cannot write \(svgPath): \(error.localizedDescription)", status: 2)
    }
}
if result.violation != nil { exit(1) }
