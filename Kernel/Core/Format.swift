// Format.swift - formatted text without Foundation.
//
// The kernel prints long before its heap exists (early boot, panic, NMI), so
// nothing here allocates: every formatter writes bytes one at a time into a
// TextOutput. Numbers are produced most-significant digit first by dividing by
// a power of ten (or shifting by a nibble), so no digit buffer is needed.
//
// Width rules, the same for every padded formatter: width is a minimum, never
// a maximum. A value wider than its field is printed whole, because a
// truncated number in a panic message is worse than a ragged column.

/// A sink for bytes: the serial console, a FixedLineBuffer, a test array.
protocol TextOutput {
    mutating func put(_ byte: UInt8)
}

extension TextOutput {
    mutating func write(_ s: StaticString) {
        // withUTF8Buffer also handles a StaticString made from a single
        // unicode scalar, which has no pointer of its own.
        s.withUTF8Buffer { buf in
            for b in buf { put(b) }
        }
    }

    // Disfavoured so that a plain literal, write("x"), picks the StaticString
    // overload: no String is built and the call is safe before the heap exists.
    @_disfavoredOverload
    mutating func write(_ s: String) {
        for b in s.utf8 { put(b) }
    }

    mutating func write(bytes: UnsafeRawBufferPointer) {
        for b in bytes { put(b) }
    }

    mutating func put(_ byte: UInt8, count: Int) {
        var n = count
        while n > 0 { put(byte); n -= 1 }
    }

    // MARK: decimal

    mutating func dec(_ v: UInt64) {
        dec(v, width: 0, pad: 0x20)
    }

    mutating func dec(_ v: Int) {
        dec(v, width: 0, pad: 0x20)
    }

    /// Right-aligned unsigned decimal, padded on the left with `pad`
    /// (normally " " or "0") up to `width` bytes.
    mutating func dec(_ v: UInt64, width: Int, pad: UInt8 = 0x20) {
        let n = Fmt.decimalDigits(v)
        put(pad, count: width - n)
        Fmt.emitDecimal(v, digits: n, into: &self)
    }

    /// Right-aligned signed decimal; the sign counts towards `width`.
    /// With pad "0" the sign goes before the zeros ("-0042"), with any other
    /// pad byte after the padding ("  -42"), as printf does.
    mutating func dec(_ v: Int, width: Int, pad: UInt8 = 0x20) {
        // magnitude is a UInt, so Int.min (whose negation overflows Int)
        // is printed correctly.
        let m = UInt64(v.magnitude)
        let n = Fmt.decimalDigits(m) + (v < 0 ? 1 : 0)
        if pad == 0x30 {
            if v < 0 { put(0x2D) }
            put(pad, count: width - n)
        } else {
            put(pad, count: width - n)
            if v < 0 { put(0x2D) }
        }
        Fmt.emitDecimal(m, digits: Fmt.decimalDigits(m), into: &self)
    }

    // MARK: hexadecimal

    /// Lowercase hex, zero-padded to `width` digits (the "0x" prefix does not
    /// count towards width).
    mutating func hex(_ v: UInt64, width: Int = 0, prefix: Bool = true) {
        if prefix { put(0x30); put(0x78) }
        // At least one digit, so 0 prints as "0".
        let n = v == 0 ? 1 : (64 - v.leadingZeroBitCount + 3) / 4
        put(0x30, count: width - n)
        var shift = (n - 1) * 4
        while shift >= 0 {
            put(Fmt.hexDigit(UInt8(truncatingIfNeeded: v >> UInt64(shift)) & 0xF))
            shift -= 4
        }
    }

    // MARK: left-aligned text

    /// `s` followed by spaces up to `width` bytes (bytes, not characters:
    /// console columns are ASCII here).
    mutating func padRight(_ s: StaticString, width: Int) {
        write(s)
        put(0x20, count: width - s.utf8CodeUnitCount)
    }

    // Labelled rather than overloaded: with a literal width, the type
    // checker picks a String overload over StaticString even when the String
    // one is marked disfavoured, and we want literals to stay StaticStrings.
    mutating func padRight(string s: String, width: Int) {
        write(s)
        put(0x20, count: width - s.utf8.count)
    }

    // MARK: sizes

    /// A byte count in the largest binary unit it reaches, truncated to an
    /// integer: 0x7fe0000 prints "127 MiB" (it is 127.875 MiB), 4096 prints
    /// "4 KiB", 512 prints "512 B". Truncating never overstates memory, and
    /// exact counts are one hex() away when they matter.
    mutating func bytes(_ n: UInt64) {
        var unit = 0
        while unit < 6 && n >> UInt64(10 * (unit + 1)) != 0 { unit += 1 }
        dec(n >> UInt64(10 * unit))
        put(0x20)
        switch unit {
        case 0: write("B")
        case 1: write("KiB")
        case 2: write("MiB")
        case 3: write("GiB")
        case 4: write("TiB")
        case 5: write("PiB")
        default: write("EiB")
        }
    }
}

/// Shared digit helpers (a namespace, not an API).
enum Fmt {
    static func decimalDigits(_ v: UInt64) -> Int {
        var n = 1
        var x = v
        while x >= 10 { x /= 10; n += 1 }
        return n
    }

    // Emits exactly `digits` digits of v. 10^19 is the largest power of ten
    // that fits in a UInt64, which is exactly what a 20-digit value needs.
    static func emitDecimal<T: TextOutput>(_ v: UInt64, digits: Int, into out: inout T) {
        var p: UInt64 = 1
        var i = 1
        while i < digits { p *= 10; i += 1 }
        while p > 0 {
            out.put(0x30 + UInt8(truncatingIfNeeded: (v / p) % 10))
            p /= 10
        }
    }

    static func hexDigit(_ d: UInt8) -> UInt8 {
        d < 10 ? 0x30 + d : 0x61 + d - 10
    }
}

/// A console line built in place before it is printed under the console lock,
/// so that lines from different CPUs never interleave mid-line and the lock
/// is held only for the copy out. Fixed inline storage: no heap, usable from
/// interrupt and panic context. Bytes beyond the capacity are dropped and
/// `truncated` is set, so the caller can mark the line as cut.
struct FixedLineBuffer: TextOutput {
    static let capacity = 256

    private var storage = InlineArray<256, UInt8>(repeating: 0)
    private(set) var count = 0
    private(set) var truncated = false

    init() {}

    mutating func put(_ byte: UInt8) {
        if count < FixedLineBuffer.capacity {
            storage[count] = byte
            count += 1
        } else {
            truncated = true
        }
    }

    mutating func reset() {
        count = 0
        truncated = false
    }

    /// Appends what `other` holds (byte by byte: no allocation).
    mutating func append(_ other: borrowing FixedLineBuffer) {
        for i in 0..<other.count { put(other.storage[i]) }
    }

    /// The bytes written so far (at most `capacity`).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: storage) { all in
            body(UnsafeRawBufferPointer(rebasing: all[0..<count]))
        }
    }
}
