import Synchronization

// ipiq-flood: two CPUs flood each other from inside a spinlock section, i.e. with
// interrupts off and critnest held (docs/ipi-queues.md, send step 3): neither
// takes the other's IPI, and no outermost critical_exit processes messages, so
// the only thing that drains a full ring is the sender's own draining while it
// waits for room (as when a kernel sends from under a spin lock): without it
// (bug.ipiq_nodrain=1) the two deadlock. The suite's watchdog, on a third CPU,
// turns that deadlock into FAILURE instead of a hang (with two CPUs the kernel's
// own 10 s spin watchdog panics instead).
//
// Who writes what: flooder i writes sent[i], waited[i], done[i]; the handler on
// flooder i's CPU writes received[i] (messages from the other flooder).

enum IPIQueueFlood {
    static let suite = TestSuite(name: "ipiq-flood", kind: .normal,
                                 summary: "two CPUs flood each other from spinlock sections, full FIFOs: no deadlock",
                                 torture: true, body: run)

    final class Flood {
        let received = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 2)
        let sent = SharedCounters()          // [i] sent by flooder i, [2 + i] own nearly-full waits, [4 + i] done
        let arrived = Atomic<Int>(0)
        let deadline: UInt64
        init(ms: UInt64) {
            received.initialize(to: Atomic(0)); (received + 1).initialize(to: Atomic(0))
            deadline = TSC.now &+ TSC.ticksPerMs &* ms
        }
        deinit { received.deallocate() }
        var progress: UInt64 { sent.values[0] &+ sent.values[1] }
        var finished: Bool { sent.values[4] != 0 && sent.values[5] != 0 }
    }
    nonisolated(unsafe) static var current: Flood? = nil

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        // With three or more CPUs, flood on the two highest: the first one keeps
        // this thread, the watchdog.
        let watched = cpus.count >= 3
        let a = watched ? cpus.nth(cpus.count - 2)! : cpus.nth(0)!
        let b = watched ? cpus.nth(cpus.count - 1)! : cpus.nth(1)!
        let f = Flood(ms: 1000)
        current = f
        let before = IPIStats.now(CPUMask(a).union(CPUMask(b)))
        var threads: [Thread] = []
        for (i, (me, other)) in [(a, b), (b, a)].enumerated() {
            if let td = Thread.spawn("flood", cpu: me, { IPIQueueFlood.flood(f, i, to: other) }) { threads.append(td) }
        }
        if watched {
            // No progress for 2 s while a flooder is still inside its flood: the
            // two CPUs wait for each other with interrupts off and cannot be
            // recovered. Report and end the run.
            var last = f.progress, stalledSince = TSC.now
            while !f.finished {
                if Clock.enabled { _ = Sleep.sleep(on: 0xF100D, timeoutTicks: 1) } else { Scheduler.yield() }
                let p = f.progress
                if p != last { last = p; stalledSince = TSC.now; continue }
                if TSC.now &- stalledSince > TSC.ticksPerMs &* 2000 {
                    Console.line { l in
                        l.write("ipiq-flood: !!! DEADLOCK: CPUs "); l.dec(a); l.write(" and "); l.dec(b)
                        l.write(" made no progress for 2 s (sent "); l.dec(f.sent.values[0]); l.write(" and "); l.dec(f.sent.values[1])
                        l.write(", nearly-full waits "); l.dec(f.sent.values[2]); l.write(" and "); l.dec(f.sent.values[3]); l.write(")")
                    }
                    t.expect("no-deadlock", false, "both CPUs finished flooding (no deadlock)")
                    t.endSuite()
                    TestRunner.finish(t)                 // the two CPUs are lost for good
                }
            }
        }
        for td in threads { td.join() }
        current = nil
        let stats = IPIStats.now(CPUMask(a).union(CPUMask(b))).minus(before)
        let r0 = f.received[0].load(ordering: .relaxed), r1 = f.received[1].load(ordering: .relaxed)
        let s0 = f.sent.values[0], s1 = f.sent.values[1], waits = f.sent.values[2] &+ f.sent.values[3]
        Console.line { l in
            l.write("ipiq-flood: CPUs "); l.dec(a); l.write(" and "); l.dec(b); l.write(": own messages "); l.dec(s0)
            l.write(" and "); l.dec(s1); l.write(", own nearly-full waits "); l.dec(waits); l.write("; their CPUs: "); stats.write(&l)
        }
        // Reached only when both flooders returned; with two CPUs (no watchdog CPU) a
        // deadlock ends in the spin watchdog's panic instead.
        t.expect("no-deadlock", f.finished, "both CPUs finished flooding (no deadlock)")
        let diff = (r1 > s0 ? r1 - s0 : s0 - r1) &+ (r0 > s1 ? r0 - s1 : s1 - r0)
        t.expect("exactly-once", inv: "D1", diff, .equals(0)) { l in
            l.write("every message arrived exactly once: "); l.dec(r1); l.write("/"); l.dec(s0); l.write(" and "); l.dec(r0); l.write("/"); l.dec(s1)
        }
        t.expect("window", waits, .above(0)) { l in l.write("the FIFOs really filled ("); l.dec(waits); l.write(" own nearly-full waits)") }
        // The nearly-full wait re-signals only through the poll latch: without it
        // every pass of the wait sent a hardware IPI (thousands per wait).
        t.expect("poll-latch", stats.ipis, .atMost(s0 &+ s1)) { l in
            l.write("waiting for room respects the poll latch: "); l.dec(stats.ipis); l.write(" hardware IPIs for ")
            l.dec(s0 &+ s1); l.write(" messages")
        }
    }

    /// Flooder `i`: in a spinlock section from before the start line, so that
    /// neither side drains except inside its own nearly-full wait; batches of 64.
    static func flood(_ f: Flood, _ i: Int, to other: Int) {
        SpinlockSection.enter()
        f.arrived.wrappingAdd(1, ordering: .sequentiallyConsistent)
        while f.arrived.load(ordering: .acquiring) < 2 { Rendezvous.servicePending(); CPU.pause() }
        while TSC.now < f.deadline {
            for _ in 0..<64 {
                guard let tk = IPIQueue.send(to: other, { idx, _ in
                    IPIQueueFlood.current?.received[Int(idx)].wrappingAdd(1, ordering: .relaxed)
                    for _ in 0..<50 { CPU.pause() }         // a slow handler fills the FIFO
                }, UInt64(1 - i)) else { continue }
                f.sent.values[i] &+= 1
                if tk.waitedForRoom { f.sent.values[2 + i] &+= 1 }
            }
            SpinlockSection.exit()
            SpinlockSection.enter()
        }
        SpinlockSection.exit()
        // Our last message done means all of ours were (FIFO).
        if let last = IPIQueue.send(to: other, { _, _ in }) { IPIQueue.wait(last) }
        f.sent.values[4 + i] = 1
    }
}
