// rv-nested-action, rv-nested-cpusync (fatal, run by name): a rendezvous
// started where it cannot always finish must end in a named panic at once, not
// in a watchdog's report 10 s later (docs/rendezvous.md, "Who may start one").

enum RendezvousMisuseSuites {
    /// A participant's action, run from a spin loop in thread context (no lock
    /// held, so the older guards do not see it), starts another rendezvous.
    /// Without its own guard it would queue for the mutex its initiator holds,
    /// and both would wait for each other until a watchdog's report.
    static let inAction = TestSuite(name: "rv-nested-action", kind: .fatal,
        summary: "an action run from a spin loop starts a rendezvous: named panic", body: { t in
            let cpus = SMP.online
            guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
            let b = cpus.nth(cpus.count - 1)!
            // No reason in the closed set fits, and the test wants the panic: a FAIL.
            guard b != PerCPU.currentNumber else { t.expect("placement", false, "the suite runs on the last CPU: no other CPU to spin on"); return }
            let spinning = SharedCounters()
            RendezvousMisuseSuites.spinning = spinning
            // B spins with interrupts off, servicing rendezvous: the action runs
            // there, in thread context, not in the IPI handler.
            Thread.spawn("rv-spinner", cpu: b, {
                CPU.disableInterrupts()
                RendezvousMisuseSuites.spinning?.values[0] = 1
                let limit = TSC.now &+ TSC.ticksPerMs &* 15_000
                while TSC.now < limit { Rendezvous.servicePending(); CPU.pause() }
                CPU.enableInterrupts()
            })
            let limit = TimeBudget(milliseconds: 2000)
            while spinning.values[0] == 0 && !limit.expired { CPU.compilerBarrier(); CPU.pause() }
            Rendezvous.run(cpus: CPUMask(PerCPU.currentNumber).union(CPUMask(b)), action: { b in
                guard PerCPU.currentNumber == Int(truncatingIfNeeded: b) else { return }
                Rendezvous.runOnAll(action: { _ in })
            }, UInt64(b))
            t.expect("named-panic", false, "the nested rendezvous returned")
        })
    nonisolated(unsafe) static var spinning: SharedCounters? = nil

    /// The cpusync caller's own call of its function starts a rendezvous: not
    /// always able to finish (a held CPU may own the rendezvous mutex or hold
    /// the next ticket), so it is refused at once by name.
    static let inCPUSync = TestSuite(name: "rv-nested-cpusync", kind: .fatal,
        summary: "the cpusync caller's own call of its function starts a rendezvous: named panic", body: { t in
            let cpus = SMP.online
            guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
            CPUSync.run(mask: cpus, { caller, _ in
                guard PerCPU.currentNumber == Int(truncatingIfNeeded: caller) else { return }
                Rendezvous.runOnAll(action: { _ in })
            }, UInt64(PerCPU.currentNumber))
            t.expect("panicked", false, "the rendezvous inside the cpusync returned (no panic)")
        })
}
