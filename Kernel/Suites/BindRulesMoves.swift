import Synchronization

// bind-rules, the switch's moves (docs/binding-and-psref.md): B6 (no move for
// code that runs with interrupts off), the expiry of a balancer target, and
// the monitor's bind against a balancer target.

extension BindRules {
    /// B6: a thread with interrupts off (no critical section, no spinlock)
    /// wakes a higher-priority thread on its CPU: the wake-up switches to it
    /// at once (requestPreemption), and that switch must not hand the waker to
    /// its target. It may rely on its CPU until it turns interrupts back on.
    static func interruptsOffStays(_ t: inout TestContext, _ cpus: CPUMask) {
        let home = cpus.nth(1) ?? 0, away = cpus.first ?? 0
        let r = SharedCounters()          // [0] woken thread asleep, [1] woken thread ran, [2] CPU after the wake-up, [3] it had run by then, [4] kept (interrupts off)
        let chan = UInt(bitPattern: r.values + 8)
        guard let woken = Thread.spawn("bind rules woken", priority: Thread.normalPriority + 1, cpu: home, {
            r.values[0] = 1
            _ = Sleep.sleep(on: chan)
            r.values[1] = 1
        }) else { t.expect("spawn", false, "spawn the thread to wake"); return }
        guard let td = Thread.spawn("bind rules cli", cpu: home, {
            let me = Thread.current
            _ = spinUntil(milliseconds: 2000) { peek(r.values) != 0 && woken.state == .sleeping }
            let flags = CPU.saveFlagsAndDisableInterrupts()
            me.migrateTarget.store(away, ordering: .relaxed)
            Sleep.wakeup(chan)                     // switches to the woken thread here
            r.values[2] = UInt64(PerCPU.currentNumber)
            r.values[3] = peek(r.values + 1)
            r.values[4] = me.keptInterruptsOff.load(ordering: .relaxed)
            me.migrateTarget.store(-1, ordering: .relaxed)
            CPU.restoreFlags(flags)
        }) else { t.expect("spawn", false, "spawn the thread with interrupts off"); return }
        td.join()
        woken.join()
        t.expect("b6-setup", r.values[3] == 1, "B6 set-up: the wake-up made with interrupts off switched to the woken thread at once")
        t.expect("interrupts-off-stays", inv: "B6", r.values[2] == UInt64(home)) { l in
            l.write("B6: with interrupts off, the switch made by its own wake-up did not move the thread to its target: on CPU ")
            l.dec(r.values[2]); l.write(" (home "); l.dec(home); l.write("), kept "); l.dec(r.values[4]); l.write(" time(s)")
        }
    }

    /// A balancer target marked longer ago than Balancer.targetExpiryTicks is
    /// dropped by the switch that finds it (the thread stays); a fresh one
    /// still moves it.
    static func targetExpires(_ t: inout TestContext, _ cpus: CPUMask) {
        let home = cpus.nth(1) ?? 0, away = cpus.first ?? 0
        let r = SharedCounters()          // [0] CPU after the old target's switch, [1] target left, [2] expired count, [3] CPU after the fresh target's switch
        let oldAt: UInt64 = 1                                 // marked at 1 ms of uptime
        let expiryMs = Balancer.targetExpiryTicks * 1000 / Clock.hz
        _ = spinUntil(milliseconds: expiryMs + 200) { Clock.uptimeMilliseconds > oldAt + expiryMs + 50 }
        guard let td = Thread.spawn("bind rules expiry", cpu: home, {
            let me = Thread.current
            Balancer.markTarget(me, away, atMs: oldAt)
            Scheduler.yield()
            CriticalSection.enter()
            r.values[0] = UInt64(PerCPU.currentNumber)
            CriticalSection.exit()
            r.values[1] = UInt64(bitPattern: Int64(me.migrateTarget.load(ordering: .relaxed)))
            r.values[2] = me.expiredTargets.load(ordering: .relaxed)
            Balancer.markTarget(me, away)
            Scheduler.yield()
            CriticalSection.enter()
            r.values[3] = UInt64(PerCPU.currentNumber)
            CriticalSection.exit()
        }) else { t.expect("spawn", false, "spawn the expiry thread"); return }
        td.join()
        t.expect("target-expires", r.values[0] == UInt64(home) && Int64(bitPattern: r.values[1]) == -1 && r.values[2] == 1) { l in
            l.write("a balancer target older than "); l.dec(Balancer.targetExpiryTicks); l.write(" ticks is dropped by the switch: on CPU ")
            l.dec(r.values[0]); l.write(" (home "); l.dec(home); l.write("), target "); l.dec(Int(Int64(bitPattern: r.values[1])))
            l.write(", expired "); l.dec(r.values[2])
        }
        t.expect("fresh-target-moves", r.values[3] == UInt64(away)) { l in
            l.write("a fresh balancer target still moves the thread: on CPU "); l.dec(r.values[3]); l.write(" (target "); l.dec(away); l.write(")")
        }
    }

