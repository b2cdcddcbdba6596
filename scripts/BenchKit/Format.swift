// Numbers and tables as benchreport prints them: plain text with aligned
// columns for a terminal, Markdown for bench/results.md.

import Foundation

public enum BenchFormat {
    /// A figure with thousands separators: whole numbers as they are
    /// ("1,234,567": the kernel prints integers), others with two decimals
    /// ("1.65", "1,940.40").
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        guard abs(v) < 1e18 else { return fixed(v, 2) }
        let whole = v == v.rounded()
        let text = whole ? String(Int64(v).magnitude) : fixed(abs(v), 2)
        let point = text.firstIndex(of: ".") ?? text.endIndex
        var out = ""
        for (i, c) in text[..<point].reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (v < 0 ? "-" : "") + String(out.reversed()) + text[point...]
    }

    public static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "-" }
        return String(format: "%.\(digits)f", v)
    }

    /// "1.23x", "363x" from 100 up; "-" when there is no ratio.
    public static func ratio(_ r: Double?) -> String {
        guard let r, r.isFinite else { return "-" }
        return r >= 100 ? fixed(r, 0) + "x" : fixed(r, 2) + "x"
    }

    /// "2026-06-01 12:34 UTC".
    public static func utc(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date) + " UTC"
    }

    /// Text for a Markdown table cell or heading: one line, `|` escaped, and
    /// no HTML (GitHub renders tags, even inside tables).
    public static func markdown(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "|": out += "\\|"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\n", "\r", "\r\n": out += " "
            default: out.append(ch)
            }
        }
        return out
    }
}

/// A table of strings, printed with aligned columns or as Markdown.
public struct TextTable: Sendable {
    public var headers: [String]
    public var rows: [[String]] = []
    /// Columns aligned right (figures).
    public var right: Set<Int>

    public init(_ headers: [String], right: Set<Int> = []) {
        self.headers = headers
        self.right = right
    }

    public mutating func add(_ row: [String]) {
        precondition(row.count == headers.count, "TextTable: \(row.count) cells for \(headers.count) columns")
        rows.append(row)
    }

    /// Columns two spaces apart, each as wide as its widest cell; no trailing
    /// spaces; a rule under the header.
    public var plain: String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var s = cells.enumerated().map { i, c in
                let fill = String(repeating: " ", count: widths[i] - c.count)
                return right.contains(i) ? fill + c : c + fill
            }.joined(separator: "  ")
            while s.last == " " { s.removeLast() }
            return s + "\n"
        }
        return line(headers) + line(widths.map { String(repeating: "-", count: $0) }) + rows.map(line).joined()
    }

    /// A GitHub Markdown table, figures right-aligned; cells are escaped here.
    public var markdown: String {
        var out = "| " + headers.map(BenchFormat.markdown).joined(separator: " | ") + " |\n"
        out += "|" + headers.indices.map { right.contains($0) ? " --: |" : " --- |" }.joined() + "\n"
        for r in rows { out += "| " + r.map(BenchFormat.markdown).joined(separator: " | ") + " |\n" }
        return out
    }
}
