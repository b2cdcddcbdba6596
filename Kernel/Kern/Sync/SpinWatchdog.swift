// A bound on every loop that spins waiting for another CPU: a warning after 1 s
// and a named panic after 10 s (docs/ipi-queues.md: wait_ipiq's rule, applied to
// every such wait). A deadlock then ends in a readable report, never in a hang.

struct SpinWatchdog {
    static let warnMs: UInt64 = 1_000
    static let panicMs: UInt64 = 10_000

    let start = TSC.now
    /// What the loop waits for, e.g. "wait_ipiq: no answer from CPU".
    let what: StaticString
    /// The CPU waited for (printed), or -1.
    let other: Int
    private var warned = false

    init(_ what: StaticString, other: Int = -1) {
        self.what = what
        self.other = other
    }

    /// Call once per pass of the loop.
    mutating func check() {
        guard TSC.ticksPerMs > 0 else { return }        // before calibration: no clock
        let waited = TSC.now &- start
        if !warned && waited > TSC.ticksPerMs &* SpinWatchdog.warnMs {
            warned = true
            let (w, o) = (what, other)
            Console.line { l in
                l.write("watchdog: CPU "); l.dec(PerCPU.currentNumber); l.write(" spinning > 1 s: "); l.write(w)
                if o >= 0 { l.write(" "); l.dec(o) }
            }
        }
        if waited > TSC.ticksPerMs &* SpinWatchdog.panicMs {
            let o = other
            panic(what) { l in if o >= 0 { l.dec(o); l.write(" ") }; l.write("(10 s)") }
        }
    }
}
