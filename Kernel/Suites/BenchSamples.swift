// Benchmark samples and the machine-readable result lines (docs/benchmarks.md):
//   BENCHENV: system=quartet smp=4 tsc_mhz=2419 hypervisor=TCG cpu=<CPUID brand>
//   BENCH: id=ipiq.roundtrip unit=cycles median=.. p99=.. n=.. floor=ipi.roundtrip label=..
// The kernel computes median, p99 and the sample count; the host tool
// (`swift run benchreport`) divides by the floor and draws the tables.

enum BenchUnit {
    case cycles, microseconds, opsPerSecond, ratio
    var name: StaticString {
        switch self {
        case .cycles: return "cycles"
        case .microseconds: return "us"
        case .opsPerSecond: return "ops/s"
        case .ratio: return "ratio"
        }
    }
    /// Rates get better upwards: their p99 is the 1st percentile.
    var higherIsBetter: Bool { self == .opsPerSecond }
}

/// Samples of one measurement. `.ratio` samples are kept in hundredths.
struct BenchSamples {
    var values: [UInt64] = []
    init() { values.reserveCapacity(1024) }
    mutating func add(_ v: UInt64) { values.append(v) }
    var count: Int { values.count }
    var isEmpty: Bool { values.isEmpty }

    /// Percentile `p` (0...100) of the sorted samples, nearest rank.
    func percentile(_ p: Int, _ sorted: [UInt64]) -> UInt64 {
        guard !sorted.isEmpty else { return 0 }
        let rank = (sorted.count * p + 99) / 100           // ceil(n * p / 100)
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }
    var median: UInt64 { let s = values.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
    var mean: UInt64 { values.isEmpty ? 0 : values.reduce(0, &+) / UInt64(values.count) }

    /// Prints the BENCH line.
    func emit(_ id: StaticString, _ unit: BenchUnit, floor: StaticString? = nil, _ label: StaticString) {
        let s = values.sorted()
        let med = s.isEmpty ? 0 : s[s.count / 2]
        let p99 = percentile(unit.higherIsBetter ? 1 : 99, s)
        Console.line { l in
            l.write("BENCH: id="); l.write(id); l.write(" unit="); l.write(unit.name)
            l.write(" median="); BenchSamples.number(&l, med, unit)
            l.write(" p99="); BenchSamples.number(&l, p99, unit)
            l.write(" n="); l.dec(s.count)
            if let floor { l.write(" floor="); l.write(floor) }
            l.write(" label="); l.write(label)
        }
    }

    /// One value that is not a distribution (n = 1).
    static func emitValue(_ v: UInt64, _ id: StaticString, _ unit: BenchUnit, floor: StaticString? = nil,
                          _ label: StaticString) {
        var s = BenchSamples()
        s.add(v)
        s.emit(id, unit, floor: floor, label)
    }

    static func number(_ l: inout FixedLineBuffer, _ v: UInt64, _ unit: BenchUnit) {
        guard unit == .ratio else { l.dec(v); return }
        l.dec(v / 100); l.write(".")
        if v % 100 < 10 { l.write("0") }
        l.dec(v % 100)
    }
}

enum BenchEnvironment {
    nonisolated(unsafe) static var emitted = false

    /// The BENCHENV line (once per boot): what the host tool heads each table with.
    static func emit() {
        guard !emitted else { return }
        emitted = true
        Console.line { l in
            l.write("BENCHENV: system=quartet smp="); l.dec(SMP.online.count)
            l.write(" tsc_mhz="); l.dec(TSC.ticksPerMs / 1000)
            l.write(" hypervisor="); l.write(Hypervisor.current.name)
            l.write(" apic="); l.write(LocalAPIC.mode == .x2apic ? "x2APIC" : "xAPIC")
            l.write(" cpu="); brand(&l)
        }
    }

    /// The CPUID brand string (leaves 0x80000002-4), spaces trimmed.
    static func brand(_ l: inout FixedLineBuffer) {
        guard CPU.cpuid(0x8000_0000).eax >= 0x8000_0004 else { l.write("unknown"); return }
        var bytes: [UInt8] = []
        for leaf in UInt32(0x8000_0002)...0x8000_0004 {
            let r = CPU.cpuid(leaf)
            for word in [r.eax, r.ebx, r.ecx, r.edx] {
                for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
            }
        }
        let text = bytes.prefix { $0 != 0 }
        var start = text.startIndex, end = text.endIndex
        while start < end && text[start] == 0x20 { start += 1 }
        while end > start && text[end - 1] == 0x20 { end -= 1 }
        if start == end { l.write("unknown"); return }
        for b in text[start..<end] { l.put(b >= 0x20 && b < 0x7F ? b : 0x3F) }
    }
}
