import Synchronization

// smp: every CPU the firmware listed is online, each CPU's per-CPU data is its own
// (checked ON that CPU), and every CPU's timer ticks.

enum SMPSuite {
    static let suite = TestSuite(name: "smp", kind: .normal,
                                 summary: "CPUs online, per-CPU data, per-CPU timer ticks", body: run)

    /// Per CPU: 1 when its self-check passed, 2 when it failed. Heap memory: each
    /// CPU writes only its own byte.
    nonisolated(unsafe) static var verdicts = UnsafeMutablePointer<UInt8>.allocate(capacity: PerCPU.maxCPUs)

    static func run(_ t: inout TestContext) {
        let online = SMP.online
        let listed = SMP.madt?.enabledProcessorCount ?? 1
        let expected = min(listed, KernelOptions.int("smp.maxcpus", default: PerCPU.maxCPUs))
        // S1: an AP that claimed its place is kept; one left out is missing here.
        t.expect("online", inv: "S1", UInt64(online.count), .equals(UInt64(expected))) { l in
            l.dec(online.count); l.write(" CPUs online, "); l.dec(expected); l.write(" expected from the MADT")
        }
        var distinctAPIC = true
        for a in PerCPU.cpus { for b in PerCPU.cpus where a.id < b.id && a.apicID == b.apicID { distinctAPIC = false } }
        t.expect("apic-ids", distinctAPIC, "APIC ids are distinct")

        for i in 0..<64 { verdicts[i] = 0 }
        let ran = SuiteThreads.runOnEveryCPU("smp-check") { SMPSuite.selfCheck() } == online.count
        var bad = 0
        online.forEach { if verdicts[$0] != 1 { bad += 1 } }
        t.expect("per-cpu", ran && bad == 0) { l in
            l.write("per-CPU data checked on each CPU (GS header, mycpu, APIC id): ")
            l.dec(online.count - bad); l.write(" of "); l.dec(online.count); l.write(" correct")
        }

        // Ticks: every CPU's counter must advance by at least two (periodic, not one
        // pending interrupt). Bounded by 2 s: under the development machine's slow nested KVM
        // a CPU can still be busy for ~100 ms finishing the threads above.
        guard Clock.enabled else { t.skip("ticks", reason: .needsTick, "timer ticks: tick=0 given"); return }
        var before = InlineArray<64, UInt64>(repeating: 0)
        online.forEach { before[$0] = PerCPU.cpus[$0].ticks.load(ordering: .relaxed) }
        let start = TSC.now
        let wait = TimeBudget(milliseconds: 2000)
        var ticking = 0
        repeat {
            ticking = 0
            online.forEach { if PerCPU.cpus[$0].ticks.load(ordering: .relaxed) >= before[$0] &+ 2 { ticking += 1 } }
            CPU.pause()
        } while ticking < online.count && !wait.expired
        let ms = TSC.nanoseconds(TSC.now &- start) / 1_000_000
        t.expect("ticks", UInt64(ticking), .equals(UInt64(online.count))) { l in
            l.dec(ticking); l.write(" of "); l.dec(online.count); l.write(" CPUs' timers ticked twice (in ")
            l.dec(ms); l.write(" ms; "); l.dec(2000 / Clock.hz); l.write(" ms expected at ")
            l.dec(Clock.hz); l.write(" Hz)")
        }
    }

    static func selfCheck() {
        let n = PerCPU.currentNumber
        let cpu = mycpu
        let ok = cpu.id == n && cpu.apicID == LocalAPIC.id && PerCPU.cpus[n] === cpu
            && cpu.online.load(ordering: .relaxed) && !PerCPU.inInterrupt
        verdicts[n] = ok ? 1 : 2
    }
}
