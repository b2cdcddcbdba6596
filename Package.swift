// swift-tools-version:5.9
// Host build of Quartet's pure logic. Kernel/Core is compiled twice from the same
// files: here for XCTest on the host, and by the Makefile into the kernel (Embedded
// Swift, one -wmo module). No package dependencies, by design.
//
// scripts/ also holds host-only Swift programs over the same core: schedsim (the
// bsd4 scheduler simulator, `swift run schedsim`) and SchedSimKit, its workload
// parser, table and SVG writer, a library so that CoreTests can test them; and
// ktrace (`swift run ktrace < serial.log > trace.json`), which turns the kernel's
// trace dump into Chrome Trace Event JSON for Perfetto and an SVG timeline, over
// KtraceKit, its parser and writers, a library for the same reason; benchreport
// (`make bench`'s tables, Markdown, SVG chart and Linux comparison from the
// kernel's BENCH lines) over BenchKit; and corebench (`swift run -c release
// corebench`), the bsd4 run queues timed on the host against a sorted array.
// corebench compiles Kernel/Core itself (scripts/corebench/Core is a symlink to
// it): one whole-module build with the benchmark, as the kernel is built, so the
// generic queues are specialised for its nodes and nothing internal has to be
// made public for it. HostKit holds what the three kits and the tools share:
// SVG text escaping and the command line of ktrace and schedsim.
import PackageDescription

let package = Package(
    name: "Quartet",
    targets: [
        .target(name: "QuartetCore", path: "Kernel/Core"),
        .target(name: "HostKit", path: "scripts/HostKit"),
        .target(name: "SchedSimKit", dependencies: ["QuartetCore", "HostKit"], path: "scripts/SchedSimKit"),
        .executableTarget(name: "schedsim", dependencies: ["QuartetCore", "SchedSimKit", "HostKit"], path: "scripts/schedsim",
                          exclude: ["examples"]),
        .target(name: "KtraceKit", dependencies: ["HostKit"], path: "scripts/KtraceKit"),
        .executableTarget(name: "ktrace", dependencies: ["KtraceKit", "HostKit"], path: "scripts/ktrace"),
        .target(name: "BenchKit", dependencies: ["HostKit"], path: "scripts/BenchKit"),
        .executableTarget(name: "benchreport", dependencies: ["BenchKit"], path: "scripts/benchreport"),
        .executableTarget(name: "corebench", dependencies: ["BenchKit"], path: "scripts/corebench"),
        .testTarget(name: "CoreTests", dependencies: ["QuartetCore", "SchedSimKit", "KtraceKit", "BenchKit", "HostKit"],
                    path: "Tests/CoreTests",
                    exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", path: "Tests/IntegrationTests"),
    ]
)
