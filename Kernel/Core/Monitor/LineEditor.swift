// LineEditor.swift - the monitor's input line, fed one byte at a time from a
// serial console (a VT100-ish terminal at the other end).
//
// The editor owns the line, its echo and a short history; the caller owns the
// prompt, the console and what a line means. For every byte it returns an
// Event and appends the bytes to echo to `out`, which the caller drains to the
// console (reserve it once: the per-byte path then allocates nothing).
//
// Choices worth knowing:
//   - Editing is at the end of the line only: a monitor line is short, and
//     cursor movement would need the terminal's idea of the cursor to match ours.
//   - Erasing (backspace, Ctrl-U, replacing the line with a history entry) echoes
//     "\b \b" per byte rather than "\r" + ESC[2K + prompt: it works on any
//     terminal, needs no knowledge of the prompt, and costs at most
//     3 * capacity bytes, about 30 ms at 115200 baud for 120 bytes.
//   - Enter is CR or LF; a LF straight after a CR is dropped, so CRLF terminals
//     and pasted text with CRLF endings give one line each, not one plus an
//     empty one. CR CR is two Enters.
//   - Escape sequences are swallowed whole, but one cut short by a control
//     byte (a CR, another ESC) gives that byte back to normal processing, and
//     one longer than `maxSequence` is abandoned: a broken terminal can never
//     make the editor eat an Enter or the rest of the session.
//   - A full line refuses further bytes; the first refused byte reports
//     .overflow (and echoes BEL), later ones are dropped silently until the
//     line gets shorter, so a long paste gives one complaint, not hundreds.

struct LineEditor {
    enum Event: Equatable {
        case none
        /// Enter: the line (possibly empty). "\r\n" has been echoed; the caller
        /// runs it and prints the next prompt.
        case submit([UInt8])
        /// Ctrl-C: the line is discarded and nothing is echoed; the caller
        /// aborts what runs, or prints "^C" and a new prompt.
        case interrupt
        /// The line is full (`capacity` bytes) and a byte was refused. BEL has
        /// been echoed; the caller may print `overflowMessage` on a line of its
        /// own and then the prompt and `line` again.
        case overflow
        /// Enter on a line that lost bytes to an overflow: it is not what was
        /// typed, so it is dropped rather than run (a cut `torture.seconds=100`
        /// would run as `=10`). "\r\n" has been echoed.
        case discarded
    }

    static let maxSequence = 16

    let capacity: Int
    let historyLimit: Int
    private(set) var line: [UInt8] = []
    /// Oldest first; no empty entries, no two equal neighbours.
    private(set) var history: [[UInt8]] = []
    /// Bytes dropped for being neither a key nor printable (other control
    /// bytes, bytes >= 0x80): the caller may report a noisy line.
    private(set) var garbage = 0

    private enum State { case normal, escape, csi(Int), ss3 }
    private var state = State.normal
    private var afterCR = false
    private var overflowReported = false
    /// Bytes were refused since the line began (Ctrl-U or Ctrl-C start over).
    private var truncated = false
    /// The history entry shown, while browsing with Up/Down; nil on a new line.
    private var browsing: Int? = nil

    init(capacity: Int = 120, historyLimit: Int = 16) {
        precondition(capacity > 0 && historyLimit >= 0)
        self.capacity = capacity
        self.historyLimit = historyLimit
        line.reserveCapacity(capacity)
    }

    /// "line too long (max N)", for the caller to print after .overflow.
    var overflowMessage: String {
        var d: [UInt8] = []
        var n = capacity
        repeat { d.append(0x30 + UInt8(n % 10)); n /= 10 } while n > 0
        return "line too long (max " + String(decoding: d.reversed(), as: UTF8.self) + ")"
    }

    mutating func feed(_ b: UInt8, into out: inout [UInt8]) -> Event {
        let wasCR = afterCR
        afterCR = false
        switch state {
        case .normal:
            break
        case .escape:
            state = .normal
            if b == 0x5B { state = .csi(0); return .none }     // ESC [
            if b == 0x4F { state = .ss3; return .none }        // ESC O
            // A lone ESC: drop it and treat the byte as typed on its own.
        case .csi(let n):
            if b >= 0x40 && b <= 0x7E {                        // final byte
                state = .normal
                if n == 0 { arrow(b, into: &out) }             // no parameters
                return .none
            }
            if b >= 0x20 && b <= 0x3F && n < LineEditor.maxSequence {
                state = .csi(n + 1)                            // parameter/intermediate
                return .none
            }
            state = .normal                                    // cut short or too long
            if b >= 0x20 && b < 0x7F { return .none }
        case .ss3:
            state = .normal
            if b >= 0x20 && b <= 0x7E { arrow(b, into: &out); return .none }
        }

        switch b {
        case 0x20...0x7E:
            guard line.count < capacity else {
                truncated = true
                if overflowReported { return .none }
                overflowReported = true
                out.append(0x07)
                return .overflow
            }
            line.append(b)
            out.append(b)
        case 0x0D, 0x0A:
            if b == 0x0A && wasCR { return .none }             // the LF of a CRLF
            afterCR = b == 0x0D
            out.append(0x0D); out.append(0x0A)
            if truncated {
                truncated = false
                line.removeAll(keepingCapacity: true)
                browsing = nil
                overflowReported = false
                return .discarded
            }
            return .submit(submit())
        case 0x08, 0x7F:
            if !line.isEmpty { erase(1, into: &out); line.removeLast() }
            overflowReported = false
        case 0x15:                                             // Ctrl-U
            erase(line.count, into: &out)
            line.removeAll(keepingCapacity: true)
            overflowReported = false
            truncated = false
        case 0x03:                                             // Ctrl-C
            line.removeAll(keepingCapacity: true)
            browsing = nil
            overflowReported = false
            truncated = false
            return .interrupt
        case 0x1B:
            state = .escape
        default:
            garbage &+= 1
        }
        return .none
    }

    // Up and Down browse the history (A and B, after ESC [ or ESC O); any other
    // final byte is a key we do not handle (Right, Left, Home...).
    private mutating func arrow(_ final: UInt8, into out: inout [UInt8]) {
        if final == 0x41 {                                     // Up: older, stop at the oldest
            guard !history.isEmpty else { return }
            let i = browsing.map { max($0 - 1, 0) } ?? history.count - 1
            if i == browsing { return }
            browsing = i
            replace(with: history[i], into: &out)
        } else if final == 0x42 {                              // Down: newer, then an empty line
            guard let i = browsing else { return }
            if i + 1 < history.count {
                browsing = i + 1
                replace(with: history[i + 1], into: &out)
            } else {
                browsing = nil
                replace(with: [], into: &out)
            }
        }
    }

    private mutating func replace(with text: [UInt8], into out: inout [UInt8]) {
        erase(line.count, into: &out)
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: text.prefix(capacity))
        out.append(contentsOf: line)
        overflowReported = false
    }

    private func erase(_ n: Int, into out: inout [UInt8]) {
        for _ in 0..<n { out.append(0x08); out.append(0x20); out.append(0x08) }
    }

    // The line leaves the editor and, unless empty or a repeat, joins the
    // history. One allocation per Enter: the returned array and the history
    // entry share a buffer, and the line gets a fresh one.
    private mutating func submit() -> [UInt8] {
        let done = line
        line = []
        line.reserveCapacity(capacity)
        browsing = nil
        overflowReported = false
        if !done.isEmpty && historyLimit > 0 && history.last != done {
            if history.count == historyLimit { history.removeFirst() }
            history.append(done)
        }
        return done
    }
}
