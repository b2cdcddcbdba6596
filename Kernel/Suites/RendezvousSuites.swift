import Synchronization

// rendezvous, rendezvous-preempt: the SMP rendezvous of Kern/SMP/Rendezvous.swift
// (docs/rendezvous.md, C1-C4).

/// One initiator's rendezvous, passed to the functions as their argument. It
/// lives in the initiator's frame until Rendezvous.run has returned, which is
/// after every participant's last access.
final class RendezvousRound {
    let map: UInt64
    let n: UInt32
    let initiator: Int           // its own part is neither an IPI's nor a spin loop's win
    let setupRuns: Bool          // setup is .run: its barrier must hold before any action
    let teardownRuns: Bool       // teardown is .run (with an action): every action finished before it
    let setups = Atomic<UInt32>(0)
    let actions = Atomic<UInt32>(0)
    init(map: CPUMask, setupRuns: Bool, teardownRuns: Bool) {
        self.map = map.bits; n = UInt32(map.count); initiator = PerCPU.currentNumber; self.setupRuns = setupRuns; self.teardownRuns = teardownRuns
    }
    var raw: UInt64 { UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque())) }
    static func from(_ raw: UInt64) -> RendezvousRound {
        Unmanaged<RendezvousRound>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
    }
}

/// C4 under load: every online CPU starts rendezvous over random CPU sets with
/// every mix of setup/teardown (function, barrier only, no barrier), interleaved
/// with cpusyncs and IPI-queue traffic. Who writes what: ran[c], lastGeneration[c]
/// by CPU c in the action; expected[i][c] by initiator i.
enum RendezvousSuite {
    static let suite = TestSuite(name: "rendezvous", kind: .normal,
                                 summary: "C4: each CPU runs each action exactly once; mixed barriers, concurrent initiators, cpusyncs, IPI traffic",
                                 torture: true, body: run)

    enum Err: Int, CaseIterable {
        case notInMap = 0, generation, setupBarrier, teardownBarrier
        /// The check id and invariant of each counter's record.
        var id: StaticString {
            switch self {
            case .notInMap: return "not-in-map"
            case .generation: return "generation"
            case .setupBarrier: return "setup-barrier"
            case .teardownBarrier: return "teardown-barrier"
            }
        }
        var inv: StaticString { self == .generation ? "C4" : "-" }
        var label: StaticString {
            switch self {
            case .notInMap: return "action on a CPU outside the set"
            case .generation: return "action run twice or out of order (C4)"
            case .setupBarrier: return "action before every setup finished"
            case .teardownBarrier: return "teardown before every action finished"
            }
        }
    }
    nonisolated(unsafe) static var ran: UnsafeMutablePointer<UInt64>? = nil
    /// Per CPU: actions run from the rendezvous IPI handler / from a spin loop
    /// of a participant (not the initiator's own part) that found the pending
    /// bit before its IPI did: the race for the bit (own traffic).
    nonisolated(unsafe) static var viaIPI: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var viaSpin: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var lastGeneration: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var errors: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static let lock = SpinLock("rendezvous suite")
    nonisolated(unsafe) static var underLock: UInt64 = 0

    /// Both sides of the race for a pending bit seen (hints: other CPUs'
    /// counters, read without ordering).
    static func raceSeen(_ cpus: CPUMask, _ lostBefore: UInt64) -> Bool {
        guard cpus.count >= 2 else { return true }
        var spin: UInt64 = 0
        cpus.forEach { spin &+= viaSpin![$0] }
        return spin > 0 && Rendezvous.ipiFoundBitTaken.load(ordering: .relaxed) &- lostBefore > 0
    }

    static func error(_ e: Err) { errors![e.rawValue].wrappingAdd(1, ordering: .relaxed) }

