import Synchronization

// bench-scale (`make bench` boots it at 1 to 64 CPUs): how bring-up and the IPI
// queue grow with the CPU count. boot.online is kernel entry to the last CPU
// online (parallel bring-up unless smp.bringup=serial); ipiq.alltoall is the
// one-way message rate when every CPU sends to the next one at once, in
// rounds (a sample = one round's rate). Counts are this suite's own sends.

enum ScaleBench {
    static let suite = TestSuite(name: "bench-scale", kind: .benchmark,
                                 summary: "boot time to all CPUs online and IPI-queue throughput with every CPU sending", body: run)

    static func run(_ t: inout TestContext) {
        let ms = UInt64(max(50, KernelOptions.int("bench.ms", default: 400)))
        BenchEnvironment.emit()
        let boot = TSC.nanoseconds(SMP.lastOnlineTSC &- TSC.boot) / 1000
        t.check(SMP.lastOnlineTSC > TSC.boot) { l in
            l.write("kernel entry to all "); l.dec(SMP.online.count); l.write(" CPUs online: "); l.dec(boot)
            l.write(" us ("); l.write(SMP.parallelBringup ? "parallel" : "serial"); l.write(" bring-up)")
        }
        BenchSamples.emitValue(boot, "boot.online", .microseconds, "kernel entry to all CPUs online")
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("IPI-queue throughput needs 2 CPUs"); return }
        let sent = CPUCounters(kinds: 1)            // [0, cpu] messages sent by that CPU's thread
        var rates = BenchSamples()
        for _ in 0..<5 {
            cpus.forEach { sent[0, $0] = 0 }
            let start = TSC.now
            let end = start &+ TSC.ticksPerMs &* (ms / 5)
            SuiteThreads.runOnEveryCPU("alltoall") {
                let me = PerCPU.currentNumber
                let next = cpus.next(atOrAfter: me + 1) ?? cpus.nth(0)!
                var n: UInt64 = 0
                var last: IPITicket? = nil
                while TSC.now < end { last = IPIQueue.send(to: next, { _, _ in }); n &+= 1 }
                if let last { IPIQueue.wait(last) }         // delivered, not just queued
                sent[0, me] = n
            }
            rates.add(sent.sum(0, over: cpus) &* 1_000_000_000 / max(1, TSC.nanoseconds(TSC.now &- start)))
        }
        t.check(rates.median > 0) { l in
            l.write("IPI queue, every CPU sending to the next: "); l.dec(rates.median); l.write(" messages/s (median of ")
            l.dec(rates.count); l.write(" rounds)")
        }
        rates.emit("ipiq.alltoall", .opsPerSecond, "IPI-queue messages per second, every CPU sending to the next")
    }
}
