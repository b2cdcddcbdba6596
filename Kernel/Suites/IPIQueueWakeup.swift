import Synchronization

// ipiq-wakeup: D5, no lost wake-up (docs/ipi-queues.md). One sender, one target
// CPU that does nothing but halt: only a hardware IPI wakes it (run with tick=0;
// the tick would rescue a stranded message within 10 ms). The target's handler
// publishes "done" and then keeps working a little, so the sender's next message
// arrives while the target is still in its processing loop with its poll latch
// set: that send is coalesced (no IPI) and is found only by the target's release
// of the latch, fence and re-check. Those coalesced sends are the race window;
// the suite counts them (they must be > 0). Without the re-check
// (bug.ipiq_norecheck=1) each of them is stranded: a lost wake-up.
//
// Who writes what: done[s] by the handler on the target (for sender s only),
// own counts by the sender, `stop` by this thread.

enum IPIQueueWakeup {
    static let suite = TestSuite(name: "ipiq-wakeup", kind: .normal,
                                 summary: "D5: one sender, a halting target: every message processed within a bound (tick=0)",
                                 torture: true, body: run)

    /// A message not processed within boundMs is late (reported); one still not
    /// processed after lostMs is lost. With tick=0 nothing but an IPI wakes the
    /// halted target, so seconds tell a stranded message apart from a vCPU the
    /// loaded host did not run for a while.
    static let boundMs: UInt64 = 100
    static let lostMs: UInt64 = 2000
    nonisolated(unsafe) static var done: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static let stop = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("run", inv: "D5", reason: .needs2CPUs, "needs at least 2 CPUs"); return }
        let target = cpus.nth(cpus.count - 1)!, sender = cpus.nth(cpus.count - 2)!
        if Clock.enabled { t.note { $0.write("the periodic tick is on: it rescues a stranded message within a tick (use tick=0)") } }
        if BugKnobs.ipiqNoRecheck { t.note { $0.write("negative control: the target releases its latch without fence and re-check") } }
        if BugKnobs.ipiqNoFence { t.note { $0.write("observation: no fence between latch release and re-check") } }
        let d = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: PerCPU.count)
        for i in 0..<PerCPU.count { (d + i).initialize(to: Atomic(0)) }
        done = d
        stop.store(false, ordering: .relaxed)
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let c = SharedCounters()          // [0] messages, [1] coalesced, [2] lost, [3] late (all by the sender)
        guard let halter = Thread.spawn("halter", cpu: target, { IPIQueueWakeup.halt() }),
              let s = Thread.spawn("wakeup-sender", cpu: sender, { IPIQueueWakeup.send(to: target, seconds, c) }) else {
            t.expect("spawn", false, "spawn the halter and the sender"); return
        }
        s.join()
        stop.store(true, ordering: .releasing)
        if let tk = IPIQueue.send(to: target, { _, _ in }) { IPIQueue.wait(tk) }   // wakes the halter
        halter.join()
        let (messages, coalesced, lost, late) = (c.values[0], c.values[1], c.values[2], c.values[3])
        Console.line { l in
            l.write("ipiq-wakeup: "); l.dec(messages); l.write(" messages from CPU "); l.dec(sender); l.write(" to CPU "); l.dec(target)
            l.write(", "); l.dec(coalesced); l.write(" coalesced")
            l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
            l.write(" (bound "); l.dec(boundMs); l.write(" ms, tick "); l.write(Clock.enabled ? "on)" : "off)")
            l.write(", late (over "); l.dec(boundMs); l.write(" ms, under "); l.dec(lostMs); l.write(" ms) "); l.dec(late)
        }
        t.expect("messages", messages, .above(0)) { $0.dec(messages); $0.write(" messages sent to a halting CPU") }
        t.expect("window", inv: "D5", coalesced, .above(0)) { l in
            l.write("the window was hit: "); l.dec(coalesced); l.write(" sends found the target still processing and relied on its re-check")
        }
        t.expect("lost", inv: "D5", lost, .equals(0)) { l in
            l.write("D5: every message processed within "); l.dec(lostMs); l.write(" ms ("); l.dec(lost); l.write(" lost wake-ups; ")
            l.dec(late); l.write(" late, over "); l.dec(boundMs); l.write(" ms)")
        }
        done = nil
        d.deallocate()
    }

    /// The target: nothing but STI;HLT. No idle-loop poll of the IPI queues, no
    /// critical_exit: only an interrupt gets it to process messages.
    static func halt() {
        while true {
            CPU.disableInterrupts()
            if stop.load(ordering: .acquiring) { break }
            CPU.enableInterruptsAndHalt()
        }
        CPU.enableInterrupts()
    }

    static func send(to target: Int, _ seconds: UInt64, _ c: SharedCounters) {
        let me = PerCPU.currentNumber
        let end = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        while TSC.now < end {
            let expected = done![me].load(ordering: .acquiring) &+ 1
            guard let tk = IPIQueue.send(to: target, { src, _ in
                IPIQueueWakeup.done![Int(src)].wrappingAdd(1, ordering: .releasing)
                TSC.delay(microseconds: 50)        // still processing when the next one comes
            }, UInt64(me)) else { continue }
            c.values[0] &+= 1
            if tk.delivery == .coalesced { c.values[1] &+= 1 }
            let start = TSC.now
            let bound = start &+ TSC.ticksPerMs &* boundMs, lostAt = start &+ TSC.ticksPerMs &* lostMs
            while done![me].load(ordering: .acquiring) < expected && TSC.now < lostAt { CPU.pause() }
            if done![me].load(ordering: .acquiring) >= expected {
                if TSC.now >= bound { c.values[3] &+= 1 }   // late, not lost
            } else {
                c.values[2] &+= 1                  // lost: the target halted on a pending message
                LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
                let rescue = TimeBudget(milliseconds: 2000)
                while done![me].load(ordering: .acquiring) < expected && !rescue.expired { CPU.pause() }
            }
        }
    }
}
