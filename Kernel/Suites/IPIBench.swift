import Synchronization

// Cross-CPU benchmarks (part of `run=bench`), each next to its floor:
//   ipi.roundtrip     raw IPI ping, pong back: the hardware + hypervisor floor
//   ipi.roundtrip.halt  the same with the sender halting for the pong
//   mem.pingpong      a cache line bounced between two spinning CPUs
//   ipiq.roundtrip    an IPI-queue message, send + wait_ipiq          / ipi.roundtrip
//                     (.spin, .halt: with wait_ipiq spinning or halting, HaltingWait)
//   ipiq.coalesced    one-way messages per second, poll latch on      / ipiq.perip
//   ipiq.perip        the same with one hardware IPI per message (passive send + a raw IPI)
//   ipi.broadcast     broadcast IPI, every other CPU acknowledges
//   rendezvous.all    an empty rendezvous on every CPU                / ipi.broadcast
//   cpusync.all       an empty cpusync on every CPU                   / ipi.broadcast
//                     (.spin, .halt: the caller's wait spinning or halting)
//   rendezvous.contended.spin/.halt  rendezvous per second with every CPU initiating

enum IPIBench {
    static let pongs = Atomic<UInt64>(0)
    nonisolated(unsafe) static var pingFrom = 0
    static let broadcastAcks = Atomic<UInt64>(0)
    /// mem.pingpong: odd = the initiator's ball, even = the responder's answer.
    static let ball = Atomic<UInt64>(0)
    static let stop = Atomic<Bool>(false)
    static let received = Atomic<UInt64>(0)

    static func run(_ t: inout TestContext, _ ms: UInt64) {
        guard let other = SMP.online.next(atOrAfter: PerCPU.currentNumber + 1), other != PerCPU.currentNumber else {
            t.skip("cross-cpu", reason: .needs2CPUs, "cross-CPU benchmarks need 2 CPUs")
            return
        }
        let raw = rawIPI(other, ms)
        Benchmarks.report(&t, "ipi.roundtrip", "raw IPI round trip", raw)
        raw.emit("ipi.roundtrip", .cycles, "raw IPI ping-pong between two CPUs")
        memPingPong(&t, ms)

        let rawHalt = rawIPI(other, ms, halting: true)
        Benchmarks.report(&t, "ipi.roundtrip.halt", "raw IPI round trip, sender halts for the pong", rawHalt, baseline: raw.median, of: "the spinning sender")
        rawHalt.emit("ipi.roundtrip.halt", .cycles, floor: "ipi.roundtrip", "raw IPI ping-pong, the sender halts until the pong")

        let ipiqRound = { if let tk = IPIQueue.send(to: other, { _, _ in }) { IPIQueue.wait(tk) } }
        let ipiq = Benchmarks.timed(ms, ipiqRound)
        Benchmarks.report(&t, "ipiq.roundtrip", "IPI queue message round trip (send + wait_ipiq)", ipiq, baseline: raw.median)
        ipiq.emit("ipiq.roundtrip", .cycles, floor: "ipi.roundtrip", "IPI-queue message round trip (send + wait_ipiq)")
        let (ipiqSpin, ipiqHalt) = bothWays(.ipiq) { Benchmarks.timed(ms / 2, ipiqRound) }
        Benchmarks.report(&t, "ipiq.roundtrip.spin", "IPI queue round trip, wait_ipiq spinning", ipiqSpin, baseline: raw.median)
        Benchmarks.report(&t, "ipiq.roundtrip.halt", "IPI queue round trip, wait_ipiq halting", ipiqHalt, baseline: raw.median)
        ipiqSpin.emit("ipiq.roundtrip.spin", .cycles, floor: "ipi.roundtrip", "IPI-queue round trip, wait_ipiq spins")
        ipiqHalt.emit("ipiq.roundtrip.halt", .cycles, floor: "ipi.roundtrip", "IPI-queue round trip, wait_ipiq halts")
        throughput(&t, other, ms)

        let broadcast = rawBroadcast(ms)
        Benchmarks.report(&t, "ipi.broadcast", "raw broadcast IPI round trip (all CPUs acknowledge)", broadcast)
        broadcast.emit("ipi.broadcast", .cycles, "broadcast IPI, every other CPU acknowledges")
        let rdv = Benchmarks.timed(ms) { Rendezvous.runOnAll(action: { _ in }) }
        Benchmarks.report(&t, "rendezvous.all", "rendezvous on all CPUs (empty action)", rdv, baseline: broadcast.median, of: "a raw broadcast round trip")
        rdv.emit("rendezvous.all", .cycles, floor: "ipi.broadcast", "rendezvous on all CPUs, empty action")
        let syncAll = { CPUSync.run(mask: SMP.online, { _, _ in }) }
        let sync = Benchmarks.timed(ms, limit: 5_000, syncAll)
        Benchmarks.report(&t, "cpusync.all", "cpusync on all CPUs", sync, baseline: broadcast.median, of: "a raw broadcast round trip")
        sync.emit("cpusync.all", .cycles, floor: "ipi.broadcast", "cpusync on all CPUs, empty function")
        let (syncSpin, syncHalt) = bothWays(.cpusync) { Benchmarks.timed(ms / 2, limit: 5_000, syncAll) }
        Benchmarks.report(&t, "cpusync.all.spin", "cpusync on all CPUs, caller spinning", syncSpin, baseline: broadcast.median, of: "a raw broadcast round trip")
        Benchmarks.report(&t, "cpusync.all.halt", "cpusync on all CPUs, caller halting", syncHalt, baseline: broadcast.median, of: "a raw broadcast round trip")
        syncSpin.emit("cpusync.all.spin", .cycles, floor: "ipi.broadcast", "cpusync on all CPUs, the caller spins")
        syncHalt.emit("cpusync.all.halt", .cycles, floor: "ipi.broadcast", "cpusync on all CPUs, the caller halts")
        contendedRendezvous(&t, ms)
    }