    static let setupFn: RendezvousFunction = { raw in _ = RendezvousRound.from(raw).setups.wrappingAdd(1, ordering: .acquiringAndReleasing) }
    static let actionFn: RendezvousFunction = { raw in
        let r = RendezvousRound.from(raw)
        let me = PerCPU.currentNumber
        if r.map & CPUMask.bit(me) == 0 { RendezvousSuite.error(.notInMap) }
        if r.setupRuns && r.setups.load(ordering: .acquiring) != r.n { RendezvousSuite.error(.setupBarrier) }
        let g = Rendezvous.generation.load(ordering: .relaxed)
        if g <= RendezvousSuite.lastGeneration![me] {
            // C4 broken: stop at once, before the corrupted phase counters can
            // turn it into a deadlock (a named panic the tests look for).
            panic("C4: a rendezvous action ran twice on one CPU") { l in
                l.write("CPU "); l.dec(me); l.write(", generation "); l.dec(g)
                l.write(" after "); l.dec(RendezvousSuite.lastGeneration![me])
            }
        }
        RendezvousSuite.lastGeneration![me] = g
        RendezvousSuite.lock.lock()                       // actions may take spinlocks (briefly)
        RendezvousSuite.underLock &+= 1
        RendezvousSuite.lock.unlock()
        RendezvousSuite.ran![me] &+= 1
        if PerCPU.inInterrupt { RendezvousSuite.viaIPI![me] &+= 1 } else if me != r.initiator { RendezvousSuite.viaSpin![me] &+= 1 }
        r.actions.wrappingAdd(1, ordering: .acquiringAndReleasing)
    }
    static let teardownFn: RendezvousFunction = { raw in
        let r = RendezvousRound.from(raw)
        if r.teardownRuns && r.actions.load(ordering: .acquiring) != r.n { RendezvousSuite.error(.teardownBarrier) }
    }

