// KernelCommandLine.swift - the kernel command line (QEMU -append, GRUB).
//
// Grammar, one option per word:
//     word   := key | key "=" value | key "=" '"' quoted '"'
//     key    := [a-z0-9._-]{1,32}
//     value  := up to 256 printable ASCII bytes, no '"' and no blank
//     quoted := up to 256 printable ASCII bytes (blanks allowed), no '"'
// Words are separated by blanks (space, tab, CR, LF). A bare key means "1".
//
// The text comes from the boot loader and, through it, from whoever wrote
// the boot configuration: it is input, not trusted. Hence:
//   - the input is a byte range, and parsing stops at the first NUL, so a
//     missing terminator can never make us read past the range;
//   - a malformed word is reported and skipped, and parsing goes on with the
//     next word, so one typo does not silently drop every later option;
//   - control bytes and bytes >= 0x80 are refused: they would reach the
//     console when options are echoed (terminal escape injection) and have
//     no business in an option;
//   - keys, values and the option count are bounded, so a huge command line
//     cannot make the kernel allocate without limit;
//   - problem text is truncated and made printable before it is stored.
//
// This parser allocates (Strings, Arrays): it runs after the heap is up.

struct CommandLineOption {
    var key: String
    var value: String
}

struct CommandLineProblem {
    enum Severity { case warning, error }
    var severity: Severity
    /// The offending word, truncated to `maxWordEcho` bytes, with anything
    /// unprintable replaced by '?'.
    var word: String
    var reason: StaticString
}

enum KernelCommandLine {
    static let maxKeyLength = 32
    static let maxValueLength = 256
    static let maxOptions = 32
    static let maxWordEcho = 64

    /// Parses `bytes` (stopping at the first NUL, if any). With
    /// `skipImageName`, a first word without '=' is taken as the kernel image
    /// path that QEMU and GRUB put in front of the user's text.
    static func parse(_ bytes: UnsafeRawBufferPointer, skipImageName: Bool = true) -> ParsedCommandLine {
        var result = ParsedCommandLine()
        var end = 0
        while end < bytes.count && bytes[end] != 0 { end += 1 }
        let text = UnsafeRawBufferPointer(rebasing: bytes[0..<end])

        var i = 0
        var firstWord = true
        while true {
            while i < end && isBlank(text[i]) { i += 1 }
            if i >= end { break }
            let start = i
            let word = scanWord(text, from: start)
            let slice = UnsafeRawBufferPointer(rebasing: text[start..<word.end])
            i = word.end

            if firstWord {
                firstWord = false
                if skipImageName && !slice.contains(0x3D) {
                    result.imageName = echo(slice)
                    continue
                }
            }
            if let reason = word.error {
                result.problems.append(.init(severity: .error, word: echo(slice), reason: reason))
                continue
            }
            result.add(word: start..<word.end, key: start..<word.keyEnd, value: word.value, in: text)
        }
        return result
    }

    /// Keys present on the command line that are not in `known`, in order:
    /// the caller reports them and ignores them (a misspelt option must not
    /// pass silently).
    static func unknownKeys(_ parsed: ParsedCommandLine, known: [StaticString]) -> [String] {
        parsed.options.compactMap { opt in
            known.contains(where: { equal(opt.key, $0) }) ? nil : opt.key
        }
    }

    static func unknownKeys(_ parsed: ParsedCommandLine, known: [String]) -> [String] {
        parsed.options.compactMap { opt in
            known.contains(where: { $0.utf8.elementsEqual(opt.key.utf8) }) ? nil : opt.key
        }
    }

    // MARK: scanning

    struct Word {
        var end: Int            // one past the last byte of the word
        var keyEnd: Int         // index of '=' or end (when bare)
        var value: Range<Int>?  // value bytes, quotes excluded; nil when bare
        var error: StaticString?
    }

    static func isBlank(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
    }

