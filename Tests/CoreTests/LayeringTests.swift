import XCTest

/// The layers' one-way rule (docs/architecture.md, "Layers"): Init -> Suites -> Kern ->
/// Arch -> Core. A type declared in a layer may be named only by that layer
/// and the layers above it; comments do not count. Read from the sources.
final class LayeringTests: XCTestCase {
    static let kernel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Kernel")

    /// Swift files under `layer`, with line comments and string literals
    /// stripped (the kernel has no block comments).
    private func sources(_ layer: String) throws -> [(path: String, code: String)] {
        let root = Self.kernel.appendingPathComponent(layer)
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var out: [(String, String)] = []
        for case let url as URL in e where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            let code = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
                guard let r = line.range(of: "//") else { return line }
                return line[..<r.lowerBound]
            }.joined(separator: "\n")
            let noStrings = code.replacingOccurrences(of: #""[^"\n]*""#, with: "\"\"", options: .regularExpression)
            out.append((url.path, noStrings))
        }
        return out
    }

    private func declaredTypes(_ layer: String) throws -> Set<String> {
        var names = Set<String>()
        // Top-level, non-private declarations only: nested ones (a `Kind`
        // inside a struct) and private ones are not visible to other files
        // by their short name.
        let pattern = try NSRegularExpression(pattern: #"^(?:public |final )*(?:enum|struct|class|protocol|typealias) ([A-Z][A-Za-z0-9]*)"#,
                                              options: .anchorsMatchLines)
        for (_, code) in try sources(layer) {
            for m in pattern.matches(in: code, range: NSRange(code.startIndex..., in: code)) {
                names.insert(String(code[Range(m.range(at: 1), in: code)!]))
            }
        }
        return names
    }

    private func assertNotNamed(_ types: Set<String>, from layers: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for layer in layers {
            for (path, code) in try sources(layer) {
                for t in types {
                    let word = try NSRegularExpression(pattern: "\\b" + t + "\\b")
                    if word.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil {
                        XCTFail("\(path) names \(t), which a higher layer declares", file: file, line: line)
                    }
                }
            }
        }
    }

    func testKernArchAndCoreNameNoSuiteOrInitType() throws {
        let upper = try declaredTypes("Suites").union(try declaredTypes("Init"))
        XCTAssertGreaterThan(upper.count, 20, "the suites' types were found: \(upper.count)")
        try assertNotNamed(upper, from: ["Kern", "Arch", "Core"])
    }

    func testArchAndCoreNameNoKernType() throws {
        let kern = try declaredTypes("Kern")
        XCTAssertGreaterThan(kern.count, 30)
        try assertNotNamed(kern, from: ["Arch", "Core"])
    }

    func testCoreNamesNoArchType() throws {
        let arch = try declaredTypes("Arch")
        XCTAssertGreaterThan(arch.count, 10)
        try assertNotNamed(arch, from: ["Core"])
    }
}
