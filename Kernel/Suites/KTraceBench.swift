// The cost of a trace point (part of `run=bench`): KTrace.record with tracing
// off (one load and one predictable branch), and on (timestamp, atomic slot
// index, a 32-byte store), per call, against an empty loop of the same shape.

enum KTraceBench {
    static func run(_ t: inout TestContext, _ ms: UInt64) {
        // The rings are allocated at every boot (KTrace.initialize): none is a failure.
        guard KTrace.available else { t.expect("rings", false, "ktrace rings were not allocated"); return }
        let was = KTrace.on
        let empty = Benchmarks.cyclesPerCall(ms / 3) { _ in }
        KTrace.stop()
        let off = Benchmarks.cyclesPerCall(ms / 3) { i in KTrace.record(.migrate, i, 0) }
        KTrace.start()
        let on = Benchmarks.cyclesPerCall(ms / 3) { i in KTrace.record(.migrate, i, 0) }
        if !was { KTrace.stop(); KTrace.clear() }
        t.expect("record", off.calls > 0 && on.calls > 0) { l in
            l.write("ktrace record: off "); l.dec(off.cycles); l.write(" cycles, on "); l.dec(on.cycles)
            l.write(" cycles per event (empty loop "); l.dec(empty.cycles); l.write("; "); l.dec(on.calls); l.write(" events)")
        }
        BenchSamples.emitValue(off.cycles, "ktrace.off", .cycles, "ktrace record with tracing off (median batch)")
        BenchSamples.emitValue(on.cycles, "ktrace.on", .cycles, "ktrace record with tracing on (median batch)")
    }
}
