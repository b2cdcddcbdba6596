// schedsim's chart: two panels over simulated time, priority (top) and CPU use
// over the last second (bottom), one colored line per lwp, with axes, grid and
// a legend. Plain SVG 1.1 text that any browser opens; integer coordinates only.

import QuartetCore
import HostKit

public enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]

    static let width = 1000
    static let plotLeft = 70
    static let plotWidth = 700
    static let legendLeft = 800
    static let panelHeight = 240
    static let topPanel = 50
    static let bottomPanel = 360

    static func escape(_ s: String) -> String { XMLText.escape(s) }

    /// A "nice" grid step for a span (1, 2, 5 times a power of ten).
    static func step(for span: Int, lines: Int) -> Int {
        var unit = 1
        while true {
            for m in [1, 2, 5] where span / (unit * m) <= lines { return unit * m }
            unit *= 10
        }
    }

    public static func render(_ w: SchedSimWorkload, _ r: Bsd4SimResult) -> String {
        let samples = r.samples
        // Tall enough for the legend (one row per lwp).
        let height = max(660, topPanel + 30 + w.sim.lwps.count * 18)
        let duration = max(1, w.sim.durationMs)
        var minPri = samples.flatMap { $0.priority }.min() ?? 128
        var maxPri = samples.flatMap { $0.priority }.max() ?? 255
        minPri = (minPri - 2) / 4 * 4
        maxPri = (maxPri + 5) / 4 * 4
        if maxPri <= minPri { maxPri = minPri + 4 }

        func x(_ ms: Int) -> Int { plotLeft + ms * plotWidth / duration }
        func yPri(_ p: Int) -> Int { topPanel + (p - minPri) * panelHeight / (maxPri - minPri) }
        func yCPU(_ permille: Int) -> Int { bottomPanel + panelHeight - min(permille, 1000) * panelHeight / 1000 }

        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
        s += "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        s += "<text x=\"\(plotLeft)\" y=\"24\" font-size=\"16\">bsd4 scheduler simulation: \(w.sim.cpus) CPU"
        s += "\(w.sim.cpus == 1 ? "" : "s"), \(w.sim.lwps.count) lwps, decay \(w.sim.decay)</text>\n"

        // Axes and grid.
        let timeStep = step(for: duration / 1000, lines: 12) * 1000
        for (top, title) in [(topPanel, "priority (lower is better)"), (bottomPanel, "CPU use, % of one CPU over the last second")] {
            s += "<text x=\"\(plotLeft)\" y=\"\(top - 8)\" font-weight=\"bold\">\(title)</text>\n"
            s += "<rect x=\"\(plotLeft)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"black\"/>\n"
            var t = 0
            while t <= duration {
                s += "<line x1=\"\(x(t))\" y1=\"\(top)\" x2=\"\(x(t))\" y2=\"\(top + panelHeight)\" stroke=\"#ddd\"/>\n"
                s += "<text x=\"\(x(t))\" y=\"\(top + panelHeight + 16)\" text-anchor=\"middle\">\(t / 1000)s</text>\n"
                t += timeStep
            }
        }
        let priStep = step(for: maxPri - minPri, lines: 8)
        var p = (minPri + priStep - 1) / priStep * priStep
        while p <= maxPri {
            s += "<line x1=\"\(plotLeft)\" y1=\"\(yPri(p))\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(yPri(p))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(plotLeft - 6)\" y=\"\(yPri(p) + 4)\" text-anchor=\"end\">\(p)</text>\n"
            p += priStep
        }
        for pct in stride(from: 0, through: 100, by: 20) {
            let y = yCPU(pct * 10)
            s += "<line x1=\"\(plotLeft)\" y1=\"\(y)\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(y)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(plotLeft - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(pct)%</text>\n"
        }

        // One line per lwp in each panel.
        for i in 0..<w.sim.lwps.count {
            let color = palette[i % palette.count]
            let dash = i >= palette.count ? " stroke-dasharray=\"6 3\"" : ""
            let pri = samples.map { "\(x($0.timeMs)),\(yPri($0.priority[i]))" }.joined(separator: " ")
            let cpu = samples.map { "\(x($0.timeMs)),\(yCPU($0.cpuPermille[i]))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\"\(dash) points=\"\(pri)\"/>\n"
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\"\(dash) points=\"\(cpu)\"/>\n"
            let ly = topPanel + 10 + i * 18
            s += "<line x1=\"\(legendLeft)\" y1=\"\(ly)\" x2=\"\(legendLeft + 24)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"3\"\(dash)/>\n"
            s += "<text x=\"\(legendLeft + 30)\" y=\"\(ly + 4)\">\(escape(w.names[i])) (\(Report.tenths(r.cpuPermille(i)))%)</text>\n"
        }
        s += "<text x=\"\(plotLeft + plotWidth / 2)\" y=\"\(bottomPanel + panelHeight + 40)\" text-anchor=\"middle\">simulated time</text>\n"
        s += "</svg>\n"
        return s
    }
}
