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
                                 summary: "D5: one sender, a halting target: every message processed within a bound (tick=0)", body: run)

    static let boundMs: UInt64 = 100
    nonisolated(unsafe) static var done: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static let stop = Atomic<Bool>(false)

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        guard cpus.count >= 2 else { t.skip("needs at least 2 CPUs"); return }
        let target = cpus.nth(cpus.count - 1)!, sender = cpus.nth(cpus.count - 2)!
        if Clock.enabled { t.note { $0.write("the periodic tick is on: it rescues a stranded message within a tick (use tick=0)") } }
        if BugKnobs.ipiqNoRecheck { t.note { $0.write("negative control: the target releases its latch without fence and re-check") } }
        if BugKnobs.ipiqNoFence { t.note { $0.write("observation: no fence between latch release and re-check") } }
        let d = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: PerCPU.count)
        for i in 0..<PerCPU.count { (d + i).initialize(to: Atomic(0)) }
        done = d
        stop.store(false, ordering: .relaxed)
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        let c = SharedCounters()          // [0] messages, [1] coalesced, [2] lost (all by the sender)
        guard let halter = Thread.spawn("halter", cpu: target, { IPIQueueWakeup.halt() }),
              let s = Thread.spawn("wakeup-sender", cpu: sender, { IPIQueueWakeup.send(to: target, seconds, c) }) else {
            t.check(false, "spawn the halter and the sender"); return
        }
        s.join()
        stop.store(true, ordering: .releasing)
        if let tk = IPIQueue.send(to: target, { _, _ in }) { IPIQueue.wait(tk) }   // wakes the halter
        halter.join()
        let (messages, coalesced, lost) = (c.values[0], c.values[1], c.values[2])
        Console.line { l in
            l.write("ipiq-wakeup: "); l.dec(messages); l.write(" messages from CPU "); l.dec(sender); l.write(" to CPU "); l.dec(target)
            l.write(", "); l.dec(coalesced); l.write(" coalesced")
            l.write(lost > 0 ? ", !!! lost wake-ups " : ", lost wake-ups "); l.dec(lost)
            l.write(" (bound "); l.dec(boundMs); l.write(" ms, tick "); l.write(Clock.enabled ? "on)" : "off)")
        }
        t.check(messages > 0) { $0.dec(messages); $0.write(" messages sent to a halting CPU") }
        t.check(coalesced > 0) { l in
            l.write("the window was hit: "); l.dec(coalesced); l.write(" sends found the target still processing and relied on its re-check")
        }
        t.check(lost == 0) { $0.write("D5: every message processed within "); $0.dec(boundMs); $0.write(" ms ("); $0.dec(lost); $0.write(" lost wake-ups)") }
        Console.print(lost == 0 && coalesced > 0 && messages > 0 ? "End of test: SUCCESS" : "End of test: FAILURE")
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
            let bound = TSC.now &+ TSC.ticksPerMs &* boundMs
            while done![me].load(ordering: .acquiring) < expected && TSC.now < bound { CPU.pause() }
            if done![me].load(ordering: .acquiring) < expected {
                c.values[2] &+= 1                  // lost: the target halted on a pending message
                LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
                let rescue = TimeBudget(milliseconds: 2000)
                while done![me].load(ordering: .acquiring) < expected && !rescue.expired { CPU.pause() }
            }
        }
    }
}
