// The Chrome Trace Event format (JSON object form), which Perfetto
// (ui.perfetto.dev) and chrome://tracing open. One process, "Quartet"; one
// track per CPU (tid = cpu), so that even a CPU with no events shows up.
//
// Which thread ran is drawn with complete events ("X", with dur) rather than
// B/E pairs: a switch ends one slice and starts the next at the same instant,
// and X events cannot be reordered into an unbalanced pair by a viewer's
// stable sort. Rendezvous and cpusync use B/E, matched per CPU.
//
// Output is one event per line, in time order, so that two traces diff well.

public enum ChromeTrace {
    public static func render(_ t: KtraceTimeline) -> String {
        var out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"
        var first = true
        func emit(_ fields: String) {
            out += (first ? "" : ",\n") + "{" + fields + "}"
            first = false
        }
        func common(_ name: String, _ ph: String, _ ns: UInt64, _ cpu: Int) -> String {
            "\"name\":\(quote(name)),\"ph\":\"\(ph)\",\"ts\":\(KtraceTimeline.microseconds(ns)),\"pid\":0,\"tid\":\(cpu)"
        }

        emit(common("process_name", "M", 0, 0) + ",\"args\":{\"name\":\"Quartet\"}")
        for cpu in 0..<t.cpus {
            emit(common("thread_name", "M", 0, cpu) + ",\"args\":{\"name\":\"CPU \(cpu)\"}")
            emit(common("thread_sort_index", "M", 0, cpu) + ",\"args\":{\"sort_index\":\(cpu)}")
        }

        var starting = [[Int]](repeating: [], count: t.events.count)
        var ending = [[Int]](repeating: [], count: t.events.count)
        for (k, s) in t.spans.enumerated() {
            starting[s.startEvent].append(k)
            if let e = s.endEvent, !isComplete(s.kind) { ending[e].append(k) }
        }
        // A flow starts at its send, or at its receive when that was stamped first.
        var flowFrom = [[KtraceTimeline.Flow]](repeating: [], count: t.events.count), flowTo = flowFrom
        for f in t.flows { flowFrom[min(f.send, f.recv)].append(f); flowTo[f.recv].append(f) }

        for (i, e) in t.events.enumerated() {
            let ns = t.ns(e.tsc)
            for k in ending[i] {
                let s = t.spans[k]
                emit(common(s.name, "E", s.endNs, s.cpu) + ",\"cat\":\"\(category(s.kind))\"")
            }
            for k in starting[i] {
                let s = t.spans[k], src = t.events[s.startEvent]
                if isComplete(s.kind) {
                    emit(common(s.name, "X", s.startNs, s.cpu) + ",\"cat\":\"\(category(s.kind))\",\"dur\":"
                         + KtraceTimeline.microseconds(s.endNs - s.startNs) + ",\"args\":" + spanArgs(s, src))
                } else {
                    emit(common(s.name, "B", s.startNs, s.cpu) + ",\"cat\":\"\(category(s.kind))\",\"args\":" + spanArgs(s, src))
                }
            }
            if !t.absorbed[i] {
                let name = e.name == "switch" ? "switch #\(e.a)→#\(e.b)" : e.name
                emit(common(name, "i", ns, e.cpu) + ",\"cat\":\"\(e.family.rawValue)\",\"s\":\"t\",\"args\":" + eventArgs(e))
            }
            for f in flowFrom[i] {
                emit(common("ipi", "s", f.startNs, t.events[f.send].cpu) + ",\"cat\":\"ipi\",\"id\":\(f.id)")
            }
            for f in flowTo[i] {
                emit(common("ipi", "f", f.endNs, e.cpu) + ",\"cat\":\"ipi\",\"id\":\(f.id),\"bp\":\"e\"")
            }
        }
        out += "\n],\"otherData\":{\"source\":\"quartet ktrace\",\"cpus\":\(t.cpus),\"tsc_mhz\":\(t.tscMHz),"
        out += "\"dropped\":\(t.dropped)}}\n"
        return out
    }

    static func isComplete(_ kind: KtraceTimeline.SpanKind) -> Bool {
        switch kind {
        case .thread, .critical: return true
        case .rendezvous, .cpusync: return false
        }
    }

    static func category(_ kind: KtraceTimeline.SpanKind) -> String {
        switch kind {
        case .thread: return KtraceFamily.sched.rawValue
        case .critical: return KtraceFamily.crit.rawValue
        case .rendezvous: return KtraceFamily.rdv.rawValue
        case .cpusync: return KtraceFamily.cpusync.rawValue
        }
    }

    /// The log line travels along so that a slice in the viewer leads back to the log.
    static func eventArgs(_ e: KtraceEvent) -> String {
        let fields = e.arguments.map { label, value in
            quote(label) + ":" + (label == "mask" ? quote(value) : value)
        }
        return "{" + (fields + ["\"line\":\(e.line)"]).joined(separator: ",") + "}"
    }

    static func spanArgs(_ s: KtraceTimeline.Span, _ start: KtraceEvent) -> String {
        switch s.kind {
        case .thread(let id): return "{\"thread\":\(id),\"line\":\(start.line)}"
        default: return eventArgs(start)
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
