import Foundation

// bench/latest.svg: one horizontal bar per measurement that has a floor, its
// ratio to that floor, one colour per log (accelerator), a line at 1.0. The
// axis is logarithmic when the ratios span more than 100x.

public enum BenchSVG {
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// `logs`: (series name, log). Returns the SVG text.
    public static func render(_ logs: [(name: String, log: BenchLog)], title: String) -> String {
        var ids: [String] = []
        for (_, log) in logs { for r in log.records where log.ratioToFloor(r) != nil && !ids.contains(r.id) { ids.append(r.id) } }
        let values = logs.flatMap { l in l.log.records.compactMap { l.log.ratioToFloor($0) } }.filter { $0 > 0 }
        let lo = min(values.min() ?? 1, 1), hi = max(values.max() ?? 1, 1)
        let logScale = hi / lo > 100
        let labelW = 260.0, plotW = 560.0, barH = 12.0, gap = 6.0, top = 50.0
        let groupH = Double(max(logs.count, 1)) * barH + gap
        let height = top + Double(ids.count) * groupH + 40
        func x(_ v: Double) -> Double {
            if logScale { return labelW + plotW * (log10(v) - log10(lo)) / max(1e-9, log10(hi) - log10(lo)) }
            return labelW + plotW * v / hi
        }
        let colours = ["#4878d0", "#ee854a", "#6acc64", "#d65f5f"]
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(labelW + plotW + 120))" height="\(Int(height))" font-family="sans-serif" font-size="11">
        <text x="10" y="18" font-size="14">\(escape(title))</text>

        """
        for (i, l) in logs.enumerated() {
            out += "<rect x=\"\(10 + i * 150)\" y=\"28\" width=\"10\" height=\"10\" fill=\"\(colours[i % colours.count])\"/>"
            out += "<text x=\"\(24 + i * 150)\" y=\"37\">\(escape(l.name))</text>\n"
        }
        for (row, id) in ids.enumerated() {
            let y0 = top + Double(row) * groupH
            let label = logs.lazy.compactMap { $0.log.record(id) }.first.map { "\($0.id) / \($0.floor ?? "")" } ?? id
            out += "<text x=\"\(labelW - 6)\" y=\"\(y0 + groupH / 2)\" text-anchor=\"end\">\(escape(label))</text>\n"
            for (i, l) in logs.enumerated() {
                guard let r = l.log.record(id), let v = l.log.ratioToFloor(r), v > 0 else { continue }
                let y = y0 + Double(i) * barH
                let x0 = logScale ? labelW : labelW
                let w = max(1, x(v) - x0)
                out += "<rect class=\"bar\" x=\"\(x0)\" y=\"\(y)\" width=\"\(String(format: "%.1f", w))\" height=\"\(barH - 2)\" fill=\"\(colours[i % colours.count])\"/>"
                out += "<text x=\"\(String(format: "%.1f", x0 + w + 4))\" y=\"\(y + barH - 3)\">\(escape(BenchFormat.ratio(v)))</text>\n"
            }
        }
        let one = x(1)
        out += "<line x1=\"\(String(format: "%.1f", one))\" y1=\"\(top - 4)\" x2=\"\(String(format: "%.1f", one))\" y2=\"\(height - 30)\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>"
        out += "<text x=\"\(String(format: "%.1f", one))\" y=\"\(height - 16)\" text-anchor=\"middle\">1.0 (the floor)\(logScale ? ", log scale" : "")</text>\n"
        out += "</svg>\n"
        return out
    }
}
