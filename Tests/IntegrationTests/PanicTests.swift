import XCTest

/// Panic that stops every other CPU with NMIs (docs/panic.md, E1-E6): each suite
/// ends in a dump, and the test reads it.
final class PanicTests: QEMUTestCase {
    /// Frame lines of every backtrace: "    #N  0x...  name + 0x..".
    private func backtraces(_ r: QEMUResult) -> [[String]] {
        var all: [[String]] = []
        for (i, l) in r.lines.enumerated() where l.hasPrefix("  backtrace (rbp chain") {
            all.append(Array(r.lines[(i + 1)...].prefix { $0.hasPrefix("    #") }))
        }
        return all
    }

    /// The dump of a panic owned by `owner` with `cpus` CPUs online: every other
    /// CPU NMI-stopped with a report of its own, frozen heartbeats (E5), a
    /// demangled Swift name in every backtrace, and the exit.
    private func assertDump(_ r: QEMUResult, _ message: String, owner: Int, cpus: Int,
                            file: StaticString = #filePath, line: UInt = #line) {
        assertPanic(r, message, file: file, line: line)
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("panic: " + message) }.count, 1, "one panic report", file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: 1 owner (E1), ") }, "E1: the kernel counted one claim",
                      file: file, line: line)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("  owner: CPU \(owner),") }, "owner CPU \(owner)", file: file, line: line)
        let others = (0..<cpus).filter { $0 != owner }
        let list = others.map(String.init).joined(separator: ", ")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("stop: NMI to CPUs \(list); all \(others.count) stopped in ") },
                      "E2: every other CPU NMI-stopped", file: file, line: line)
        for c in others {
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("CPU \(c): stopped at rip 0x") }, "CPU \(c)'s own report", file: file, line: line)
        }
        let beats = r.lines.first { $0.hasPrefix("heartbeats over 50 ms:") } ?? ""
        XCTAssertEqual(beats.components(separatedBy: " frozen;").count - 1, others.count, "E5: \(beats)", file: file, line: line)
        XCTAssertFalse(beats.contains("MOVING"), "E5: \(beats)", file: file, line: line)
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("                ") && $0.count > 20 }.count, cpus, "a per-CPU row each",
                       file: file, line: line)
        let traces = backtraces(r)
        XCTAssertEqual(traces.count, cpus, "a backtrace for the owner and each stopped CPU", file: file, line: line)
        for (i, t) in traces.enumerated() {
            XCTAssertTrue(t.contains { $0.contains("  ") && ($0.contains("(") || $0.contains(".")) && $0.contains(" + 0x") },
                          "backtrace \(i) names a demangled function: \(t)", file: file, line: line)
        }
        XCTAssertTrue(r.hasLine("panic: leaving QEMU (panic=exit)"), file: file, line: line)
        // The checks made before the panic and inside the dump: each with its
        // record, none failed, no unexplained skip.
        for problem in r.recordProblems(allowedSkips: SkipReasons.allowed(for: r.run)) {
            XCTFail(problem, file: file, line: line)
        }
    }

    /// Every panic suite runs at -smp 4 and -smp 8 under TCG and -smp 4 under KVM (KVM last:
    /// without KVM the test ends as skipped there, QEMUTestCase.boot).
    static var configurations: [(Accel, Int)] { [(.tcg, 4), (.tcg, 8), (.kvm, 4)] }

    func testPanicBasicStopsEveryCPU() throws {
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-basic", timeout: 120))
            assertDump(r, "panic-basic: requested by the suite", owner: 0, cpus: smp)
        }
    }

    /// CPU 1 spins with interrupts off holding a spinlock and a mutex; the dump
    /// takes both (E4), sleeps and yields (E3), and completes.
    func testPanicWithALockHeldBySpinningCPU() throws {
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-lockheld", timeout: 120))
            assertDump(r, "panic-lockheld: the dump takes a lock a stopped CPU holds", owner: 0, cpus: smp)
            assertPass(r, "panic-lockheld", "holder-ready")
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("dump: took the spinlock and the mutex CPU 1 holds, slept, yielded, sent to it, ran a cpusync (") },
                          "the dump went through the held locks (\(accel), -smp \(smp))")
            // cpusync and rendezvous ran on the panic CPU only (E4).
            assertPass(r, "panic-lockheld", "dump-cpusync", atLeast: 1, atMost: 1)
            assertPass(r, "panic-lockheld", "dump-rendezvous", atLeast: 1, atMost: 1)
            let row = r.lines.first { $0.hasPrefix("                   1  lock-holder") } ?? ""
            XCTAssertFalse(row.isEmpty, "CPU 1 was stopped inside the lock holder")
            // The seed-004 window, from CPU 1's saved frame and lock count: the
            // NMI caught it with IF clear, holding the suite's spinlock (one
            // hit: the heartbeat CPUs run with interrupts on and no lock).
            let hits = r.lines.filter { $0.hasPrefix("window-hit: panic-lockheld: ") }
            XCTAssertEqual(hits.count, 1, "\(hits) (\(accel), -smp \(smp))")
            XCTAssertTrue(hits.first.map { $0.hasPrefix("window-hit: panic-lockheld: cpu=1 rflags=0x") && $0.hasSuffix(" if=0 spinlocks=1 lock-owner=1") } ?? false,
                          "\(hits) (\(accel), -smp \(smp))")
            XCTAssertTrue(r.hasLine("CPU 1: interrupts off when stopped, 1 spinlocks held"), "CPU 1's saved state")
            assertBypassIsBalanced(r, "\(accel), -smp \(smp)")
        }
    }

    /// E4 on the panic thread (panic-lockheld's dump): before, inside and
    /// after a pass through the spinlock stopped CPU 1 holds. The kernel's
    /// checks: no ticket taken or served and one pass recorded inside
    /// (`bypass-no-ticket`), the accounting (spinlock section, held locks) one
    /// level deeper inside (`bypass-accounting`), everything as before after
    /// the no-op unlock (`bypass-noop-unlock`). The `before` line shows the
    /// state the pass started from: CPU 1 the owner, no pass, interrupts off.
    private func assertBypassIsBalanced(_ r: QEMUResult, _ config: String, file: StaticString = #filePath, line: UInt = #line) {
        for id in ["bypass-no-ticket", "bypass-accounting", "bypass-noop-unlock"] {
            assertPass(r, "panic-lockheld", id, file: file, line: line)
        }
        let before = r.lines.first { $0.hasPrefix("dump: bypassed spinlock before: ") } ?? ""
        XCTAssertTrue(before.contains(" owner 1 passes 0; ") && before.contains(" IF off "), "\(before) (\(config))",
                      file: file, line: line)
    }

    /// A panic raised in an IPI handler on CPU 0 (interrupt depth 1) while CPU 1
    /// holds a spinlock and a mutex another thread sleeps on: every lock path
    /// of the dump returns at once (E3, E4), each step leaves the lock's state
    /// and the accounting (spinlock section, critnest, IF, held locks) as they
    /// were (the kernel's `balanced.STEP` checks), and none panics, waits or
    /// wakes anyone.
    func testEveryLockPathReturnsAtOnceAfterAPanic() throws {
        // Each step's record part, and the name its `lockpaths:` line gives it.
        let steps = [("held-spinlock", "spinlock CPU 1 holds"), ("held-trylock", "try-lock of the spinlock CPU 1 holds"),
                     ("free-spinlock", "a free spinlock, taken for real"), ("own-spinlock", "a spinlock this CPU holds, taken again"),
                     ("held-mutex", "mutex CPU 1 holds, a sleeper waiting"), ("free-mutex", "a free mutex, taken for real"),
                     ("own-mutex", "mutex this thread holds"), ("held-lockinturn", "lockInTurn of the spinlock CPU 1 holds"),
                     ("rendezvous", "rendezvous in a spinlock section at interrupt depth 1")]
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-lockpaths", timeout: 120))
            let config = "\(accel), -smp \(smp)"
            assertDump(r, "panic-lockpaths: raised in an IPI handler", owner: 0, cpus: smp)
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("  owner: CPU 0,") && $0.hasSuffix(", interrupt depth 1") },
                          "the panic came in interrupt context (\(config))")
            for (part, name) in steps {
                assertPass(r, "panic-lockpaths", "balanced.\(part)")
                // The accounting each step started from: interrupts off (the
                // IPI handler), no lock held.
                guard let line = r.lines.first(where: { $0.hasPrefix("lockpaths: \(name): ") }) else {
                    XCTFail("no step '\(name)' (\(config))"); continue
                }
                let accounting = line.components(separatedBy: "; accounting ").last?.components(separatedBy: " -> ")
                XCTAssertTrue(accounting?.first?.hasSuffix(" IF off locks 0") ?? false, line)
            }
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("lockpaths: spinlock CPU 1 holds: 1 outstanding, owner 1, passes 0 -> 1 outstanding, owner 1, passes 0; ") },
                          "the held spinlock: one ticket (CPU 1's), no pass left (\(config))")
            assertPass(r, "panic-lockpaths", "trylock")
            // Taken for real, not bypassed: inside, one ticket outstanding, CPU 0
            // the owner, no pass recorded. Entered again while held: after the
            // inner unlock (the pass) the real ticket is still held, no pass left.
            let inside = r.lines.filter { $0.hasPrefix("lockpaths:   inside: next ") }
            XCTAssertEqual(inside.count, 2, "the two free-spinlock steps' counters (\(config))")
            for (i, l) in inside.enumerated() {
                let f = l.dropFirst("lockpaths:   inside: ".count).split(separator: " ")
                guard f.count == 8, let next = Int(f[1]), let serving = Int(f[3]) else { XCTFail(l); continue }
                XCTAssertEqual(next - serving, 1, "step \(i + 1): the real ticket is held: \(l) (\(config))")
                XCTAssertEqual(f[5], "0", "step \(i + 1): CPU 0 owns it for real: \(l) (\(config))")
                XCTAssertEqual(f[7], "0", "step \(i + 1): no pass outstanding: \(l) (\(config))")
            }
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("lockpaths: mutex CPU 1 holds, a sleeper waiting: holder lock-holder, 1 sleeping, sleeper sleeping -> ") },
                          "the sleeper was asleep on the held mutex (\(config))")
            XCTAssertTrue(r.hasLine("lockpaths:   inside: holder main, 0 sleeping"), "the free mutex was taken for real (\(config))")
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("lockpaths: mutex this thread holds: holder main, ") }, config)
            assertPass(r, "panic-lockpaths", "lockinturn")
            assertPass(r, "panic-lockpaths", "rendezvous", atLeast: 1, atMost: 1)
            XCTAssertTrue(r.hasLine("lockpaths: done"), "every step ran (\(config))")
            XCTAssertFalse(r.hasLine(containing: "panic: recursive"), "no second panic (\(config))")
        }
    }

    /// Every CPU panics at once: exactly one owner; the others are stopped.
    /// test.stop_window_ms=100 holds the owner's stop open between its pending
    /// mask and its NMIs, so that the other panics reach the claim and lose
    /// (without it a loaded TCG host NMI-stopped every other CPU before its
    /// own panic: 0 losers, E1 never contended).
    func testEveryCPUPanickingAtOnceHasOneOwner() throws {
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-all test.stop_window_ms=100", timeout: 120))
            guard let header = r.lines.first(where: { $0.hasPrefix("panic: panic-all: every CPU panics (CPU ") }),
                  let owner = Int(header.split(separator: " ").last?.dropLast() ?? "") else {
                XCTFail("no panic-all header"); continue
            }
            assertDump(r, "panic-all: every CPU panics", owner: owner, cpus: smp)
            // The losers: at least one CPU lost the claim (a CPU the NMI stops
            // before its own panic is no loser), and each one parked: listed
            // by the dump, and NMI-stopped halted with interrupts off inside
            // its panic() (Panic.begin and Panic.park are inlined there).
            let config = "\(accel), -smp \(smp)"
            guard let e1 = r.lines.first(where: { $0.hasPrefix("panic: 1 owner (E1), ") }),
                  let losers = Int(e1.dropFirst("panic: 1 owner (E1), ".count).prefix { $0.isNumber }) else {
                XCTFail("no E1 line (\(config))"); continue
            }
            XCTAssertGreaterThan(losers, 0, "some CPU lost the claim: \(e1) (\(config))")
            let parked = e1.components(separatedBy: " parked (CPUs ").last.map { $0.dropLast().components(separatedBy: ", ").compactMap { Int($0) } } ?? []
            XCTAssertEqual(parked.count, losers, "every loser parked: \(e1) (\(config))")
            XCTAssertFalse(parked.contains(owner), "the owner is no loser (\(config))")
            for c in parked {
                guard let at = r.lines.firstIndex(where: { $0.hasPrefix("CPU \(c): stopped at rip 0x") }) else {
                    XCTFail("loser CPU \(c) was not stopped (\(config))"); continue
                }
                let report = [r.lines[at]] + r.lines[(at + 1)...].prefix { !($0.hasPrefix("CPU ") && $0.contains(": stopped at rip ")) && !$0.hasPrefix("per-CPU state:") }
                XCTAssertTrue(report.first?.contains("cpu_halt_forever") ?? false, "loser CPU \(c) halted for good (\(config)): \(report.first ?? "")")
                XCTAssertTrue(report.contains("CPU \(c): interrupts off when stopped, 0 spinlocks held"), "loser CPU \(c) parked with interrupts off (\(config))")
                XCTAssertTrue(report.contains { $0.hasPrefix("    #1  ") && $0.contains(" panic(_:) + 0x") }, "loser CPU \(c) parked inside its panic() (\(config)): \(Array(report))")
            }
        }
    }

    func testPanicDuringARendezvousAndACPUSync() throws {
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-rendezvous", timeout: 120))
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic-rendezvous: CPU 1 inside a rendezvous action inside its cpusync, CPU 2 held by that cpusync, CPU 3 waiting for the rendezvous") })
            assertDump(r, "panic-rendezvous: panic during a rendezvous and a cpusync", owner: 0, cpus: smp)
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  cpusync-caller") }, "CPU 1 inside its cpusync")
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   3  rv-caller") }, "CPU 3 waiting in its rendezvous")
        }
    }

    /// A fault inside the dump: the dump so far (owner, named backtrace, every
    /// CPU stopped), then one line, and the end.
    func testFaultInsideTheDumpPrintsOneLine() throws {
        for (accel, smp) in PanicTests.configurations {
            let r = try boot(QEMURun(smp: smp, accel: accel, cmdline: "run=panic-nested", timeout: 120))
            XCTAssertEqual(r.status, 5, r.statusDescription)
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: panic-nested: the dump will fault (CPU 0)") })
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("  owner: CPU 0,") })
            let others = (1..<smp).map(String.init).joined(separator: ", ")
            XCTAssertTrue(r.lines.contains { $0.hasPrefix("stop: NMI to CPUs \(others); all \(smp - 1) stopped in ") })
            XCTAssertTrue(backtraces(r).first?.contains { $0.contains(" + 0x") && $0.contains("(") } ?? false, "a named frame")
            XCTAssertEqual(r.lines.filter { $0.hasPrefix("panic: recursive FAULT #PF page fault inside the report on CPU 0") }.count, 1)
            XCTAssertFalse(r.hasLine(containing: "per-CPU state:"), "the dump stopped at the fault")
        }
    }

    /// Negative control: stopping with a fixed IPI. CPU 1 spins with interrupts
    /// off and never takes it: "timeout stopping cpus" names it, its heartbeat
    /// moves. The same boot makes CPU 1 a laggard for the lock paths (E4).
    func testStopWithAFixedIPITimesOutOnTheSpinningCPU() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-lockheld bug.panic_stop_ipi=1", timeout: 90))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("timeout stopping cpus: CPU 1 did not stop after 2000 ms (fixed IPI") },
                      "the laggard named")
        XCTAssertTrue(r.hasLine(containing: " CPU 1 ") && r.lines.contains { $0.hasPrefix("heartbeats over 50 ms:") && $0.contains("MOVING") },
                      "CPU 1 still running")
        // CPU 1 is a laggard: the dump goes through its spinlock and mutex, CPU 1
        // releases both for real meanwhile, the dump's unlocks are no-ops for
        // its passes only (E4): the ticket counters end consistent.
        XCTAssertTrue(r.hasLine("laggard: CPU 1 did not stop and holds the lock: next 1 serving 0 owner 1 passes 0; mutex holder lock-holder, 0 sleeping"))
        XCTAssertTrue(r.hasLine("laggard: went through both: next 1 serving 0 owner 1 passes 1; mutex holder lock-holder, 0 sleeping"),
                      "the pass took no ticket")
        XCTAssertTrue(r.hasLine("laggard: after CPU 1's release: next 1 serving 1 owner -1 passes 1; mutex holder none, 0 sleeping"),
                      "the laggard's unlocks were real releases")
        assertPass(r, "panic-lockheld", "laggard-released", atLeast: 3, atMost: 3)
        XCTAssertTrue(r.hasLine("laggard: our unlocks: next 1 serving 1 owner -1 passes 0; mutex holder none, 0 sleeping"),
                      "the dump's unlocks were no-ops")
        assertPass(r, "panic-lockheld", "laggard-consistent")
        XCTAssertTrue(r.hasLine("laggard: took both again and released them: next 2 serving 2 owner -1 passes 0; mutex holder none, 0 sleeping"),
                      "both free afterwards, taken and released for real")
        assertPass(r, "panic-lockheld", "laggard-retake")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: 1 owner (E1), 0 other panics") }, "CPU 1 did not panic on its unlock")
        // The dump reads no thread object of a CPU that did not stop (it may
        // have freed it): CPU 1's row says so instead of naming lock-holder.
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  (running: not read)") }, "CPU 1's thread not read")
        XCTAssertFalse(r.lines.contains { $0.hasPrefix("                   1  lock-holder") }, "CPU 1's thread not read")
    }

    /// E7, over the built kernel: no call on the way from any panic call to
    /// the claim reaches the heap allocator, and panic() takes its detail as a
    /// non-escaping closure (scripts/check-panic-path.sh).
    func testNothingAllocatesBeforeThePanicClaim() throws {
        let (status, text) = try QEMU.runScript(["scripts/check-panic-path.sh", QEMU.kernelPath])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("check-panic-path: OK: "), text)
    }

    /// E7: CPU 1 holds the heap lock with interrupts off; CPU 0 panics with a
    /// detail that captures a local: the full dump, not a spin on the heap lock.
    func testPanicWhileAnotherCPUHoldsTheHeapLock() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-heaplock", timeout: 30))
        assertDump(r, "panic-heaplock: panic while another CPU holds the heap lock: holder CPU 1", owner: 0, cpus: 4)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  heap-holder") }, "CPU 1 stopped holding the heap lock")
    }

    /// E2: stop first, then print. A fault in the header (the first line
    /// printed) finds every other CPU already stopped.
    func testFaultInsideTheHeaderFindsTheOthersStopped() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-header", timeout: 60))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("panic: panic-header: the header will fault (CPU 0)") })
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("panic: recursive FAULT #PF page fault inside the report on CPU 0 at rip 0x") }.count, 1)
        XCTAssertTrue(r.hasLine("panic: other CPUs stopped: 1, 2, 3 of 3 asked"), "E2 before the header")
        XCTAssertTrue(r.hasLine("panic: leaving QEMU (panic=exit)"))
    }

    /// Control: the header printed before the stop (bug.panic_print_before_stop):
    /// the header's fault finds no other CPU stopped.
    func testPrintBeforeStopControlFindsNoneStopped() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-header bug.panic_print_before_stop=1", timeout: 60))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertTrue(r.hasLine("NEGATIVE CONTROL: bug.panic_print_before_stop puts a known bug back on purpose"))
        XCTAssertTrue(r.hasLine("panic: other CPUs stopped: none of 0 asked (the stop had not finished)"),
                      r.lines.first { $0.hasPrefix("panic: other CPUs") } ?? "no stop summary")
        XCTAssertFalse(r.hasLine("panic: other CPUs stopped: 1, 2, 3 of 3 asked"))
    }

    /// E8: CPU 1 runs the monitor's halt while CPU 0's panic is inside its
    /// stop, between the pending mask and the NMIs (test.stop_window_ms): CPU 1
    /// waits for the panic's NMI and is stopped by it; the dump completes.
    func testHaltDuringAPanicStopWaitsForIt() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-halt test.stop_window_ms=300", timeout: 30))
        assertDump(r, "panic-halt: a halt during the panic's stop", owner: 0, cpus: 4)
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  halter") }, "CPU 1 stopped inside its halt")
        XCTAssertFalse(r.hasLine(containing: "halt: CPU 1 stopped"), "the halt never stopped anyone")
    }

    /// CPU 1 holds the console lock, stopped half way through a line: the
    /// panic's first line still starts a line of its own (the claim ends the
    /// half line), and the dump does not wait for the stopped holder.
    func testPanicHeaderStartsALineWhenTheConsoleHolderStoppedMidLine() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-midline", timeout: 30))
        assertDump(r, "panic-midline: the console lock's holder is stopped mid-line", owner: 0, cpus: 4)
        XCTAssertTrue(r.hasLine("midline: CPU B is half way through this line"), "the half line ends on its own")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  midline") }, "CPU 1 stopped holding the console")
    }

    /// Control: the emergency claim leaves the stopped CPU's half line open
    /// (bug.console_midline_glue): the panic's first line is glued to it.
    func testMidlineGlueControlGluesTheHeader() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-midline bug.console_midline_glue=1", timeout: 30))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertFalse(r.hasLine("midline: CPU B is half way through this line"), "the half line was not ended")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("midline: CPU B is half way through this linepanic: panic-midline: ") },
                      r.lines.first { $0.hasPrefix("midline:") } ?? "no midline line")
        XCTAssertFalse(r.lines.contains { $0.hasPrefix("panic: panic-midline: ") }, "no header at a line start")
    }

    /// E8: the monitor's halt on CPU 1 claims the stop first and holds its
    /// window (test.stop_window_ms) before its NMIs; CPU 0 panics inside it.
    /// The halt gives way: the panic owner is never stopped, it stops CPU 1,
    /// and the dump completes; the halt never reports.
    func testHaltThatClaimedTheStopFirstGivesWayToAPanic() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-haltfirst test.stop_window_ms=300", timeout: 30))
        assertDump(r, "panic-haltfirst: a panic while a halt is stopping the CPUs", owner: 0, cpus: 4)
        XCTAssertTrue(r.hasLine("halt: stopping every CPU"), "the halt started first")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  halter") }, "CPU 1 stopped inside its halt")
        XCTAssertFalse(r.hasLine(containing: "halt: CPU 1 stopped"), "the halt never stopped anyone")
    }

    /// The monitor's halt on CPU 0 stops CPU 1 while CPU 1 holds the console
    /// lock half way through a line: the halt's last line still comes out on a
    /// line of its own, and the machine stays halted.
    func testHaltPrintsItsLineWhenAStoppedCPUHoldsTheConsole() throws {
        var run = QEMURun(smp: 4, accel: .tcg, cmdline: "run=halt-midline test.stop_window_ms=300", timeout: 10)
        run.expectsTimeout = true
        let r = try QEMU.boot(run)
        XCTAssertTrue(r.timedOut, "a halted machine keeps QEMU running: \(r.statusDescription)")
        XCTAssertTrue(r.hasLine("midline: CPU B is half way through this line"), "the half line ended on its own")
        XCTAssertTrue(r.hasLine("halt: CPU 0 stopped 3 of 3 other CPUs; halting"))
    }

    /// A stopper that claimed the stop and never sends its NMIs (CPU 1, dead
    /// with interrupts off): the panic owner waits 2 s for it, then takes the
    /// stop over and says so; the dump completes.
    func testPanicTakesOverAStopThatNeverFinishes() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-deadstopper", timeout: 40))
        assertDump(r, "panic-deadstopper: the stop was claimed by a CPU that never finishes", owner: 0, cpus: 4)
        XCTAssertTrue(r.hasLine("stop: CPU 1 was stopping and did not finish in 2000 ms; CPU 0 took the stop over"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("                   1  dead-stopper") }, "CPU 1 stopped")
    }

    /// E4: CPU 0 panics while it waits with a ticket on a lock CPU 1 holds (a
    /// lockInTurn whose wait panics, as the spin watchdog's would). Its ticket
    /// is retired: the holder's later real release (made by the dump for the
    /// stopped CPU, as a laggard's) leaves the lock free, not held by a ghost.
    func testATicketAbandonedByThePanicIsNoGhost() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-ghost", timeout: 30))
        assertDump(r, "panic-ghost: panic while waiting with a ticket", owner: 0, cpus: 4)
        assertPass(r, "panic-ghost", "ticket-retired", atMost: 0)
    }

    /// Control: the ticket the panic owner waited with is not retired
    /// (bug.panic_keep_ticket): the holder's release hands the lock to it.
    func testKeptTicketControlLeavesAGhostHolder() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-ghost bug.panic_keep_ticket=1", timeout: 30))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        // One ticket outstanding: the panic owner's, now the lock's holder.
        let rec = assertFail(r, "panic-ghost", "ticket-retired", atLeast: 1)
        XCTAssertEqual(rec?.value, 1, "\(rec.map(\.description) ?? "no record")")
    }

    /// E8: an AP that marks itself online after the stopper's snapshot of the
    /// online mask (test.late_ap holds CPU 3 back until then) stops itself.
    func testAPComingOnlineDuringTheStopStopsItself() throws {
        let r = try boot(QEMURun(smp: 4, accel: .tcg, cmdline: "run=panic-basic test.late_ap=1", timeout: 60))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertTrue(r.hasLine("smp: CPU 3 held back: online only once a stop begins (test.late_ap)"))
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("stop: NMI to CPUs 1, 2; all 2 stopped in ") })
        XCTAssertTrue(r.hasLine("stop: CPU 3 came online during the stop and stopped itself"), "E8")
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("CPU 3: stopped at rip 0x") }, "CPU 3's report")
        let beats = r.lines.first { $0.hasPrefix("heartbeats over 50 ms:") } ?? ""
        XCTAssertEqual(beats.components(separatedBy: " frozen;").count - 1, 3, "E5: \(beats)")
        XCTAssertTrue(r.hasLine("panic: leaving QEMU (panic=exit)"))
        // -smp 2: the only AP is the one held back, so the stop asks for no CPU
        // (neither mask is set); the AP still sees the stop and stops itself.
        let two = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=panic-basic test.late_ap=1", timeout: 60))
        XCTAssertEqual(two.status, 5, two.statusDescription)
        XCTAssertTrue(two.hasLine("stop: CPU 1 came online during the stop and stopped itself"), "E8 with no CPU asked")
    }

    /// A fault in the symbolizer (test.symbolizer_fault): the recursive line
    /// carries the raw address and comes out; the kernel still ends normally.
    func testRecursiveLineDoesNotNeedTheSymbolizer() throws {
        let r = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=panic-basic test.symbolizer_fault=1", timeout: 60))
        XCTAssertEqual(r.status, 5, r.statusDescription)
        XCTAssertEqual(r.lines.filter { $0.hasPrefix("panic: recursive FAULT #PF page fault inside the report on CPU 0 at rip 0x") }.count, 1)
        XCTAssertTrue(r.hasLine("panic: other CPUs stopped: 1 of 1 asked"))
        XCTAssertTrue(r.hasLine("panic: leaving QEMU (panic=exit)"))
    }

    /// panic=halt keeps the machine stopped (for gdb); panic=reboot resets it
    /// (QEMU's -no-reboot then exits without the exit device: status 0).
    func testPanicHaltAndReboot() throws {
        let h = try QEMU.boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=panic-basic panic=halt", timeout: 15))
        XCTAssertTrue(h.timedOut, "panic=halt keeps QEMU running: \(h.statusDescription)")
        XCTAssertTrue(h.hasLine("panic: halted (panic=halt); attach gdb (make debug) to look around"))
        let b = try boot(QEMURun(smp: 2, accel: .tcg, cmdline: "run=panic-basic panic=reboot", timeout: 30))
        XCTAssertEqual(b.status, 0, "a reset under -no-reboot: \(b.statusDescription)")
        XCTAssertTrue(b.hasLine("panic: rebooting (panic=reboot)"))
    }

    /// E6: NMIs nobody requested are ordinary: counted, the CPU goes on. With
    /// test.boot_nmi, also one in each bring-up window: right after the boot
    /// CPU routes LINT1 as NMI, and right after an AP loads its IDT.
    func testUnrequestedNMIIsOrdinary() throws {
        for accel in Accel.halves {
            let r = try boot(QEMURun(smp: 2, accel: accel, cmdline: "run=nmi test.boot_nmi=1", timeout: 90))
            assertPassed(r)
            XCTAssertTrue(r.hasLine("smp: CPU 0: an NMI right after LINT1 was routed as NMI: taken as ordinary"), "\(accel)")
            XCTAssertTrue(r.hasLine("smp: CPU 1: an NMI right after loading its IDT: taken as ordinary"), "\(accel)")
            assertPass(r, "nmi", "ordinary", atLeast: 3, atMost: 3)
            assertPass(r, "nmi", "went-on")
        }
    }
}