    /// `body` measured with the waits of `kind` spinning, then halting; the
    /// boot's policy is restored afterwards.
    static func bothWays(_ kind: WaitKind, _ body: () -> BenchSamples) -> (spin: BenchSamples, halt: BenchSamples) {
        let saved = HaltingWait.halting[kind.rawValue]
        HaltingWait.halting[kind.rawValue] = false
        let spin = body()
        HaltingWait.halting[kind.rawValue] = true
        let halt = body()
        HaltingWait.halting[kind.rawValue] = saved
        return (spin, halt)
    }

    /// Every CPU starts empty rendezvous on all CPUs at once, in 5 rounds (a
    /// sample = one round's rate): the initiators queue on the rendezvous mutex,
    /// spinning or halting while they wait.
    static func contendedRendezvous(_ t: inout TestContext, _ ms: UInt64) {
        let cpus = SMP.online
        let (spin, halt) = bothWays(.rendezvousMutex) {
            var rates = BenchSamples()
            let done = CPUCounters(kinds: 1)                // [0, cpu] rendezvous started by that CPU's thread
            for _ in 0..<5 {
                cpus.forEach { done[0, $0] = 0 }
                let start = TSC.now
                let end = start &+ TSC.ticksPerMs &* max(10, ms / 10)
                SuiteThreads.runOnEveryCPU("rv-bench") {
                    var n: UInt64 = 0
                    repeat { Rendezvous.runOnAll(action: { _ in }); n &+= 1 } while TSC.now < end
                    done[0, PerCPU.currentNumber] = n
                }
                rates.add(done.sum(0, over: cpus) &* 1_000_000_000 / max(1, TSC.nanoseconds(TSC.now &- start)))
            }
            return rates
        }
        t.expect("rendezvous-contended", !spin.isEmpty && !halt.isEmpty) { l in
            l.write("rendezvous from every CPU at once: "); l.dec(spin.median); l.write("/s with waiters spinning, ")
            l.dec(halt.median); l.write("/s with waiters halting")
        }
        spin.emit("rendezvous.contended.spin", .opsPerSecond, "rendezvous per second, every CPU initiating; mutex waiters spin")
        halt.emit("rendezvous.contended.halt", .opsPerSecond, floor: "rendezvous.contended.spin",
                  "rendezvous per second, every CPU initiating; mutex waiters halt")
    }

    /// Ping on one vector, pong back on another. `halting`: the sender waits
    /// for the pong in STI;HLT (the pong itself ends the HLT) instead of spinning.
    static func rawIPI(_ other: Int, _ ms: UInt64, halting: Bool = false) -> BenchSamples {
        pingFrom = PerCPU.currentNumber
        Traps.register(vector: Vectors.benchPing) { _ in
            LocalAPIC.eoi()
            LocalAPIC.sendIPI(to: PerCPU.cpus[IPIBench.pingFrom].apicID, vector: UInt8(Vectors.benchPong))
        }
        Traps.register(vector: Vectors.benchPong) { _ in
            LocalAPIC.eoi()
            IPIBench.pongs.wrappingAdd(1, ordering: .releasing)
        }
        return Benchmarks.timed(ms) {
            let before = pongs.load(ordering: .acquiring)
            guard halting else {
                LocalAPIC.sendIPI(to: PerCPU.cpus[other].apicID, vector: UInt8(Vectors.benchPing))
                while pongs.load(ordering: .acquiring) == before { CPU.pause() }
                return
            }
            // Interrupts off from before the ping: the pong cannot slip in
            // between the check and the HLT (STI;HLT takes it after the STI).
            let flags = CPU.saveFlagsAndDisableInterrupts()
            LocalAPIC.sendIPI(to: PerCPU.cpus[other].apicID, vector: UInt8(Vectors.benchPing))
            while pongs.load(ordering: .acquiring) == before {
                CPU.enableInterruptsAndHalt()
                CPU.disableInterrupts()
            }
            CPU.restoreFlags(flags)
        }
    }

