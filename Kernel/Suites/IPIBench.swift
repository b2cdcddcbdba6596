import Synchronization

// Cross-CPU benchmarks (part of `run=bench`), each next to its floor:
//   ipi.roundtrip     raw IPI ping, pong back: the hardware + hypervisor floor
//   mem.pingpong      a cache line bounced between two spinning CPUs
//   ipiq.roundtrip    an IPI-queue message, send + wait_ipiq          / ipi.roundtrip
//   ipiq.coalesced    one-way messages per second, poll latch on      / ipiq.perip
//   ipiq.perip        the same with one hardware IPI per message (passive send + a raw IPI)
//   ipi.broadcast     broadcast IPI, every other CPU acknowledges
//   rendezvous.all    an empty rendezvous on every CPU                / ipi.broadcast
//   cpusync.all       an empty cpusync on every CPU                   / ipi.broadcast

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
            t.skip("cross-CPU benchmarks need 2 CPUs")
            return
        }
        let raw = rawIPI(other, ms)
        Benchmarks.report(&t, "raw IPI round trip", raw)
        raw.emit("ipi.roundtrip", .cycles, "raw IPI ping-pong between two CPUs")
        memPingPong(&t, ms)

        let ipiq = Benchmarks.timed(ms) { if let tk = IPIQueue.send(to: other, { _, _ in }) { IPIQueue.wait(tk) } }
        Benchmarks.report(&t, "IPI queue message round trip (send + wait_ipiq)", ipiq, baseline: raw.median)
        ipiq.emit("ipiq.roundtrip", .cycles, floor: "ipi.roundtrip", "IPI-queue message round trip (send + wait_ipiq)")
        throughput(&t, other, ms)

        let broadcast = rawBroadcast(ms)
        Benchmarks.report(&t, "raw broadcast IPI round trip (all CPUs acknowledge)", broadcast)
        broadcast.emit("ipi.broadcast", .cycles, "broadcast IPI, every other CPU acknowledges")
        let rdv = Benchmarks.timed(ms) { Rendezvous.runOnAll(action: { _ in }) }
        Benchmarks.report(&t, "rendezvous on all CPUs (empty action)", rdv, baseline: broadcast.median, of: "a raw broadcast round trip")
        rdv.emit("rendezvous.all", .cycles, floor: "ipi.broadcast", "rendezvous on all CPUs, empty action")
        let sync = Benchmarks.timed(ms, limit: 5_000) { CPUSync.run(mask: SMP.online, { _, _ in }) }
        Benchmarks.report(&t, "cpusync on all CPUs", sync, baseline: broadcast.median, of: "a raw broadcast round trip")
        sync.emit("cpusync.all", .cycles, floor: "ipi.broadcast", "cpusync on all CPUs, empty function")
    }

    /// Ping on one vector, pong back on another.
    static func rawIPI(_ other: Int, _ ms: UInt64) -> BenchSamples {
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
            LocalAPIC.sendIPI(to: PerCPU.cpus[other].apicID, vector: UInt8(Vectors.benchPing))
            while pongs.load(ordering: .acquiring) == before { CPU.pause() }
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
        guard let responder, let initiator else { t.check(false) { $0.write("mem ping-pong: no memory for its threads") }; return }
        Scheduler.schedule(responder)
        Scheduler.schedule(initiator)
        initiator.join()
        responder.join()
        Benchmarks.report(&t, "shared-memory ping-pong between two CPUs (round trip)", box.samples)
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
        t.check(!coalesced.isEmpty && !perIPI.isEmpty) { l in
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
