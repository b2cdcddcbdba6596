// swift-tools-version:5.9
// Host build of Quartet's pure logic. Kernel/Core is compiled twice from the same
// files: here for XCTest on the host, and by the Makefile into the kernel (Embedded
// Swift, one -wmo module). No package dependencies, by design.
import PackageDescription

let package = Package(
    name: "Quartet",
    targets: [
        .target(name: "QuartetCore", path: "Kernel/Core"),
        .testTarget(name: "CoreTests", dependencies: ["QuartetCore"], path: "Tests/CoreTests",
                    exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", path: "Tests/IntegrationTests"),
    ]
)
