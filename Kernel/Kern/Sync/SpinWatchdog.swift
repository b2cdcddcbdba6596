// A bound on every loop that spins waiting for another CPU: a warning after 1 s
// and a named panic after 10 s (docs/ipi-queues.md: wait_ipiq's rule, applied to
// every such wait). A deadlock then ends in a readable report, never in a hang.
// Both bounds grow with the CPU count beyond 8 (`scale`): a wait on all CPUs
// lasts until each has had its turn, and under TCG with 64 vCPUs on a 2-core
// host one turn of every vCPU takes the host scheduler a good part of a second.

struct SpinWatchdog {
    static var warnMs: UInt64 { 1_000 * scale }
    static var panicMs: UInt64 { 10_000 * scale }
    /// Set once the APs are up (SMP.startApplicationProcessors).
    nonisolated(unsafe) static var scale: UInt64 = 1

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
                l.write("watchdog: CPU "); l.dec(PerCPU.currentNumber); l.write(" spinning > "); l.dec(SpinWatchdog.warnMs / 1000)
                l.write(" s: "); l.write(w)
                if o >= 0 { l.write(" "); l.dec(o) }
            }
        }
        if waited > TSC.ticksPerMs &* SpinWatchdog.panicMs {
            let o = other
            panic(what) { l in if o >= 0 { l.dec(o); l.write(" ") }; l.write("("); l.dec(SpinWatchdog.panicMs / 1000); l.write(" s)") }
        }
    }
}