    static func step(_ k: UInt64, _ f: RendezvousFunction) -> Rendezvous.Step {
        switch k % 3 { case 0: return .noBarrier; case 1: return .barrierOnly; default: return .run(f) }
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let n = PerCPU.count
        ran = .allocate(capacity: n); ran!.initialize(repeating: 0, count: n)
        viaIPI = .allocate(capacity: n); viaIPI!.initialize(repeating: 0, count: n)
        viaSpin = .allocate(capacity: n); viaSpin!.initialize(repeating: 0, count: n)
        if BugKnobs.rendezvousDoubleClaim { t.note { $0.write("negative control: participants never take their pending bit") } }
        if BugKnobs.rendezvousRacyClaim { t.note { $0.write("negative control: participants claim their pending bit with a plain load and store") } }
        let lostBefore = Rendezvous.ipiFoundBitTaken.load(ordering: .relaxed)
        lastGeneration = .allocate(capacity: n)
        lastGeneration!.initialize(repeating: Rendezvous.generation.load(ordering: .relaxed), count: n)
        errors = .allocate(capacity: Err.allCases.count)
        for i in 0..<Err.allCases.count { (errors! + i).initialize(to: Atomic(0)) }
        underLock = 0
        let expected = PairTable(n)                       // [initiator][cpu]
        let done = CPUCounters(kinds: 4)                  // by CPU c's initiator: [0, c] rendezvous, [1, c] cpusyncs, [2, c] IPI messages, [3, c] mutex waits
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        // With many CPUs on few host cores one rendezvous can take a good part of
        // a second: an initiator that has not completed one yet goes on (up to
        // 15x the time), so "every initiator completed" does not depend on speed.
        // Likewise until the race for a pending bit was seen (a participant's
        // spin loop won one and its IPI then found it taken): at -smp 2 only
        // interrupts-off waits can win it, and they are rare.
        let limit = end &+ TSC.ticksPerMs &* 14_000 &* seconds
        SuiteThreads.runOnEveryCPU("rendezvous") {
            let me = PerCPU.currentNumber
            var rng = XorShift(seed: UInt64(me) &+ 99)
            repeat {
                let r = rng.next()
                if r % 10 < 7 {
                    var map = CPUMask(bits: r >> 8 & cpus.bits)
                    if map.isEmpty { map = cpus }
                    let setup = step(r >> 20, setupFn), teardown = step(r >> 24, teardownFn)
                    var setupRuns = false, teardownRuns = false
                    if case .run = setup { setupRuns = true }
                    if case .run = teardown { teardownRuns = true }
                    let withAction = r >> 28 & 15 != 0             // one in 16 has no action
                    let round = RendezvousRound(map: map, setupRuns: setupRuns, teardownRuns: teardownRuns && withAction)
                    done[3, me] &+= Rendezvous.run(cpus: map, setup: setup, action: withAction ? actionFn : nil,
                                                            teardown: teardown, round.raw)
                    withExtendedLifetime(round) {}
                    if withAction { map.forEach { expected[me, $0] &+= 1 } }
                    done[0, me] &+= 1
                } else if r % 10 < 8 {
                    CPUSync.run(mask: cpus, { _, _ in CPU.pause() })
                    done[1, me] &+= 1
                } else {
                    var others = cpus
                    others.remove(me)
                    if let d = others.nth(rng.below(max(1, others.count))), let tk = IPIQueue.send(to: d, { _, _ in }) {
                        IPIQueue.wait(tk)
                        done[2, me] &+= 1
                    }
                }
            } while TSC.now < end || ((done[0, me] == 0 || !RendezvousSuite.raceSeen(cpus, lostBefore)) && TSC.now < limit)
        }
        var inexact: UInt64 = 0, total: UInt64 = 0, completed: UInt64 = 0
        cpus.forEach { c in
            var want: UInt64 = 0
            cpus.forEach { want &+= expected[$0, c] }
            if ran![c] != want { inexact &+= 1 }
            total &+= done[0, c]
            if done[0, c] != 0 { completed &+= 1 }
        }
        var errorTotal: UInt64 = 0
        for e in Err.allCases { errorTotal &+= errors![e.rawValue].load(ordering: .relaxed) }
        let syncs = done.sum(1, over: cpus), messages = done.sum(2, over: cpus), contended = done.sum(3, over: cpus)
        var ipi: UInt64 = 0, spin: UInt64 = 0
        cpus.forEach { ipi &+= viaIPI![$0]; spin &+= viaSpin![$0] }
        let lost = Rendezvous.ipiFoundBitTaken.load(ordering: .relaxed) &- lostBefore
        Console.line { l in
            l.write("rendezvous: "); l.dec(total); l.write(" rendezvous from "); l.dec(cpus.count); l.write(" CPUs, ")
            l.dec(syncs); l.write(" cpusyncs, "); l.dec(messages); l.write(" waited IPI messages; own mutex waits ")
            l.dec(contended); l.write("; actions run from the IPI "); l.dec(ipi); l.write(", from a participant's spin loop "); l.dec(spin)
            l.write("; IPIs that found their bit taken "); l.dec(lost)
            l.write(errorTotal > 0 ? "; !!! errors " : "; errors "); l.dec(errorTotal)
        }
        t.expect("initiators", completed, .equals(UInt64(cpus.count))) { l in
            l.write("every CPU's initiator completed rendezvous ("); l.dec(total); l.write(" in all; no deadlock)")
        }
        // The race for the pending bit is real only when both contenders came:
        // a participant's spin loop (not the initiator's own part, which no IPI
        // contends for) took the bit, and its IPI then arrived to find it gone.
        // The value is the smallest of the four counts.
        if cpus.count < 2 {
            t.skip("window", reason: .needs2CPUs, "the race for a pending bit needs a participant besides the initiator")
        } else { t.expect("window", inv: "C4", min(min(contended, ipi), min(spin, lost)), .above(0)) { l in
            l.write("the window was hit: initiators met at the mutex "); l.dec(contended); l.write(" times; the IPI won the pending bit ")
            l.dec(ipi); l.write(" times, a participant's spin loop "); l.dec(spin); l.write(" times, and "); l.dec(lost)
            l.write(" IPIs arrived to find their bit already taken")
        } }
        // The value: CPUs whose action count differs from what they were asked.
        t.expect("exactly-once", inv: "C4", inexact, .equals(0)) { l in
            l.write("C4: every CPU ran each action it was asked to exactly once (")
            cpus.forEach { l.dec(ran![$0]); l.write(" ") }
            l.write("actions)")
        }
        for e in Err.allCases {
            let c = errors![e.rawValue].load(ordering: .relaxed)
            t.expect(e.id, inv: e.inv, c, .equals(0)) { l in l.write("no "); l.write(e.label); l.write(" ("); l.dec(c); l.write(")") }
        }
    }
}

