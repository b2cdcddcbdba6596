import HostKit
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

/// What the host tools share (scripts/HostKit): SVG text escaping for the three
/// kits' charts, and ktrace's and schedsim's command line.
final class HostKitTests: XCTestCase {
    func testEscapeMarkupAndQuotes() {
        XCTAssertEqual(XMLText.escape(#"a<b> & "c" 'd'"#), "a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;")
        XCTAssertEqual(XMLText.escape("&amp;"), "&amp;amp;", "an entity in the input is text, escaped again")
        XCTAssertEqual(XMLText.escape("µs – λ 🙂"), "µs – λ 🙂", "other text is kept")
    }

    func testEscapeControlCharacters() {
        // Forbidden by XML 1.0 (C0 but tab, LF, CR; U+FFFE, U+FFFF) or discouraged (DEL, C1): U+FFFD.
        XCTAssertEqual(XMLText.escape("a\u{1B}[0mb\u{0}c\u{7F}d\u{85}e\u{FFFF}"), "a\u{FFFD}[0mb\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}")
        // Allowed whitespace: a space, labels stay on one line; CR LF is two scalars.
        XCTAssertEqual(XMLText.escape("a\tb\nc\r\nd"), "a b c  d")
    }

    func testEscapedTextParsesAsXML() {
        let all = String(String.UnicodeScalarView((0...0xA0).compactMap(Unicode.Scalar.init)))
        let doc = "<?xml version=\"1.0\"?><svg a=\"\(XMLText.escape(all))\" b='\(XMLText.escape(all))'>\(XMLText.escape(all))</svg>"
        let parser = XMLParser(data: Data(doc.utf8))
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
    }

    func testCommandLine() {
        typealias C = ToolCommandLine
        XCTAssertEqual(C.parse([], what: "log"), .run(C()))
        XCTAssertEqual(C.parse(["--svg", "t.svg", "x.log"], what: "log"), .run(C(svgPath: "t.svg", input: "x.log")))
        XCTAssertEqual(C.parse(["--check", "-"], flags: ["--check"], what: "workload"), .run(C(input: "-", flags: ["--check"])))
        XCTAssertEqual(C.parse(["x", "--help"], what: "log"), .help)
        XCTAssertEqual(C.parse(["--svg"], what: "log"), .usageError("--svg needs a file name"))
        XCTAssertEqual(C.parse(["--check"], what: "log"), .usageError("unknown option --check"))
        XCTAssertEqual(C.parse(["--bogus", "--help"], what: "log"), .usageError("unknown option --bogus"))
        XCTAssertEqual(C.parse(["-", "x"], what: "workload"), .usageError("one workload at a time"))
        XCTAssertEqual(C().source, "<stdin>")
        XCTAssertEqual(C(input: "-").source, "<stdin>")
        XCTAssertEqual(C(input: "x.log").source, "x.log")
    }
}
