// bench/latest.svg: the ratio of each measurement to its floor (median / the
// floor's median, same boot) as horizontal bars: one group per measurement,
// one bar per log (accelerator) in the group, the value printed at the bar's
// end, a dashed line at 1.0. The axis is logarithmic when the ratios span more
// than 100x. Plain SVG 1.1, self-contained, text escaped; coordinates rounded
// to tenths so the same logs always give the same bytes. Hovering a bar shows
// its figures.

import Foundation
import HostKit

public enum BenchSVG {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    static let width = 1000.0
    static let labelRight = 360.0, plotLeft = 370.0, plotWidth = 500.0
    static let barHeight = 13.0, barGap = 2.0, groupGap = 10.0
    static let maxLabel = 58

    static func escape(_ s: String) -> String { XMLText.escape(s) }

    static func q(_ v: Double) -> String { "\"" + String(format: "%.1f", v) + "\"" }

    /// A bar: series (log) index, the record, its ratio.
    struct Bar {
        var series: Int
        var record: BenchRecord
        var ratio: Double
        var floorMedian: Double
    }

    /// The scale: where a ratio lands on the x axis.
    struct Axis {
        var logScale: Bool
        /// Linear: 0...max. Log: 10^lo ... 10^hi.
        var max: Double
        var lo: Double, hi: Double

        init(_ values: [Double]) {
            let positive = values.filter { $0 > 0 }
            let vmin = Swift.min(positive.min() ?? 1, 1), vmax = Swift.max(positive.max() ?? 1, 1)
            logScale = vmax / vmin > 100
            lo = (log10(vmin)).rounded(.down)
            hi = (log10(vmax)).rounded(.up)
            if hi <= lo { hi = lo + 1 }
            max = Axis.niceCeiling(vmax * 1.05)
        }

        /// 1, 2 or 5 times a power of ten, at least v.
        static func niceCeiling(_ v: Double) -> Double {
            let p = pow(10, (log10(v)).rounded(.down))
            for m in [1.0, 2.0, 5.0, 10.0] where m * p >= v { return m * p }
            return 10 * p
        }

        func x(_ v: Double) -> Double {
            if logScale {
                let l = log10(Swift.max(v, pow(10, lo)))
                return BenchSVG.plotLeft + BenchSVG.plotWidth * (l - lo) / (hi - lo)
            }
            return BenchSVG.plotLeft + BenchSVG.plotWidth * Swift.max(0, v) / max
        }

        /// Grid values with their labels.
        var ticks: [(Double, String)] {
            if logScale {
                return stride(from: lo, through: hi, by: 1).map { e in
                    let v = pow(10, e)
                    return (v, v >= 1 ? BenchFormat.number(v) + "x" : String(format: "%g", v) + "x")
                }
            }
            let step = Axis.niceCeiling(max / 6)
            return stride(from: 0, through: max + step / 1000, by: step).map { v in
                (v, (v == v.rounded() ? BenchFormat.number(v) : String(format: "%g", v)) + "x")
            }
        }
    }

