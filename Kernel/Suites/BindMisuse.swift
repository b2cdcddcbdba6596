import Synchronization

// bind-misuse [fatal]: each misuse of binding, migration and passive
// references that the kernel must stop with a named panic
// (docs/binding-and-psref.md). One per boot, chosen by bind.misuse=:
//   exit-holding      a thread ends while holding a passive reference
//   double-destroy    a second destroy of a target the first is still draining
//   release-unbound   release by a thread that is neither bound nor in a critical section
//   leak              destroy of a target whose reference is never released (the watchdog)
//   migrate-critical  Scheduler.migrate(to:) inside a critical section
// Reaching the end of a case is a FAIL (the kernel let the misuse pass).

enum BindMisuse {
    static let suite = TestSuite(name: "bind-misuse", kind: .fatal,
                                 summary: "bind.misuse=exit-holding|double-destroy|release-unbound|leak|migrate-critical: each ends in a named panic",
                                 body: run)

    static let holding = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let other = cpus.nth(1) ?? 0
        let target = PsrefTarget("bind-misuse")
        let which = KernelOptions.value("bind.misuse") ?? ""
        Console.print("bind-misuse: " + which + "; a named panic follows")
        switch which {
        case "exit-holding":
            let td = Thread.spawn("psref leaker", {
                _ = Binding.bind()
                PassiveRef.acquire(Psref(), target)
            })
            td?.join()
        case "double-destroy":
            // A holder keeps the first destroy draining; the second comes in.
            holdOnOtherCPU(target, other, milliseconds: 2000)
            Thread.spawn("psref destroyer", cpu: cpus.first ?? 0, { PassiveRef.destroy(target) })
            TSC.delay(microseconds: 100_000)
            PassiveRef.destroy(target)
        case "release-unbound":
            let previous = Binding.bind()
            let ref = Psref()
            PassiveRef.acquire(ref, target)
            Binding.unbind(previous)
            PassiveRef.release(ref, target)
        case "leak":
            holdOnOtherCPU(target, other, milliseconds: 0)
            PassiveRef.destroy(target)
        case "migrate-critical":
            CriticalSection.enter()
            Scheduler.migrate(to: other == PerCPU.currentNumber ? (cpus.first ?? 0) : other)
            CriticalSection.exit()
        default:
            t.expect("case", false, "bind.misuse= names no case (exit-holding, double-destroy, release-unbound, leak, migrate-critical)")
            return
        }
        t.expect("named-panic", false) { l in l.write("the misuse '"); l.write(which); l.write("' did not panic") }
    }

    /// A bound thread on `cpu` takes a reference and holds it `milliseconds`
    /// (0: for good, asleep), then releases it; returns once it holds.
    static func holdOnOtherCPU(_ target: PsrefTarget, _ cpu: Int, milliseconds: UInt64) {
        holding.store(false, ordering: .relaxed)
        Thread.spawn("psref holder", cpu: cpu, {
            let previous = Binding.bind()
            let ref = Psref()
            PassiveRef.acquire(ref, target)
            BindMisuse.holding.store(true, ordering: .releasing)
            if milliseconds == 0 {
                while true { _ = Sleep.sleep(on: Sleep.channel(ref)) }
            }
            TSC.delay(microseconds: milliseconds * 1000)
            PassiveRef.release(ref, target)
            Binding.unbind(previous)
        })
        _ = spinUntil(milliseconds: 2000) { holding.load(ordering: .acquiring) }
    }
}