    static func isKeyByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
    }

    static func isPrintable(_ b: UInt8) -> Bool { b >= 0x20 && b < 0x7F }

    // Finds the extent of the word starting at `start` and checks it. Only
    // the first error found is kept; the word's extent is always determined,
    // so the caller can resume after it.
    static func scanWord(_ t: UnsafeRawBufferPointer, from start: Int) -> Word {
        let n = t.count
        var w = Word(end: start, keyEnd: start, value: nil, error: nil)
        func fail(_ r: StaticString) { if w.error == nil { w.error = r } }

        // Key.
        var i = start
        while i < n && !isBlank(t[i]) && t[i] != 0x3D {
            let b = t[i]
            if !isPrintable(b) { fail("control or non-ASCII byte") }
            else if b == 0x22 { fail("quote in key") }
            else if !isKeyByte(b) { fail("key must be [a-z0-9._-]") }
            i += 1
        }
        w.keyEnd = i
        if i == start { fail("empty key") }
        else if i - start > maxKeyLength { fail("key longer than 32 bytes") }
        if i >= n || isBlank(t[i]) { w.end = i; return w }

        // Value, after '='.
        i += 1
        if i < n && t[i] == 0x22 {
            // Quoted: runs to the next quote, blanks included. If there is
            // none, the word is cut at the first blank after the opening
            // quote, so the rest of the line is still parsed as words rather
            // than swallowed by the stray quote.
            let open = i
            var close = open + 1
            while close < n && t[close] != 0x22 { close += 1 }
            if close >= n {
                fail("unterminated quote")
                var e = open + 1
                while e < n && !isBlank(t[e]) { e += 1 }
                w.end = e
                return w
            }
            for j in (open + 1)..<close where !isPrintable(t[j]) { fail("control or non-ASCII byte") }
            w.value = (open + 1)..<close
            i = close + 1
            // `a="b"c` is ambiguous: refuse it rather than guess.
            if i < n && !isBlank(t[i]) {
                fail("text after closing quote")
                while i < n && !isBlank(t[i]) { i += 1 }
            }
        } else {
            let vstart = i
            while i < n && !isBlank(t[i]) {
                let b = t[i]
                if !isPrintable(b) { fail("control or non-ASCII byte") }
                else if b == 0x22 { fail("quote inside value") }
                i += 1
            }
            w.value = vstart..<i
        }
        if let v = w.value, v.count > maxValueLength { fail("value longer than 256 bytes") }
        w.end = i
        return w
    }

    // MARK: string helpers

    static func string(_ b: UnsafeRawBufferPointer) -> String {
        String(decoding: b, as: UTF8.self)
    }

    // The word as it may be shown on the console: bounded and printable.
    static func echo<S: Sequence>(_ b: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        for byte in b.prefix(maxWordEcho) {
            out.append(isPrintable(byte) ? byte : 0x3F)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func equal(_ s: String, _ st: StaticString) -> Bool {
        st.withUTF8Buffer { s.utf8.elementsEqual($0) }
    }
}

struct ParsedCommandLine {
    var options: [CommandLineOption] = []
    var problems: [CommandLineProblem] = []
    /// The skipped first word (kernel image path), if any.
    var imageName: String? = nil

    // Records a well-formed word; the ranges index `text`.
    mutating func add(word w: Range<Int>, key k: Range<Int>, value v: Range<Int>?, in text: UnsafeRawBufferPointer) {
        let key = KernelCommandLine.string(UnsafeRawBufferPointer(rebasing: text[k]))
        let val = v.map { KernelCommandLine.string(UnsafeRawBufferPointer(rebasing: text[$0])) } ?? "1"
        let word = UnsafeRawBufferPointer(rebasing: text[w])

        if let idx = index(of: key) {
            // Last one wins, as in Linux, so that text appended by a script
            // overrides the defaults before it; but say so, since a
            // duplicate is more often a mistake than a plan.
            options[idx].value = val
            problems.append(.init(severity: .warning, word: KernelCommandLine.echo(word),
                                  reason: "duplicate key; last one wins"))
            return
        }
        if options.count >= KernelCommandLine.maxOptions {
            problems.append(.init(severity: .error, word: KernelCommandLine.echo(word),
                                  reason: "too many options (max 32)"))
            return
        }
        options.append(.init(key: key, value: val))
    }

    func index(of key: String) -> Int? {
        // Byte comparison: keys are ASCII, and it keeps Unicode
        // normalisation tables out of the kernel.
        options.firstIndex { $0.key.utf8.elementsEqual(key.utf8) }
    }

    func value(for key: String) -> String? {
        index(of: key).map { options[$0].value }
    }

    /// True for a bare key or a value of 1/true/yes/on, false when absent or
    /// 0/false/no/off. Any other value is reported and reads as false: an
    /// unclear switch stays off.
    mutating func flag(_ key: String) -> Bool {
        guard let v = value(for: key) else { return false }
        for t: StaticString in ["1", "true", "yes", "on"] where KernelCommandLine.equal(v, t) { return true }
        for f: StaticString in ["0", "false", "no", "off"] where KernelCommandLine.equal(v, f) { return false }
        problems.append(.init(severity: .error, word: KernelCommandLine.echo((key + "=" + v).utf8),
                              reason: "not a boolean"))
        return false
    }

    /// The option as an integer (decimal, or hex with 0x, optional leading
    /// '-'); `default` when absent. A malformed or overflowing value is
    /// reported and yields `default`, never a wrapped number.
    mutating func int(_ key: String, default def: Int) -> Int {
        guard let v = value(for: key) else { return def }
        if let n = ParsedCommandLine.parseInt(v) { return n }
        problems.append(.init(severity: .error, word: KernelCommandLine.echo((key + "=" + v).utf8),
                              reason: "not an integer or out of range"))
        return def
    }

    static func parseInt(_ s: String) -> Int? {
        let u = Array(s.utf8)
        var i = 0
        let negative = u.first == 0x2D
        if negative { i = 1 }
        var radix: UInt64 = 10
        if u.count - i > 2 && u[i] == 0x30 && (u[i + 1] == 0x78 || u[i + 1] == 0x58) {
            radix = 16
            i += 2
        }
        if i >= u.count { return nil }
        var m: UInt64 = 0
        for b in u[i...] {
            let d: UInt64
            switch b {
            case 0x30...0x39: d = UInt64(b - 0x30)
            case 0x61...0x66 where radix == 16: d = UInt64(b - 0x61 + 10)
            case 0x41...0x46 where radix == 16: d = UInt64(b - 0x41 + 10)
            default: return nil
            }
            let (p, o1) = m.multipliedReportingOverflow(by: radix)
            let (q, o2) = p.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            m = q
        }
        // Int.max + 1 is representable only as a negative number.
        let limit = UInt64(Int.max) + (negative ? 1 : 0)
        if m > limit { return nil }
        return negative ? Int(truncatingIfNeeded: 0 &- m) : Int(m)
    }

    /// Comma-separated items; empty items ("a,,b", trailing comma) dropped.
    func list(_ key: String) -> [String] {
        guard let v = value(for: key) else { return [] }
        return v.utf8.split(separator: 0x2C, omittingEmptySubsequences: true).map {
            String(decoding: $0, as: UTF8.self)
        }
    }
}