    /// A responder thread on another CPU answers every odd value with the next
    /// even one; the initiator times the round trip.
    static func memPingPong(_ t: inout TestContext, _ ms: UInt64) {
        guard let (a, b) = Benchmarks.pair() else { return }
        ball.store(0, ordering: .relaxed)
        stop.store(false, ordering: .relaxed)
        let box = SampleBox()
        let responder = Thread.create("pong", priority: Thread.highPriority, cpu: b, {
            while !IPIBench.stop.load(ordering: .relaxed) {
                let v = IPIBench.ball.load(ordering: .acquiring)
                if v & 1 == 1 { IPIBench.ball.store(v &+ 1, ordering: .releasing) } else { CPU.pause() }
            }
        })
        let initiator = Thread.create("ping", priority: Thread.highPriority, cpu: a, {
            var v: UInt64 = 0
            box.samples = Benchmarks.timed(ms) {
                v &+= 1
                IPIBench.ball.store(v, ordering: .releasing)
                v &+= 1
                while IPIBench.ball.load(ordering: .acquiring) != v { CPU.pause() }
            }
            IPIBench.stop.store(true, ordering: .relaxed)
        })
        guard let responder, let initiator else { t.expect("pingpong-threads", false, "mem ping-pong: no memory for its threads"); return }
        Scheduler.schedule(responder)
        Scheduler.schedule(initiator)
        initiator.join()
        responder.join()
        Benchmarks.report(&t, "mem.pingpong", "shared-memory ping-pong between two CPUs (round trip)", box.samples)
        box.samples.emit("mem.pingpong", .cycles, "spin ping-pong on a shared line between two CPUs")
    }

    /// One-way messages for a while, in 10 ms windows (a sample = one window's
    /// rate): with the poll latch, and with one hardware IPI per message.
    static func throughput(_ t: inout TestContext, _ other: Int, _ ms: UInt64) {
        var coalesced = BenchSamples(), perIPI = BenchSamples()
        var ipisCoalesced: UInt64 = 0, sentCoalesced: UInt64 = 0
        let mine = CPUMask(bits: CPUMask.bit(PerCPU.currentNumber))   // own traffic: this CPU's sends
        for forced in [false, true] {
            let budget = TimeBudget(milliseconds: ms / 2)
            let before = IPIStats.now(mine)
            var total: UInt64 = 0
            while !budget.expired {
                let window = TimeBudget(milliseconds: 10)
                let t0 = TSC.now
                var n: UInt64 = 0
                while !window.expired {
                    if forced {
                        // What a queue without the latch does: every message interrupts.
                        IPIQueue.send(to: other, { _, _ in }, mode: .passive)
                        LocalAPIC.sendIPI(to: PerCPU.cpus[other].apicID, vector: UInt8(Vectors.ipiQueue))
                    } else {
                        IPIQueue.send(to: other, { _, _ in })
                    }
                    n &+= 1
                }
                let rate = n &* 1_000_000_000 / max(1, TSC.nanoseconds(TSC.now &- t0))
                if forced { perIPI.add(rate) } else { coalesced.add(rate) }
                total &+= n
            }
            // Drain before the next measurement (and the next benchmark).
            if let tk = IPIQueue.send(to: other, { _, _ in }) { IPIQueue.wait(tk) }
            if !forced { ipisCoalesced = IPIStats.now(mine).minus(before).ipis; sentCoalesced = total }
        }
        t.expect("ipiq-oneway", !coalesced.isEmpty && !perIPI.isEmpty) { l in
            l.write("IPI queue one-way throughput: "); l.dec(coalesced.median); l.write(" messages/s coalesced (")
            l.dec(sentCoalesced / max(ipisCoalesced, 1)); l.write(" messages per hardware IPI), ")
            l.dec(perIPI.median); l.write(" messages/s with one IPI per message, x")
            BenchSamples.number(&l, coalesced.median * 100 / max(perIPI.median, 1), .ratio)
        }
        coalesced.emit("ipiq.coalesced", .opsPerSecond, floor: "ipiq.perip", "IPI-queue one-way messages per second, coalesced")
        perIPI.emit("ipiq.perip", .opsPerSecond, "IPI-queue one-way messages per second, one hardware IPI each")
    }

    /// One broadcast IPI (all but self); every other CPU acknowledges in its
    /// handler: the floor for an all-CPU operation.
    static func rawBroadcast(_ ms: UInt64) -> BenchSamples {
        Traps.register(vector: Vectors.benchBroadcast) { _ in
            LocalAPIC.eoi()
            IPIBench.broadcastAcks.wrappingAdd(1, ordering: .releasing)
        }
        let others = UInt64(SMP.online.count - 1)
        return Benchmarks.timed(ms) {
            let before = broadcastAcks.load(ordering: .acquiring)
            LocalAPIC.sendToAllButSelf(vector: UInt8(Vectors.benchBroadcast))
            while broadcastAcks.load(ordering: .acquiring) &- before < others { CPU.pause() }
        }
    }
}
