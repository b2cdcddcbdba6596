import Synchronization

// Panic suites for the stop's rare orders (docs/panic.md, E2, E8): a CPU
// stopped in the middle of a console line, a monitor halt that claimed the stop
// before the panic did, and a stopper that claimed the stop and never finished.

enum PanicStopSuites {
    static let ready = Atomic<Bool>(false)

    /// CPU B holds the console lock with interrupts off, in the middle of a
    /// line, and never finishes it; CPU 0 panics. The panic's first line must
    /// start a line of its own (the emergency claim ends B's line).
    static let midLine = TestSuite(name: "panic-midline", kind: .fatal,
        summary: "a CPU stopped in the middle of a console line: the panic header still starts a line", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", reason: .needs2CPUs, "needs 2 CPUs"); return }
            Console.print("panic-midline: CPU B stops in the middle of a line; a panic follows")
            startHeartbeats(except: CPUMask(b))
            Thread.spawn("midline", cpu: b, {
                SpinlockSection.enter()             // interrupts off for good
                // A bare lock: the line it starts is never finished, as in a
                // CPU stopped inside Console.emit.
                Console.lock.lock(cpu: currentCPUNumberForLocks(), servicing: false)
                for c in "midline: CPU B is half way through this line".utf8 { Console.serial.put(c) }
                PanicStopSuites.ready.store(true, ordering: .releasing)
                while true { PanicSuites.beat(); CPU.pause() }
            })
            _ = spinUntil(milliseconds: 2000) { PanicStopSuites.ready.load(ordering: .acquiring) }
            panic("panic-midline: the console lock's holder is stopped mid-line")
        })

    /// E8: CPU B's monitor halt claims the stop first and holds its window open
    /// (test.stop_window_ms) before its NMIs; CPU 0 panics inside that window.
    /// The halt gives way: the panic owner is never stopped, and it stops B.
    static let haltFirst = TestSuite(name: "panic-haltfirst", kind: .fatal,
        summary: "the monitor's halt claims the stop before a panic: the halt gives way, the dump completes", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", inv: "E8", reason: .needs2CPUs, "needs 2 CPUs"); return }
            // Without the window the panic could not come inside the halt's
            // stop: a configuration that tests nothing fails rather than passes.
            guard PanicTestHooks.stopWindowMs > 0 else { t.expect("stop-window", false, "needs test.stop_window_ms=N"); return }
            startHeartbeats(except: CPUMask(b))
            Console.print("panic-haltfirst: CPU B runs halt; a panic follows inside its stop window")
            Thread.spawn("halter", cpu: b, { ControlCommands.halt() })
            _ = spinUntil(milliseconds: 2000) { StopCPUs.stopper.load(ordering: .acquiring) == Int32(b) }
            panic("panic-haltfirst: a panic while a halt is stopping the CPUs")
        })

    /// E8 bounded: CPU B claims the stop and then never sends its NMIs (a
    /// stopper that faulted and parked, or hangs), interrupts off. CPU 0's
    /// panic waits for it 2 s, then takes the stop over.
    static let deadStopper = TestSuite(name: "panic-deadstopper", kind: .fatal,
        summary: "a stopper that claimed the stop never finishes: the panic takes the stop over after 2 s", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", inv: "E8", reason: .needs2CPUs, "needs 2 CPUs"); return }
            startHeartbeats(except: CPUMask(b))
            Console.print("panic-deadstopper: CPU B claims the stop and dies; a panic follows")
            Thread.spawn("dead-stopper", cpu: b, {
                SpinlockSection.enter()             // interrupts off for good
                _ = StopCPUs.stopper.compareExchange(expected: -1, desired: currentCPUNumberForLocks(), ordering: .sequentiallyConsistent)
                PanicStopSuites.ready.store(true, ordering: .releasing)
                while true { PanicSuites.beat(); CPU.pause() }
            })
            _ = spinUntil(milliseconds: 2000) { PanicStopSuites.ready.load(ordering: .acquiring) }
            panic("panic-deadstopper: the stop was claimed by a CPU that never finishes")
        })

    /// E4: CPU 0 panics while it waits with a ticket (a lockInTurn on a spin
    /// lock CPU B holds, whose `whileWaiting` panics, as the spin watchdog
    /// would). The dump then releases B's hold for it, as a laggard would: the
    /// lock must end free, not handed to CPU 0's abandoned ticket.
    static let ghostLock = SpinLock("panic-ghost")
    static let ghost = TestSuite(name: "panic-ghost", kind: .fatal,
        summary: "a panic while waiting with a ticket: the ticket is retired, a laggard's release frees the lock", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("ticket-retired", inv: "E4", reason: .needs2CPUs, "needs 2 CPUs"); return }
            Thread.spawn("ghost-holder", cpu: b, {
                PanicStopSuites.ghostLock.lock()    // interrupts off from here on: held for good
                PanicStopSuites.ready.store(true, ordering: .releasing)
                while true { PanicSuites.beat(); CPU.pause() }
            })
            _ = spinUntil(milliseconds: 2000) { PanicStopSuites.ready.load(ordering: .acquiring) }
            startHeartbeats(except: CPUMask(b))
            Panic.dumpHook = {
                // CPU B is stopped: release its hold here, as a laggard's real
                // unlock would (a bare unlock: the raw lock, no accounting).
                PanicStopSuites.ghostLock.raw.unlock()
                let next = PanicStopSuites.ghostLock.raw.nextTicket.load(ordering: .relaxed)
                let serving = PanicStopSuites.ghostLock.raw.nowServing.load(ordering: .relaxed)
                // Tickets taken and not served: 0 is a free lock; 1 is the
                // panic owner's abandoned ticket, now the lock's holder.
                let outstanding = UInt64(next &- serving)
                PanicSuites.dumpChecks("panic-ghost") { t in
                    t.expect("ticket-retired", inv: "E4", outstanding, .equals(0)) { l in
                        l.write("E4: after the holder's release: next "); l.dec(UInt64(next)); l.write(" serving "); l.dec(UInt64(serving))
                        l.write(next == serving ? ": free" : ": HELD by an abandoned ticket")
                    }
                }
            }
            Console.print("panic-ghost: CPU 0 panics while waiting with a ticket; a panic follows")
            _ = ghostLock.lockInTurn { panic("panic-ghost: panic while waiting with a ticket") }
        })

    /// The monitor's halt on CPU 0 while CPU 1, stopped by it, holds the
    /// console lock half way through a line (it takes it inside the halt's
    /// stop window, test.stop_window_ms): the halt's last line still comes
    /// out (no wait on the lock of a stopped CPU).
    static let haltMidLine = TestSuite(name: "halt-midline", kind: .fatal,
        summary: "a halt whose stopped CPU holds the console lock mid-line: the halt's last line comes out", body: { t in
            guard let b = SMP.online.nth(1) else { t.skip("run", reason: .needs2CPUs, "needs 2 CPUs"); return }
            // Without the window CPU B could not take the console lock inside
            // the halt's stop: a configuration that tests nothing fails.
            guard PanicTestHooks.stopWindowMs > 0 else { t.expect("stop-window", false, "needs test.stop_window_ms=N"); return }
            Thread.spawn("midline", cpu: b, {
                SpinlockSection.enter()             // interrupts off for good
                while StopCPUs.stopper.load(ordering: .acquiring) < 0 { CPU.pause() }
                // A bare lock, never released: a CPU stopped inside Console.emit.
                Console.lock.lock(cpu: currentCPUNumberForLocks(), servicing: false)
                for c in "midline: CPU B is half way through this line".utf8 { Console.serial.put(c) }
                while true { PanicSuites.beat(); CPU.pause() }
            })
            TSC.delay(microseconds: 20_000)
            ControlCommands.halt()
        })

    private static func startHeartbeats(except skip: CPUMask) { PanicSuites.startHeartbeats(except: skip) }
}
