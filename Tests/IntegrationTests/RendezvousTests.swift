import XCTest

/// SMP rendezvous (docs/rendezvous.md): C4 under load, the seed-002 window, the
/// TLB shootdown it carries, and the negative control that trips C1.
final class RendezvousTests: QEMUTestCase {
    static let suites = "run=rendezvous,rendezvous-preempt,tlb-shootdown"

    private func assertRendezvousSuites(_ r: QEMUResult, file: StaticString = #filePath, line: UInt = #line) {
        assertPassed(r, file: file, line: line)
        XCTAssertEqual(r.lines.filter { $0 == "End of test: SUCCESS" }.count, 3, "three torture suites", file: file, line: line)
        assertVerdict(r, "rendezvous", file: file, line: line)
        assertVerdict(r, "rendezvous-preempt", file: file, line: line)
        assertPass(r, "rendezvous", "initiators", atLeast: UInt64(r.run.smp), file: file, line: line)
        assertPass(r, "rendezvous", "exactly-once", atMost: 0, file: file, line: line)
        assertPass(r, "rendezvous", "window", atLeast: 1, file: file, line: line)
        for id in ["not-in-map", "generation", "setup-barrier", "teardown-barrier"] {
            assertPass(r, "rendezvous", id, atMost: 0, file: file, line: line)
        }
        assertPass(r, "rendezvous-preempt", "reached", atLeast: 1, file: file, line: line)
        assertPass(r, "rendezvous-preempt", "window", atLeast: 1, file: file, line: line)
        assertPass(r, "rendezvous-preempt", "c3", atMost: 0, file: file, line: line)
        XCTAssertTrue(r.passes.contains { $0.hasPrefix("tlb-shootdown: after unmap no CPU could read the page (0 ") },
                      file: file, line: line)
        print("[rendezvous, \(r.run.accel), -smp \(r.run.smp)] "
              + (r.lines.first { $0.hasPrefix("rendezvous-preempt: ") && $0.contains(" of them inside") } ?? ""))
    }

    func testRendezvousSuitesPassUnderTCGWith2And4And8CPUs() throws {
        for smp in [2, 4, 8] {
            let r = try boot(QEMURun(smp: smp, accel: .tcg, cmdline: RendezvousTests.suites, timeout: 180))
            assertRendezvousSuites(r)
        }
    }

    func testRendezvousSuitesPassUnderKVM() throws {
        try requireKVM()
        let r = try boot(QEMURun(smp: 4, accel: .kvm, cmdline: RendezvousTests.suites, timeout: 240))
        assertRendezvousSuites(r)
    }