/// The seed-002 scenario: a thread on CPU A loops critical_enter, wakes a
/// higher-priority thread on A (owepreempt = 1), critical_exit with the window
/// (critnest 0, owepreempt 1) held open; every other CPU fires rendezvous whose
/// action takes and releases a spinlock. An action that lands in the window must
/// not switch inside the IPI handler (C1, asserted by the switch path) and must
/// not change owepreempt (C2, asserted by the action routine); the suite counts
/// the actions that landed there (the window: must be > 0). With
/// bug.rendezvous_plain_critical=1 the first such action panics with C1.
enum RendezvousPreemptSuite {
    static let suite = TestSuite(name: "rendezvous-preempt", kind: .normal,
                                 summary: "seed 002: rendezvous actions with spinlocks land in critical_exit's window: C1, C2",
                                 torture: true, body: run)

    nonisolated(unsafe) static var windowThread: Thread? = nil
    static let inWindow = Atomic<UInt64>(0)
    static let onA = Atomic<UInt64>(0)
    static let stop = Atomic<Bool>(false)
    static let lock = SpinLock("rendezvous-preempt")
    nonisolated(unsafe) static var cpuA = 0
    nonisolated(unsafe) static var takesSpinlock = true

    static let action: RendezvousFunction = { _ in
        // In the window means: the interrupted thread is the window thread, its
        // own critnest was 0 (the trap's raw section and the action's make it
        // 2; the controls exempt the vector from the trap's section: under
        // bug.rendezvous_plain_critical the action's section alone makes it 1,
        // under bug.rendezvous_no_critical it stays 0) and it owes a preemption.
        if PerCPU.currentNumber == RendezvousPreemptSuite.cpuA {
            RendezvousPreemptSuite.onA.wrappingAdd(1, ordering: .relaxed)
            let inWindow = BugKnobs.rendezvousNoCritical ? 0 : BugKnobs.rendezvousPlainCritical ? 1 : 2
            if let w = RendezvousPreemptSuite.windowThread, Thread.currentIfAny === w, w.critnest == inWindow, w.owepreempt {
                RendezvousPreemptSuite.inWindow.wrappingAdd(1, ordering: .relaxed)
                KTrace.freezeAtWindow()                 // ktrace=1: keep the first window with an action in it
            }
        }
        // The seed-002 path: the spinlock's exit is a critical_exit inside the
        // IPI handler (rendezvous.action_spinlock=0 leaves it out, to show that
        // the no-critical control trips on this path and nowhere else).
        if RendezvousPreemptSuite.takesSpinlock {
            RendezvousPreemptSuite.lock.lock()
            RendezvousPreemptSuite.lock.unlock()
        }
        // Negative control for C2: an action that makes a thread runnable.
        if BugKnobs.rendezvousActionWakes && PerCPU.currentNumber == RendezvousPreemptSuite.cpuA {
            Sleep.wakeup(RendezvousPreemptSuite.chan)
        }
    }
    static let chan: UInt = 0x5EED_0002

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        if BugKnobs.rendezvousPlainCritical { t.note { $0.write("negative control: ordinary critical section around the actions") } }
        if BugKnobs.rendezvousNoCritical { t.note { $0.write("negative control: no critical section around the actions") } }
        takesSpinlock = KernelOptions.int("rendezvous.action_spinlock", default: 1) != 0
        if !takesSpinlock { t.note { $0.write("the actions take no spinlock (rendezvous.action_spinlock=0)") } }
        cpuA = cpus.nth(cpus.count - 1)!
        let window = UInt64(max(0, KernelOptions.int("rendezvous.window_cycles", default: 20_000)))
        inWindow.store(0, ordering: .relaxed); onA.store(0, ordering: .relaxed); stop.store(false, ordering: .relaxed)
        let c = SharedCounters()          // [0] loops on A, [1] C3 violations, [2] the last window (cycles)
        let started = SharedCounters()    // [cpu] rendezvous started by that CPU's initiator
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        // Until the window was hit at least once (up to 15x the time): on a busy
        // host a vCPU may be descheduled for whole windows, and the count must be
        // > 0 for the run to prove anything (and for its control to trip).
        let limit = end &+ TSC.ticksPerMs &* 14_000 &* seconds
        func goesOn() -> Bool {
            let now = TSC.now
            return now < end || (RendezvousPreemptSuite.inWindow.load(ordering: .relaxed) == 0 && now < limit)
        }
        guard let high = Thread.spawn("high", priority: Thread.highPriority, cpu: cpuA, {
            while !RendezvousPreemptSuite.stop.load(ordering: .acquiring) { _ = Sleep.sleep(on: chan) }
        }), let a = Thread.create("window", priority: Thread.normalPriority, cpu: cpuA, {
            let me = Thread.current
            while goesOn() {
                let t0 = TSC.now
                CriticalSection.enter()
                Sleep.wakeup(chan)                      // high is runnable here: owepreempt = 1
                CriticalSection.exit()                  // the window, held open for criticalWindowCycles
                if me.critnest != 0 || me.owepreempt { c.values[1] &+= 1 }
                c.values[0] &+= 1
                // Keep the window about three quarters of the loop, however slow
                // the rest is (the switch to `high` and back costs ~1000x more
                // under the development machine's nested KVM than under TCG).
                let rest = (TSC.now &- t0) &- min(TSC.now &- t0, me.criticalWindowCycles)
                me.criticalWindowCycles = min(max(window, rest &* 3), TSC.ticksPerMs &* 20)
            }
            c.values[2] = me.criticalWindowCycles
            me.criticalWindowCycles = 0
        }) else { t.expect("spawn", false, "create the window threads"); return }
        a.criticalWindowCycles = window
        windowThread = a
        Scheduler.schedule(a)
        var initiators: [Thread] = []
        cpus.forEach { cpu in
            guard cpu != cpuA else { return }
            if let td = Thread.spawn("rv-initiator", cpu: cpu, {
                var k: UInt64 = 0
                while goesOn() {
                    k &+= 1
                    let teardown: Rendezvous.Step = k % 3 == 0 ? .noBarrier : k % 3 == 1 ? .barrierOnly : .run({ _ in })
                    Rendezvous.runOnAll(setup: k & 4 == 0 ? .noBarrier : .barrierOnly, action: action, teardown: teardown)
                    started.values[cpu] &+= 1
                }
            }) { initiators.append(td) }
        }
        for td in initiators { td.join() }
        a.join()
        stop.store(true, ordering: .releasing)
        Sleep.wakeup(chan)
        high.join()
        windowThread = nil
        KTrace.dumpFrozenWindow("rendezvous-preempt")
        var total: UInt64 = 0
        cpus.forEach { total &+= started.values[$0] }
        let (hits, actionsOnA, loops, c3) = (inWindow.load(ordering: .relaxed), onA.load(ordering: .relaxed), c.values[0], c.values[1])
        Console.line { l in
            l.write("rendezvous-preempt: "); l.dec(total); l.write(" rendezvous, "); l.dec(actionsOnA); l.write(" actions on CPU ")
            l.dec(cpuA); l.write(", "); l.dec(hits); l.write(" of them inside critical_exit's window ("); l.dec(loops)
            l.write(" windows of "); l.dec(window); l.write(" to "); l.dec(c.values[2]); l.write(" cycles)"); l.write(c3 > 0 ? ", !!! C3 violations " : ", C3 violations "); l.dec(c3)
        }
        // Only the other CPUs initiate: an action on A implies a rendezvous.
        t.expect("reached", actionsOnA, .above(0)) { l in
            l.dec(total); l.write(" rendezvous from the other CPUs reached CPU "); l.dec(cpuA); l.write(" ("); l.dec(actionsOnA)
            l.write(" actions; C1 and C2 are asserted by the switch path and the action routine)")
        }
        t.expect("window", inv: "C1", hits, .above(0)) { l in l.write("the window was hit: "); l.dec(hits); l.write(" actions ran while CPU A was inside critical_exit's window") }
        t.expect("c3", inv: "C3", c3, .equals(0)) { l in l.write("C3 held after "); l.dec(loops); l.write(" windows ("); l.dec(c3); l.write(" violations)") }
    }
}