    /// `logs`: (series name, log), one colour each.
    public static func render(_ logs: [(name: String, log: BenchLog)], title: String) -> String {
        // Group the bars by id, in order of first appearance.
        var ids: [String] = []
        var bars: [String: [Bar]] = [:]
        var notDrawn: [String] = []
        for (i, l) in logs.enumerated() {
            for r in l.log.uniqueRecords {
                switch l.log.ratio(r) {
                case .value(let v, let f):
                    if bars[r.id] == nil { ids.append(r.id) }
                    bars[r.id, default: []].append(Bar(series: i, record: r, ratio: v,
                                                       floorMedian: l.log.record(f)?.median ?? 0))
                case .missing(let f):
                    notDrawn.append("\(r.id) in \(l.name): its floor \(f) is not in the log")
                case .unusable(let f, let why):
                    notDrawn.append("\(r.id) in \(l.name): its floor \(f) cannot divide (\(why))")
                case .none: break
                }
            }
        }
        let axis = Axis(bars.values.flatMap { $0.map(\.ratio) })
        let perGroup = max(Double(max(logs.count, 1)) * (barHeight + barGap), 28)
        let legendRows = Double((logs.count + 2) / 3)
        let top = 58 + legendRows * 18
        let plotBottom = top + Double(ids.count) * (perGroup + groupGap)
        let height = plotBottom + 44 + Double(notDrawn.count) * 15

        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\(q(width)) height=\(q(height)) "
        s += "viewBox=\"0 0 \(Int(width)) \(Int(height.rounded(.up)))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"10\" y=\"20\" font-size=\"15\">\(escape(title))</text>\n"
        s += "<text x=\"10\" y=\"38\" fill=\"#555\">median / the floor's median, same boot; dashed line: 1.0 = the floor"
        s += "\(axis.logScale ? "; logarithmic axis (the ratios span more than 100x)" : "")</text>\n"
        for (i, l) in logs.enumerated() {
            let x = 10 + Double(i % 3) * 330, y = 50 + Double(i / 3) * 18
            s += "<rect x=\(q(x)) y=\(q(y)) width=\"12\" height=\"12\" fill=\"\(palette[i % palette.count])\"/>"
            s += "<text x=\(q(x + 17)) y=\(q(y + 10))>\(escape(l.name))</text>\n"
        }

        // Grid and axis labels.
        for (v, label) in axis.ticks {
            let x = axis.x(v)
            s += "<line x1=\(q(x)) y1=\(q(top - 4)) x2=\(q(x)) y2=\(q(plotBottom)) stroke=\"#e4e4e4\"/>"
            s += "<text x=\(q(x)) y=\(q(plotBottom + 14)) text-anchor=\"middle\" fill=\"#555\">\(escape(label))</text>\n"
        }

        for (g, id) in ids.enumerated() {
            let y0 = top + Double(g) * (perGroup + groupGap)
            let group = bars[id]!
            let first = group[0].record
            var label = first.label
            if label.count > maxLabel { label = String(label.prefix(maxLabel - 1)) + "…" }
            s += "<g class=\"measurement\">\n"
            s += "<text x=\(q(labelRight)) y=\(q(y0 + 10)) text-anchor=\"end\">\(escape(label))<title>\(escape(first.label))</title></text>\n"
            s += "<text x=\(q(labelRight)) y=\(q(y0 + 23)) text-anchor=\"end\" fill=\"#777\" font-size=\"9\">"
            s += "\(escape(first.id)) / \(escape(first.floor ?? ""))</text>\n"
            for bar in group {
                let y = y0 + Double(bar.series) * (barHeight + barGap)
                let x1 = axis.x(bar.ratio)
                let w = max(1, x1 - plotLeft)
                let r = bar.record
                s += "<rect class=\"bar\" x=\(q(plotLeft)) y=\(q(y)) width=\(q(w)) height=\(q(barHeight)) "
                s += "fill=\"\(palette[bar.series % palette.count])\"><title>\(escape(logs[bar.series].name)): "
                s += "\(escape(r.id)) \(escape(BenchFormat.ratio(bar.ratio))) = median \(escape(BenchFormat.number(r.median))) / "
                s += "\(escape(r.floor ?? "")) \(escape(BenchFormat.number(bar.floorMedian))) \(escape(r.unit))</title></rect>"
                s += "<text x=\(q(plotLeft + w + 4)) y=\(q(y + barHeight - 3))>\(escape(BenchFormat.ratio(bar.ratio)))</text>\n"
            }
            s += "</g>\n"
        }
        let one = axis.x(1)
        s += "<line x1=\(q(one)) y1=\(q(top - 8)) x2=\(q(one)) y2=\(q(plotBottom)) stroke=\"#c00\" stroke-dasharray=\"5 3\"/>\n"
        s += "<line x1=\(q(plotLeft)) y1=\(q(plotBottom)) x2=\(q(plotLeft + plotWidth)) y2=\(q(plotBottom)) stroke=\"#333\"/>\n"
        if ids.isEmpty {
            s += "<text x=\(q(plotLeft)) y=\(q(top + 14))>no measurement with a floor in these logs</text>\n"
        }
        for (i, n) in notDrawn.enumerated() {
            s += "<text x=\"10\" y=\(q(plotBottom + 36 + Double(i) * 15)) fill=\"#777\">not drawn: \(escape(n))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