    /// Second negative control: an ordinary critical section around the actions
    /// (the alternative FreeBSD rejected). The first action that lands in the
    /// window switches inside the IPI handler, at the section's own exit.
    func testPlainCriticalSectionInTheActionTripsC1() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-preempt bug.rendezvous_plain_critical=1", timeout: 120))
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.rendezvous_plain_critical puts a known bug back on purpose"))
        assertPanic(r, "C1: context switch in interrupt context")
    }

    /// The owner's backtrace (the first in the dump): its frame lines, innermost first.
    private func ownerBacktrace(_ r: QEMUResult) -> [String] {
        guard let i = r.lines.firstIndex(where: { $0.hasPrefix("  backtrace (rbp chain") }) else { return [] }
        return Array(r.lines[(i + 1)...].prefix { $0.hasPrefix("    #") })
    }

    /// Negative control, the 2011 code (seed 002): no critical section around
    /// the actions. An action landing in critical_exit's window switches in its
    /// own spinlock's exit, inside the rendezvous IPI handler: the panic's
    /// backtrace runs from the switch through the spinlock exit, the action and
    /// the participant into the trap entry. The same control with actions that
    /// take no spinlock hits the window and does not trip: the spinlock is the
    /// path the suite exercises.
    func testNoCriticalSectionAroundTheActionSwitchesInItsSpinlockExit() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-preempt bug.rendezvous_no_critical=1", timeout: 120))
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.rendezvous_no_critical puts a known bug back on purpose"))
        assertPanic(r, "C1: context switch in interrupt context")
        let trace = ownerBacktrace(r)
        func frame(_ name: String) -> Int? { trace.firstIndex { $0.contains(name) } }
        let order = ["Scheduler.preemptOwed", "SpinlockSection.exit", "RendezvousPreemptSuite.action",
                     "Rendezvous.participate", "trap_common"].map(frame)
        XCTAssertFalse(order.contains(nil), "the switch, the spinlock exit, the action, the participant and the trap entry in the owner's backtrace: \(trace)")
        let found = order.compactMap { $0 }
        XCTAssertEqual(found, found.sorted(), "innermost first: \(trace)")

        let quiet = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-preempt bug.rendezvous_no_critical=1 rendezvous.action_spinlock=0", timeout: 120))
        assertPassed(quiet)
        XCTAssertTrue(quiet.hasLine("  rendezvous-preempt: the actions take no spinlock (rendezvous.action_spinlock=0)"))
        assertPass(quiet, "rendezvous-preempt", "window", atLeast: 1)      // actions inside the window, without a spinlock: no switch
    }

    /// Negative control for C4: a participant that never takes its pending bit
    /// runs its part again from a spin loop; the entry count (or the action's
    /// own check) panics.
    func testDoubleClaimTripsC4() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous bug.rendezvous_double_claim=1", timeout: 120))
        assertPanic(r, "C4: ")
    }

    /// Negative control for the race for the pending bit: a claim by a plain
    /// load and store instead of one atomic test-and-clear. Another CPU's
    /// clear in between is undone and that CPU enters a second time.
    func testRacyClaimTripsC4() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous bug.rendezvous_racy_claim=1", timeout: 120))
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.rendezvous_racy_claim puts a known bug back on purpose"))
        assertPanic(r, "C4: ")
    }

    /// Negative control for C2: an action that wakes a thread changes owepreempt.
    func testActionThatWakesAThreadTripsC2() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-preempt bug.rendezvous_action_wakes=1", timeout: 120))
        assertPanic(r, "C2: a rendezvous action changed owepreempt")
    }

    /// The rendezvous mutex's unlock wakes its halted next waiter before the
    /// unlocking thread can switch to a busy higher-priority thread (tick=0:
    /// nothing else would end the waiter's HLT).
    func testUnlockWakesTheNextWaiterBeforeItCanSwitch() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-handoff tick=0", timeout: 60))
        assertPassed(r)
        assertPass(r, "rendezvous-handoff", "setup")
        assertPass(r, "rendezvous-handoff", "handoff")
        assertVerdict(r, "rendezvous-handoff")
    }

    /// Negative control: the waiters are woken only after the unlock's section
    /// closed; the unlocking CPU switched to the spinner first, and the next
    /// waiter stays halted until the spinner's bound ends.
    func testLateWakeControlStrandsTheNextWaiter() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rendezvous-handoff tick=0 bug.rendezvous_late_wake=1", timeout: 60))
        XCTAssertEqual(r.status, 3, "the suite must fail: \(r.statusDescription)")
        assertPass(r, "rendezvous-handoff", "setup")
        assertFail(r, "rendezvous-handoff", "handoff")
        XCTAssertTrue(r.hasLine(containing: "!!! got the mutex only after "))
        assertVerdict(r, "rendezvous-handoff", success: false)
    }

    /// The mutex waits stop halting (as the benchmarks switch them at run
    /// time) while the next waiter is halted: the unlock still wakes it. With
    /// the wake-up gated on the switch (the control) it stays halted until the
    /// suite's rescue after the spinner's bound.
    func testUnlockWakesAWaiterThatHaltedBeforeTheWaitsStoppedHalting() throws {
        let cmdline = "run=rendezvous-handoff tick=0 rendezvous.handoff_flip=1"
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: cmdline, timeout: 60))
        assertPassed(r)
        XCTAssertTrue(r.hasLine("  rendezvous-handoff: the mutex waits stop halting while the next waiter is halted (rendezvous.handoff_flip)"))
        assertPass(r, "rendezvous-handoff", "handoff")
        let c = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: cmdline + " bug.rendezvous_gated_wake=1", timeout: 60))
        XCTAssertEqual(c.status, 3, "the suite must fail: \(c.statusDescription)")
        assertFail(c, "rendezvous-handoff", "handoff")
        XCTAssertTrue(c.hasLine(containing: "!!! got the mutex only after "))
    }

    /// A rendezvous started where it cannot always finish (an action run from
    /// a spin loop, the cpusync caller's own function) ends in a named panic
    /// at once, not in a watchdog's report 10 s later.
    func testNestedRendezvousPanicsAtOnce() throws {
        let a = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rv-nested-action", timeout: 60))
        assertPanic(a, "rendezvous started from inside a rendezvous setup, action or teardown")
        let c = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=rv-nested-cpusync", timeout: 60))
        assertPanic(c, "rendezvous started from inside a cpusync")
    }

    /// A rendezvous IPI the local APIC refuses is sent again: with the first
    /// five sends refused (test hook) every shootdown still completes. (The
    /// other CPUs idle there, so nothing but the IPI brings them; under the
    /// rendezvous torture their spin loops would hide a lost one.) Also: the
    /// rendezvous vector runs inside the trap's raw section (C2 check in the
    /// handler).
    func testRefusedRendezvousIPIsAreSentAgain() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=tlb-shootdown rendezvous.refuse_sends=5", timeout: 60))
        assertPassed(r)
        XCTAssertTrue(r.passes.contains { $0.hasPrefix("tlb-shootdown: after unmap no CPU could read the page (0 ") })
    }

    /// With one CPU the rendezvous runs locally (before-SMP path) and still
    /// counts every action exactly once.
    func testRendezvousOnOneCPURunsLocally() throws {
        let r = try boot(QEMURun(smp: 1, accel: .tcg, cmdline: "run=rendezvous"))
        assertPassed(r)
        assertPass(r, "rendezvous", "exactly-once", atMost: 0)
        assertPass(r, "rendezvous", "initiators", atLeast: 1)
        assertRecord(r, "rendezvous", "window", result: "skip", reason: "needs-2-cpus")
        assertVerdict(r, "rendezvous")
    }
}
