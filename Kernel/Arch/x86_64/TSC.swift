// Time: the TSC as the nanosecond clock, and the one-time calibration of the TSC
// and the local APIC timer against the PIT. Under KVM the numbers are real; under
// TCG they are QEMU's idea of time, which is good enough for ticks and timeouts.

enum TSC {
    /// TSC ticks per millisecond, measured at boot (0 until calibrated).
    nonisolated(unsafe) static var ticksPerMs: UInt64 = 0
    /// Local APIC timer counts per millisecond at divide-by-16.
    nonisolated(unsafe) static var apicTicksPerMs: UInt64 = 0
    /// The TSC at kmain entry: the origin of `uptimeNanoseconds`.
    nonisolated(unsafe) static var boot: UInt64 = 0

    static var now: UInt64 { CPU.rdtsc() }

    /// Converts TSC ticks to nanoseconds without overflowing for long intervals.
    static func nanoseconds(_ ticks: UInt64) -> UInt64 {
        guard ticksPerMs > 0 else { return 0 }
        return (ticks / ticksPerMs) &* 1_000_000 &+ (ticks % ticksPerMs) &* 1_000_000 / ticksPerMs
    }

    static var uptimeNanoseconds: UInt64 { nanoseconds(now &- boot) }

    /// Busy-waits `cycles` TSC cycles.
    static func spin(cycles: UInt64) {
        let end = now &+ cycles
        while now < end { CPU.pause() }
    }

    /// Busy-waits at least `us` microseconds (needs calibration).
    static func delay(microseconds us: UInt64) {
        let end = now &+ max(1, ticksPerMs * us / 1000)
        while now < end { CPU.pause() }
    }

    /// Measures both clocks over `ms` PIT milliseconds. Call with interrupts off.
    static func calibrate(milliseconds ms: UInt64 = 20) {
        var tscStart: UInt64 = 0
        var apicStart: UInt32 = 0
        LocalAPIC.startFreeRunning()
        PIT.measure(milliseconds: ms) {
            tscStart = CPU.rdtsc()
            apicStart = LocalAPIC.timerCurrent
        }
        let tscEnd = CPU.rdtsc()
        let apicEnd = LocalAPIC.timerCurrent
        LocalAPIC.stopTimer()
        ticksPerMs = max(1, (tscEnd &- tscStart) / ms)
        apicTicksPerMs = max(1, UInt64(apicStart &- apicEnd) / ms)
    }
}
