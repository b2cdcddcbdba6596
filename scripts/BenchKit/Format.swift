import Foundation

// Number formatting and plain/Markdown tables shared by benchreport's outputs.

public enum BenchFormat {
    /// 1234567 -> "1,234,567"; fractional values keep two decimals.
    public static func number(_ v: Double) -> String {
        if v != v.rounded() { return String(format: "%.2f", v) }
        let digits = String(Int64(v.rounded()).magnitude)
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (v < 0 ? "-" : "") + String(out.reversed())
    }

    /// "1.23x", "59x"; "-" when there is no ratio.
    public static func ratio(_ r: Double?) -> String {
        guard let r else { return "-" }
        return r >= 100 ? String(format: "%.0fx", r) : String(format: "%.2fx", r)
    }

    /// Aligned plain-text columns (the columns in `rightAligned` to the right).
    public static func plainTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var out: [String] = []
            for (i, c) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                out.append(rightAligned.contains(i) ? pad + c : c + pad)
            }
            var s = out.joined(separator: "  ")
            while s.hasSuffix(" ") { s.removeLast() }
            return s
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// A Markdown table; `|` in a cell is escaped.
    public static func markdownTable(_ header: [String], _ rows: [[String]]) -> String {
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        let head = "| " + header.map(esc).joined(separator: " | ") + " |"
        let rule = "|" + String(repeating: " --- |", count: header.count)
        return ([head, rule] + rows.map { "| " + $0.map(esc).joined(separator: " | ") + " |" }).joined(separator: "\n")
    }
}
