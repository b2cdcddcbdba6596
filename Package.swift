// swift-tools-version:5.9
// Host build of Quartet's pure logic. Kernel/Core is compiled twice from the same
// files: here for XCTest on the host, and by the Makefile into the kernel (Embedded
// Swift, one -wmo module). No package dependencies, by design.
//
// scripts/ also holds host-only Swift programs over the same core: schedsim (the
// bsd4 scheduler simulator, `swift run schedsim`) and SchedSimKit, its workload
// parser, table and SVG writer, a library so that CoreTests can test them.
import PackageDescription

let package = Package(
    name: "Quartet",
    targets: [
        .target(name: "QuartetCore", path: "Kernel/Core"),
        .target(name: "SchedSimKit", dependencies: ["QuartetCore"], path: "scripts/SchedSimKit"),
        .executableTarget(name: "schedsim", dependencies: ["QuartetCore", "SchedSimKit"], path: "scripts/schedsim",
                          exclude: ["examples"]),
        .testTarget(name: "CoreTests", dependencies: ["QuartetCore", "SchedSimKit"], path: "Tests/CoreTests",
                    exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", path: "Tests/IntegrationTests"),
    ]
)
