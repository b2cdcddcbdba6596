// A timeline a person can open in any browser: one lane per CPU, which thread
// ran as coloured bars, instants as ticks coloured by family, IPI sends joined
// to their receives by thin lines, critical windows highlighted, a µs axis.
// Plain SVG 1.1 text, no script; hovering shows each item's <title>.
// Coordinates are rounded to tenths of a pixel so the same dump always gives
// the same bytes.

import HostKit

public enum SVGTimeline {
    static let width = 1200, left = 90, plotWidth = 1070
    static let top = 64, laneHeight = 46
    static let threadColors = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                               "#f7b6d2", "#dbdb8d", "#9edae5", "#c7c7c7"]

    static func color(_ f: KtraceFamily) -> String {
        switch f {
        case .sched: return "#1f77b4"
        case .preempt: return "#2ca02c"
        case .crit: return "#ff7f0e"
        case .ipi: return "#d62728"
        case .rdv: return "#9467bd"
        case .cpusync: return "#8c564b"
        case .bsd4: return "#17becf"
        case .nmi: return "#000000"
        case .other: return "#7f7f7f"
        }
    }

    public static func render(_ t: KtraceTimeline) -> String {
        let span = max(t.endNs, 1)
        let axisY = top + t.cpus * laneHeight + 4
        let height = axisY + 50
        func x(_ ns: UInt64) -> Double { Double(left) + Double(min(ns, span)) * Double(plotWidth) / Double(span) }
        func laneY(_ cpu: Int) -> Int { top + cpu * laneHeight }

        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
        s += "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"22\" font-size=\"15\">Quartet ktrace: \(t.cpus) CPU\(t.cpus == 1 ? "" : "s"), "
        s += "\(t.events.count) events over \(short(t.endNs)) µs, tsc_mhz=\(t.tscMHz), dropped=\(t.dropped)</text>\n"
        s += legend(t)

        for cpu in 0..<t.cpus {
            let y = laneY(cpu)
            s += "<g class=\"lane\" id=\"cpu-\(cpu)\">\n"
            s += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(plotWidth)\" height=\"\(laneHeight - 2)\" "
            s += "fill=\"\(cpu % 2 == 0 ? "#f4f4f4" : "#fafafa")\"/>\n"
            s += "<text x=\"\(left - 10)\" y=\"\(y + 26)\" text-anchor=\"end\" font-weight=\"bold\">CPU \(cpu)</text>\n"
            for sp in t.spans where sp.cpu == cpu {
                let x0 = x(sp.startNs), w = max(x(sp.endNs) - x0, 1)
                let tip = "\(escape(sp.name)), \(short(sp.startNs))–\(short(sp.endNs)) µs"
                switch sp.kind {
                case .thread(let id):
                    let fill = threadColors[Int(id % UInt64(threadColors.count))]
                    s += rect(x0, y + 12, w, 18, "fill=\"\(fill)\" stroke=\"white\" stroke-width=\"0.5\"", tip)
                    if w >= 40 { s += "<text x=\(q(x0 + 3)) y=\"\(y + 25)\" font-size=\"10\">#\(id)</text>\n" }
                case .critical:
                    s += rect(x0, y + 10, w, 22, "fill=\"#ff7f0e\" fill-opacity=\"0.35\" stroke=\"#ff7f0e\"", tip)
                case .rendezvous:
                    s += rect(x0, y + 33, w, 4, "fill=\"\(color(.rdv))\"", tip)
                case .cpusync:
                    s += rect(x0, y + 38, w, 4, "fill=\"\(color(.cpusync))\"", tip)
                }
            }
            for (i, e) in t.events.enumerated() where e.cpu == cpu && !t.absorbed[i] {
                let xi = q(x(t.ns(e.tsc)))
                let args = e.arguments.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
                s += "<line x1=\(xi) y1=\"\(y + 1)\" x2=\(xi) y2=\"\(y + 10)\" stroke=\"\(color(e.family))\">"
                s += "<title>\(escape(e.name)) \(args) at \(short(t.ns(e.tsc))) µs (line \(e.line))</title></line>\n"
            }
            s += "</g>\n"
        }

        for f in t.flows {
            let a = t.events[f.send], b = t.events[f.recv]
            let x1 = q(x(f.startNs)), x2 = q(x(f.endNs))
            s += "<line class=\"flow\" x1=\(x1) y1=\"\(laneY(a.cpu) + 5)\" x2=\(x2) y2=\"\(laneY(b.cpu) + 5)\" "
            s += "stroke=\"\(color(.ipi))\" stroke-width=\"0.7\" stroke-opacity=\"0.7\">"
            s += "<title>IPI CPU \(a.cpu) → CPU \(b.cpu), seq \(a.b)</title></line>\n"
            s += "<circle cx=\(x2) cy=\"\(laneY(b.cpu) + 5)\" r=\"1.5\" fill=\"\(color(.ipi))\"/>\n"
        }
        return s + axis(span, y: axisY, x: x) + "</svg>\n"
    }

    static func legend(_ t: KtraceTimeline) -> String {
        var used = Set(t.events.enumerated().filter { !t.absorbed[$0.offset] }.map { $0.element.family })
        used.insert(.ipi)
        var s = "", lx = left
        for f in KtraceFamily.allCases where used.contains(f) {
            s += "<rect x=\"\(lx)\" y=\"36\" width=\"3\" height=\"10\" fill=\"\(color(f))\"/>"
            s += "<text x=\"\(lx + 6)\" y=\"45\">\(f.rawValue)</text>\n"
            lx += 24 + 7 * f.rawValue.count
        }
        s += "<rect x=\"\(lx)\" y=\"36\" width=\"14\" height=\"10\" fill=\"#ff7f0e\" fill-opacity=\"0.35\" stroke=\"#ff7f0e\"/>"
        s += "<text x=\"\(lx + 18)\" y=\"45\">critical_exit window</text>\n"
        lx += 150
        s += "<rect x=\"\(lx)\" y=\"36\" width=\"14\" height=\"4\" fill=\"\(color(.rdv))\"/>"
        s += "<rect x=\"\(lx)\" y=\"42\" width=\"14\" height=\"4\" fill=\"\(color(.cpusync))\"/>"
        s += "<text x=\"\(lx + 18)\" y=\"45\">rendezvous / cpusync</text>\n"
        return s
    }

    static func axis(_ span: UInt64, y: Int, x: (UInt64) -> Double) -> String {
        var step: UInt64 = 1
        outer: while true {
            for m: UInt64 in [1, 2, 5] where span / (step * m) <= 10 { step *= m; break outer }
            step *= 10
        }
        var s = "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plotWidth)\" y2=\"\(y)\" stroke=\"black\"/>\n"
        var tick: UInt64 = 0
        while tick <= span {
            let xt = q(x(tick))
            s += "<line x1=\(xt) y1=\"\(top)\" x2=\(xt) y2=\"\(y + 4)\" stroke=\"#ccc\" stroke-width=\"0.5\"/>"
            s += "<text x=\(xt) y=\"\(y + 16)\" text-anchor=\"middle\">\(short(tick))</text>\n"
            tick += step
        }
        s += "<text x=\"\(left + plotWidth / 2)\" y=\"\(y + 36)\" text-anchor=\"middle\">time since the first event (µs)</text>\n"
        return s
    }

    static func rect(_ x0: Double, _ y: Int, _ w: Double, _ h: Int, _ style: String, _ tip: String) -> String {
        "<rect x=\(q(x0)) y=\"\(y)\" width=\(q(w)) height=\"\(h)\" \(style)><title>\(tip)</title></rect>\n"
    }

    /// A quoted coordinate in tenths of a pixel: "12.3", or "12" when whole.
    static func q(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return t % 10 == 0 ? "\"\(t / 10)\"" : "\"\(t / 10).\(t % 10)\""
    }

    /// Microseconds without trailing zeros: 12.5, 3, 0.004.
    static func short(_ ns: UInt64) -> String {
        var s = KtraceTimeline.microseconds(ns)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String { XMLText.escape(s) }
}
