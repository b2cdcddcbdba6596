// Finds the ktrace dump in a serial log. The log is everything the kernel
// printed, so the dump shares it with boot messages, test results and lines
// that other CPUs print while the dump is under way. Only three shapes matter,
// each at column 0 (lines end in \n or \r\n):
//
//   ktrace: begin cpus=4 tsc_mhz=2604 events=123 dropped=0
//   K <cpu> <tsc, 16 hex digits> <event> <a> <b>        (decimal cpu, a, b)
//   ktrace: end
//
// All else is ignored, including any `K ` line outside a begin/end block. The
// rings are dumped CPU after CPU, so events are not in time order here;
// KtraceTimeline sorts them. Of several dumps, the last complete one is used.
//
// A malformed K line is skipped with a diagnostic rather than failing the
// whole dump: one corrupt line must not cost the other few thousand.

/// The result of reading a log: the dump to use, and what went wrong.
public struct KtraceLog: Sendable {
    /// The last complete dump; else the last unterminated one; nil if none.
    public var dump: KtraceDump?
    /// Malformed K lines of the chosen dump, then warnings, in line order.
    public var diagnostics: [KtraceDiagnostic]
    /// How many dumps the log holds, complete or not.
    public var dumpsFound: Int
}

public enum KtraceParser {
    /// Larger counts are taken as a corrupt begin line, not as a machine.
    public static let maxCPUs = 1024

    public static func parse(_ text: String) -> KtraceLog {
        var dumps: [KtraceDump] = []
        var open: KtraceDump?
        var notes: [KtraceDiagnostic] = []
        var number = 0
        // By scalars: as Characters, "\r\n" is one grapheme and never equals "\n".
        for raw in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = Substring(raw.last == "\r" ? raw.dropLast() : raw)
            if line.hasPrefix("K "), open != nil {
                switch parseEvent(line, line: number, cpus: open!.cpus) {
                case .success(let e): open!.events.append(e)
                case .failure(let d): open!.malformed.append(d)
                }
            } else if line == "ktrace: end" {
                // A stray end (its begin was malformed or never printed) closes nothing.
                if var d = open { d.endLine = number; dumps.append(d); open = nil }
            } else if line == "ktrace: begin" || line.hasPrefix("ktrace: begin ") {
                if let d = open { dumps.append(d) }
                open = nil
                switch parseBegin(line.dropFirst("ktrace: begin".count), line: number) {
                case .success(let d): open = d
                case .failure(let d): notes.append(d)
                }
            }
        }
        if let d = open { dumps.append(d) }
        guard let chosen = dumps.last(where: { $0.isComplete }) ?? dumps.last else {
            notes.append(KtraceDiagnostic(line: 0, "no ktrace dump in the log (no valid 'ktrace: begin' line)"))
            return KtraceLog(dump: nil, diagnostics: notes, dumpsFound: 0)
        }
        if !chosen.isComplete {
            notes.append(KtraceDiagnostic(line: chosen.beginLine,
                "the dump has no 'ktrace: end' (log cut short?); using the \(chosen.events.count) events read"))
        } else if let later = dumps.last, later.beginLine > chosen.beginLine {
            notes.append(KtraceDiagnostic(line: later.beginLine,
                "this dump has no 'ktrace: end'; using the complete one at line \(chosen.beginLine)"))
        }
        let read = chosen.events.count + chosen.malformed.count
        if chosen.isComplete && read != chosen.declaredEvents {
            notes.append(KtraceDiagnostic(line: chosen.beginLine,
                "the dump announces events=\(chosen.declaredEvents) but has \(read) K lines"))
        }
        let all = (chosen.malformed + notes).sorted { $0.line < $1.line }
        return KtraceLog(dump: chosen, diagnostics: all, dumpsFound: dumps.count)
    }

    static func parseBegin(_ rest: Substring, line: Int) -> Result<KtraceDump, KtraceDiagnostic> {
        var values: [String: UInt64] = [:]
        for word in rest.split(separator: " ") {
            let kv = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            // Unknown keys are allowed: a newer kernel may say more.
            guard kv.count == 2, let v = UInt64(kv[1]) else {
                return .failure(KtraceDiagnostic(line: line, "malformed begin line: '\(word)' is not key=number"))
            }
            values[String(kv[0])] = v
        }
        for key in ["cpus", "tsc_mhz", "events", "dropped"] where values[key] == nil {
            return .failure(KtraceDiagnostic(line: line, "malformed begin line: no \(key)="))
        }
        let cpus = values["cpus"]!, mhz = values["tsc_mhz"]!
        guard cpus >= 1 && cpus <= UInt64(maxCPUs) else {
            return .failure(KtraceDiagnostic(line: line, "malformed begin line: cpus=\(cpus) is outside 1..\(maxCPUs)"))
        }
        guard mhz >= 1, let events = Int(exactly: values["events"]!) else {
            return .failure(KtraceDiagnostic(line: line, "malformed begin line: tsc_mhz must be at least 1"))
        }
        return .success(KtraceDump(cpus: Int(cpus), tscMHz: mhz, declaredEvents: events,
                                   dropped: values["dropped"]!, beginLine: line))
    }

    static func parseEvent(_ text: Substring, line: Int, cpus: Int) -> Result<KtraceEvent, KtraceDiagnostic> {
        func bad(_ why: String) -> Result<KtraceEvent, KtraceDiagnostic> {
            .failure(KtraceDiagnostic(line: line, "malformed K line (\(why)): \(text.prefix(80))"))
        }
        let f = text.split(separator: " ")
        guard f.count == 6 else { return bad("expected 6 fields, found \(f.count)") }
        guard let cpu = decimal(f[1]) else { return bad("cpu '\(f[1])' is not a decimal number") }
        guard cpu < UInt64(cpus) else { return bad("cpu \(cpu) is not below cpus=\(cpus)") }
        guard f[2].count == 16, f[2].allSatisfy(\.isHexDigit), let tsc = UInt64(f[2], radix: 16) else {
            return bad("tsc '\(f[2])' is not 16 hex digits")
        }
        guard let a = decimal(f[4]), let b = decimal(f[5]) else { return bad("arguments must be decimal numbers") }
        return .success(KtraceEvent(line: line, cpu: Int(cpu), tsc: tsc, name: String(f[3]), a: a, b: b))
    }

    /// Digits only: UInt64("+5") would accept a sign the kernel never prints.
    static func decimal(_ s: Substring) -> UInt64? {
        s.allSatisfy { $0.isASCII && $0.isNumber } ? UInt64(s) : nil
    }
}
