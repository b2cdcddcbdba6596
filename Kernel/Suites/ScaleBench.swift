import Synchronization

// bench-scale (`make bench` boots it at 1 to 64 CPUs): how bring-up and the IPI
// queue grow with the CPU count. boot.online is kernel entry to the last CPU
// online (parallel bring-up unless smp.bringup=serial); ipiq.alltoall is the
// one-way message rate when every CPU sends to the next one at once, in
// rounds (a sample = one round's rate). Counts are this suite's own sends.

enum ScaleBench {
    static let suite = TestSuite(name: "bench-scale", kind: .benchmark,
                                 summary: "boot time to all CPUs online and IPI-queue throughput with every CPU sending", body: run)

    static let arrived = Atomic<Int>(0)
    /// 0 until every sender runs, then the round's end (TSC).
    static let go = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext) {
        let ms = UInt64(max(50, KernelOptions.int("bench.ms", default: 400)))
        BenchEnvironment.emit()
        let boot = TSC.nanoseconds(SMP.lastOnlineTSC &- TSC.boot) / 1000
        t.expect("boot-online", SMP.lastOnlineTSC > TSC.boot) { l in
            l.write("kernel entry to all "); l.dec(SMP.online.count); l.write(" CPUs online: "); l.dec(boot)
            l.write(" us ("); l.write(SMP.parallelBringup ? "parallel" : "serial"); l.write(" bring-up)")
        }
        BenchSamples.emitValue(boot, "boot.online", .microseconds, "kernel entry to all CPUs online")
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("ipiq-alltoall", reason: .needs2CPUs, "IPI-queue throughput needs 2 CPUs"); return }
        let sent = CPUCounters(kinds: 1)            // [0, cpu] messages sent by that CPU's thread
        var rates = BenchSamples()
        let window = TSC.ticksPerMs &* max(10, ms / 5)
        for _ in 0..<5 {
            cpus.forEach { sent[0, $0] = 0 }
            arrived.store(0, ordering: .relaxed)
            go.store(0, ordering: .releasing)
            // The round starts when the last thread is running (with 64 vCPUs on
            // a few host cores, starting them takes longer than a round).
            SuiteThreads.runOnEveryCPU("alltoall") {
                let me = PerCPU.currentNumber
                let next = cpus.next(atOrAfter: me + 1) ?? cpus.nth(0)!
                if ScaleBench.arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == cpus.count {
                    ScaleBench.go.store(TSC.now &+ window, ordering: .releasing)
                }
                var end: UInt64 = 0
                while end == 0 { end = ScaleBench.go.load(ordering: .acquiring); CPU.pause() }
                var n: UInt64 = 0
                var last: IPITicket? = nil
                repeat { last = IPIQueue.send(to: next, { _, _ in }); n &+= 1 } while TSC.now < end
                if let last { IPIQueue.wait(last) }         // delivered, not just queued
                sent[0, me] = n
            }
            let elapsed = TSC.now &- (go.load(ordering: .acquiring) &- window)
            rates.add(sent.sum(0, over: cpus) &* 1_000_000_000 / max(1, TSC.nanoseconds(elapsed)))
        }
        t.expect("ipiq-alltoall", rates.median, .above(0)) { l in
            l.write("IPI queue, every CPU sending to the next: "); l.dec(rates.median); l.write(" messages/s (median of ")
            l.dec(rates.count); l.write(" rounds)")
        }
        rates.emit("ipiq.alltoall", .opsPerSecond, "IPI-queue messages per second, every CPU sending to the next")
    }
}
