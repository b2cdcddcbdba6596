import Synchronization

// rendezvous-handoff: the rendezvous mutex's unlock wakes its halted waiters
// before the unlocking thread can be switched out (docs/rendezvous.md,
// "Serialisation"). Run with tick=0: a tick would end a forgotten waiter's HLT
// within 10 ms and hide the bug.
//
// CPU A's initiator holds the mutex (its action spins, interrupts off) until
// CPU K's thread has woken a high-priority spinner on A (the wake-up's IPI
// waits in A's local APIC) and is halted in the mutex queue. A's unlock then
// turns interrupts back on, the IPI makes the spinner runnable and A switches
// to it on the way out. The spinner spins until K got the mutex or `boundMs`
// passed: if the waiters are woken only after the section closed
// (bug.rendezvous_late_wake=1), nobody wakes K while the spinner runs.
//
// Who writes what: `holding`, `setupFailed` by A's action; `acquired` by K's
// action; `spinStart`/`spinEnd` by the spinner.

enum RendezvousHandoffSuite {
    static let suite = TestSuite(name: "rendezvous-handoff", kind: .normal,
                                 summary: "the rendezvous mutex wakes its halted next waiter before its unlock can switch away (tick=0)",
                                 torture: true, body: run)

    static let boundMs: UInt64 = 1000
    static let chan: UInt = 0x5EED_0A0F
    static let holding = Atomic<Bool>(false)
    static let setupFailed = Atomic<Bool>(false)
    static let acquired = Atomic<UInt64>(0)      // TSC when K's rendezvous held the mutex
    static let spinStart = Atomic<UInt64>(0)
    static let spinEnd = Atomic<UInt64>(0)
    nonisolated(unsafe) static var cpuK = 0

    /// A's action (interrupts off, mutex held): wait until K is halted in the
    /// mutex queue. Bounded: a setup that never happens is a FAIL, not a hang.
    static let holdAction: RendezvousFunction = { _ in
        RendezvousHandoffSuite.holding.store(true, ordering: .sequentiallyConsistent)
        let bound = TSC.now &+ TSC.ticksPerMs &* 2000
        while !(Rendezvous.mutexWaiters >= 1 && HaltingWait.isHalted(RendezvousHandoffSuite.cpuK, channel: Rendezvous.mutexChannel)) {
            if TSC.now >= bound { RendezvousHandoffSuite.setupFailed.store(true, ordering: .relaxed); return }
            CPU.pause()
        }
        TSC.spin(cycles: TSC.ticksPerMs / 10)     // K is inside its HLT by now
        // rendezvous.handoff_flip=1: the waits stop halting while K is halted
        // (as the benchmarks switch them at run time); K must still be woken.
        if RendezvousHandoffSuite.flip { HaltingWait.halting[WaitKind.rendezvousMutex.rawValue] = false }
    }
    nonisolated(unsafe) static var flip = false
    static let markAcquired: RendezvousFunction = { _ in
        RendezvousHandoffSuite.acquired.store(TSC.now, ordering: .releasing)
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        let cpuA = cpus.nth(cpus.count - 1)!
        cpuK = cpus.nth(cpus.count - 2)!
        if Clock.enabled { t.note { $0.write("the periodic tick is on: it ends a forgotten waiter's halt within a tick (use tick=0)") } }
        flip = KernelOptions.int("rendezvous.handoff_flip", default: 0) != 0
        if flip { t.note { $0.write("the mutex waits stop halting while the next waiter is halted (rendezvous.handoff_flip)") } }
        if BugKnobs.rendezvousLateWake { t.note { $0.write("negative control: the mutex's waiters are woken after its unlock's section closed") } }
        let saved = HaltingWait.halting[WaitKind.rendezvousMutex.rawValue]
        HaltingWait.halting[WaitKind.rendezvousMutex.rawValue] = true
        defer { HaltingWait.halting[WaitKind.rendezvousMutex.rawValue] = saved }
        holding.store(false, ordering: .relaxed); setupFailed.store(false, ordering: .relaxed)
        acquired.store(0, ordering: .relaxed); spinStart.store(0, ordering: .relaxed); spinEnd.store(0, ordering: .relaxed)
        let bound = TSC.ticksPerMs &* boundMs
        // The spinner runs first on A (higher priority) and sleeps; once woken it
        // keeps A busy until K got the mutex or the bound passed.
        guard let high = Thread.spawn("handoff-spinner", priority: Thread.highPriority, cpu: cpuA, {
            _ = Sleep.sleep(on: RendezvousHandoffSuite.chan)
            let t0 = TSC.now
            RendezvousHandoffSuite.spinStart.store(t0, ordering: .relaxed)
            while RendezvousHandoffSuite.acquired.load(ordering: .acquiring) == 0 && TSC.now &- t0 < bound { CPU.pause() }
            RendezvousHandoffSuite.spinEnd.store(TSC.now, ordering: .relaxed)
            // A waiter nobody woke (tick=0) would halt for good: rescue it, late.
            if RendezvousHandoffSuite.acquired.load(ordering: .acquiring) == 0 {
                LocalAPIC.sendIPI(to: PerCPU.cpus[RendezvousHandoffSuite.cpuK].apicID, vector: UInt8(Vectors.waitWakeup))
            }
        }) else { t.expect("spawn", false, "spawn the spinner"); return }
        let aMask = CPUMask(bits: CPUMask.bit(cpuA)), kMask = CPUMask(bits: CPUMask.bit(cpuK))
        guard let holder = Thread.spawn("handoff-holder", cpu: cpuA, {
            Rendezvous.run(cpus: aMask, action: RendezvousHandoffSuite.holdAction)
        }), let waiter = Thread.spawn("handoff-waiter", cpu: cpuK, {
            let limit = TimeBudget(milliseconds: 2000)
            while !RendezvousHandoffSuite.holding.load(ordering: .acquiring) && !limit.expired { CPU.pause() }
            while high.state != .sleeping && !limit.expired { CPU.pause() }
            Sleep.wakeup(RendezvousHandoffSuite.chan)   // its IPI waits on A (interrupts off there)
            Rendezvous.run(cpus: kMask, action: RendezvousHandoffSuite.markAcquired)
        }) else { t.expect("spawn", false, "spawn the holder and the waiter"); return }
        holder.join()
        waiter.join()
        high.join()
        let (s0, s1, got) = (spinStart.load(ordering: .relaxed), spinEnd.load(ordering: .relaxed), acquired.load(ordering: .acquiring))
        let inTime = got != 0 && s0 != 0 && got <= s1
        Console.line { l in
            l.write("rendezvous-handoff: CPU "); l.dec(cpuA); l.write(" unlocked, switched to a busy spinner; CPU "); l.dec(cpuK)
            l.write(inTime ? " got the mutex after " : " !!! got the mutex only after ")
            l.dec(TSC.nanoseconds(got &- min(got, s0)) / 1000); l.write(" us (spinner bound "); l.dec(boundMs)
            l.write(" ms, tick "); l.write(Clock.enabled ? "on)" : "off)")
        }
        t.expect("setup", !setupFailed.load(ordering: .relaxed) && s0 != 0) { l in
            l.write("the window was set up: CPU "); l.dec(cpuK); l.write(" halted in the mutex queue and the unlocking CPU switched to the spinner")
        }
        // W1 for the mutex's queue: the unlock's wake-up reached the halted waiter.
        t.expect("handoff", inv: "W1", inTime) { l in
            l.write("the next waiter got the mutex while the unlocking CPU ran a busy higher-priority thread")
        }
    }
}