    /// The monitor's bind (Balancer.setAffinity) against the balancer: a
    /// target marked before it is dropped at once; the next switch takes the
    /// thread to its affinity; a target that shows up after the bind (a pass
    /// that raced it, set here by hand) is ignored by the switch; a bound
    /// thread whose affinity is elsewhere stays without counting a kept-bound
    /// hit (that count is bind-torture's race window, the balancer's only).
    static func monitorAffinity(_ t: inout TestContext, _ cpus: CPUMask) {
        let home = cpus.nth(1) ?? 0, away = cpus.first ?? 0
        let r = SharedCounters()          // [0] target right after bind, [1] CPU after a switch, [2] CPU after a switch with a target set after bind, [3] CPU after the bound yield, [4] kept-bound count
        guard let td = Thread.spawn("bind rules aff", cpu: away, {
            let me = Thread.current
            Balancer.markTarget(me, home)                         // the balancer marked it...
            Balancer.setAffinity(me, home)                        // ...then the monitor bound it
            r.values[0] = UInt64(bitPattern: Int64(me.migrateTarget.load(ordering: .relaxed)))
            Scheduler.yield()
            CriticalSection.enter()
            r.values[1] = UInt64(PerCPU.currentNumber)
            CriticalSection.exit()
            me.migrateTarget.store(away, ordering: .relaxed)    // a target after the bind
            Scheduler.yield()
            CriticalSection.enter()
            r.values[2] = UInt64(PerCPU.currentNumber)
            CriticalSection.exit()
            me.migrateTarget.store(-1, ordering: .relaxed)
            let previous = Binding.bind()
            Balancer.setAffinity(me, away)
            Scheduler.yield()
            r.values[3] = UInt64(PerCPU.currentNumber)
            r.values[4] = me.keptBound.load(ordering: .relaxed)
            Balancer.setAffinity(me, -1)
            Binding.unbind(previous)
        }) else { t.expect("spawn", false, "spawn the affinity thread"); return }
        td.join()
        t.expect("affinity-drops-target", Int64(bitPattern: r.values[0]) == -1) { l in
            l.write("monitor bind drops a balancer target marked before it: target "); l.dec(Int(Int64(bitPattern: r.values[0])))
        }
        t.expect("affinity-moves", r.values[1] == UInt64(home)) { l in
            l.write("monitor bind to CPU "); l.dec(home); l.write(" of a thread on CPU "); l.dec(away)
            l.write(": after a switch on CPU "); l.dec(r.values[1])
        }
        t.expect("affinity-ignores-target", inv: "B2", r.values[2] == UInt64(home)) { l in
            l.write("a pinned thread's switch ignores a balancer target (CPU "); l.dec(away); l.write("): on CPU "); l.dec(r.values[2])
        }
        t.expect("affinity-bound-stays", r.values[3] == UInt64(home) && r.values[4] == 0) { l in
            l.write("a bound thread with an affinity elsewhere stays (CPU "); l.dec(r.values[3])
            l.write(") and is not counted as a race-window hit (kept-bound "); l.dec(r.values[4]); l.write(")")
        }
    }
}
