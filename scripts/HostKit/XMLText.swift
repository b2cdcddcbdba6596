// Text for SVG (XML 1.0) documents: BenchKit's chart, KtraceKit's timeline and
// SchedSimKit's chart all escape their labels here, so that names taken from a
// serial log or a workload can never break the markup.

public enum XMLText {
    /// `s` safe in element content and in attribute values quoted either way:
    /// & < > " ' become entities. XML 1.0 forbids most control characters even
    /// as character references, and serial noise may carry them: C0 controls
    /// other than tab, LF and CR, and U+FFFE and U+FFFF, become U+FFFD, as do
    /// DEL and the C1 controls, which the specification discourages. Tab, LF and
    /// CR become a space, as SVG renders them anyway; labels stay on one line.
    /// Works on Unicode scalars, so a CR LF pair is two spaces.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            switch u.value {
            case 0x26: out += "&amp;"
            case 0x3C: out += "&lt;"
            case 0x3E: out += "&gt;"
            case 0x22: out += "&quot;"
            case 0x27: out += "&apos;"
            case 0x09, 0x0A, 0x0D: out += " "
            case 0x00..<0x20, 0x7F...0x9F, 0xFFFE, 0xFFFF: out += "\u{FFFD}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
