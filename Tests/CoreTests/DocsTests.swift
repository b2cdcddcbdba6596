import XCTest

/// The documentation's links: `scripts/check-docs.sh` must find every relative
/// link in README.md, docs/*.md and bench/README.md resolving, no absolute path,
/// and no history in the README. Host only, no QEMU.
final class DocsTests: XCTestCase {
    func testEveryDocumentationLinkResolves() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.currentDirectoryURL = root
        p.arguments = ["scripts/check-docs.sh"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "scripts/check-docs.sh:\n" + text)
    }
}
