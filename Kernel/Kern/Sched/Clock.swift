import Synchronization

// The per-CPU periodic tick: the local APIC timer in periodic mode at HZ on every
// CPU, calibrated against the PIT at boot (TSC.calibrate). The tick is where
// time-slice preemption, sleep timeouts and passive IPI-queue polling hook in.

enum Clock {
    /// Ticks per second on each CPU. 100 Hz: 10 ms slices, as the BSDs' default
    /// of old; cheap under TCG, where every timer interrupt is emulated.
    static let hz: UInt64 = 100
    /// `tick=0` on the command line turns the periodic tick off (the IPI-queue
    /// lost-wakeup test needs a kernel that only wakes on real IPIs).
    nonisolated(unsafe) static var enabled = true
    /// Functions called on every tick, in interrupt context, on the ticking CPU.
    nonisolated(unsafe) static var hooks: [() -> Void] = []

    static func installHandler() {
        Traps.register(vector: Vectors.timer) { _ in Clock.tick() }
    }

    /// Starts this CPU's periodic timer.
    static func startOnThisCPU() {
        guard enabled else { return }
        let count = TSC.apicTicksPerMs * 1000 / hz
        LocalAPIC.startPeriodic(vector: Vectors.timer, initialCount: UInt32(clamping: max(count, 1)))
    }

    static func tick() {
        let cpu = mycpu
        cpu.ticks.wrappingAdd(1, ordering: .relaxed)
        cpu.heartbeat.wrappingAdd(1, ordering: .relaxed)
        countLostTicks(cpu)
        LocalAPIC.eoi()
        if IPIQueue.hasPending { IPIQueue.process() }    // passive messages ride the tick
        Scheduler.tick()
        Bsd4Clock.tick()
        for hook in hooks { hook() }
    }

    /// Periods without a tick since the last one (PerCPU.lostTicks).
    private static func countLostTicks(_ cpu: GlobalData) {
        let now = TSC.now
        let period = TSC.ticksPerMs * 1000 / hz
        if cpu.lastTickTSC != 0 && period != 0 {
            let periods = (now &- cpu.lastTickTSC + period / 2) / period
            if periods > 1 { cpu.lostTicks.wrappingAdd(periods - 1, ordering: .relaxed) }
        }
        cpu.lastTickTSC = now
    }

    static var uptimeMilliseconds: UInt64 { TSC.uptimeNanoseconds / 1_000_000 }
}
