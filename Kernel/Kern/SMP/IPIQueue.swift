import Synchronization

// LWKT-style IPI message queues (DragonFly lwkt_ipiq.c; docs/ipi-queues.md).
//
// One single-producer single-consumer ring per ordered (source, target) pair.
// Who writes what:
//   source CPU   the slots and `windex`
//   target CPU   `rindex` (slot taken), `xindex` (every message below it has
//                finished), the ring's in-flight bookkeeping, its own latch release
//   anyone       the target's `npoll` latch (test-and-set) and `sources` mask
// Each target has a poll latch (`npoll`) that coalesces hardware IPIs and a mask
// of sources with pending work.
//
// Producer exclusivity: our critical sections do not block interrupts (FreeBSD
// style), so a handler on this CPU could send to the same target in the middle of
// a send. The slot write and the windex increment therefore run with interrupts
// off; waiting for room does not change the caller's interrupt state.

typealias IPIFunction = @convention(c) (UInt64, UInt64) -> Void

/// One ring. Lives in memory that never moves (allocated once at boot).
struct IPIRingState: ~Copyable {
    let windex: Atomic<UInt32>
    let rindex: Atomic<UInt32>
    let xindex: Atomic<UInt32>
    let slots: UnsafeMutablePointer<IPIMessage>
    /// Target only: messages taken from this ring whose handler has not returned
    /// yet (more than one when a handler waits and so processes further
    /// messages), and the index of the outermost of them.
    var inFlight: UInt32 = 0
    var inFlightBase: UInt32 = 0

    init(start: UInt32, slots: UnsafeMutablePointer<IPIMessage>) {
        windex = Atomic(start); rindex = Atomic(start); xindex = Atomic(start)
        self.slots = slots
    }
}

struct IPIMessage {
    var function: UInt
    var arg1: UInt64
    var arg2: UInt64
    /// The windex the slot was written at: D2's stamp, checked by the consumer.
    var sequence: UInt32
}

/// What a send did; `IPIQueue.wait` takes it. The ring is named by source and
/// target, so a ticket stays valid if the sending thread moves to another CPU,
/// and "ran here" is told by the CPUs, never by a sequence value (which wraps).
struct IPITicket {
    enum Delivery { case ranHere, interrupted, coalesced, passive, dropped }
    let source: Int
    let target: Int
    /// windex after our write: the message is finished once xindex reaches it.
    let sequence: UInt32
    let delivery: Delivery
    /// The ring was nearly full: the send waited (and drained) before writing.
    var waitedForRoom = false
}

/// Per target CPU: the poll latch, the pending-source mask, and statistics.
final class IPITarget {
    let npoll = Atomic<UInt32>(0)
    let sources = Atomic<UInt64>(0)
    // Statistics (sent/received, hardware IPIs, IPIs avoided, full waits).
    let sent = Atomic<UInt64>(0)            // by this CPU as a source
    let received = Atomic<UInt64>(0)        // handled on this CPU
    let ipisSent = Atomic<UInt64>(0)        // hardware IPIs this CPU sent
    let ipisAvoided = Atomic<UInt64>(0)     // sends that found the target's latch set
    let fifoFullWaits = Atomic<UInt64>(0)
    let nowaitRefused = Atomic<UInt64>(0)
    /// Nesting depth of `process` on this CPU (handlers may send and wait), the
    /// deepest seen, and passes refused at the nesting bound.
    var processing = 0
    var deepest = 0
    var nestingRefused: UInt64 = 0
    /// cpusync requests parked on this CPU, one slot per initiating CPU (written
    /// only by this CPU with interrupts off; Kern/SMP/CPUSync.swift).
    let parked: UnsafeMutablePointer<UInt>
    var parkedCount = 0

    init(cpus: Int) {
        parked = .allocate(capacity: cpus)
        parked.initialize(repeating: 0, count: cpus)
    }
}

enum IPIQueue {
    enum Mode { case normal, passive, nowait }

    /// Bound on nested processing: handler → send → wait for room → process →
    /// handler ... Deeper passes do not run messages; their waits keep spinning
    /// (under the watchdog) until an outer level drains.
    static let maxNesting = 6
    /// Rings start just below the wrap of their 32-bit indices, so that every
    /// boot crosses it within the first messages on each pair (after Linux's
    /// INITIAL_JIFFIES): index arithmetic that is not wrap-safe fails at once.
    static let startIndex: UInt32 = 0xFFFF_FFF0

    nonisolated(unsafe) static var ring = IPIRing(capacity: 32)
    nonisolated(unsafe) static var cpuCount = 0
    nonisolated(unsafe) static var rings: UnsafeMutablePointer<IPIRingState>? = nil
    nonisolated(unsafe) static var targets: [IPITarget] = []

    /// `ipiq.fifo=N` (a power of two, 4..256; default 32, DragonFly's MAXCPUFIFO).
    static func configuredCapacity() -> UInt32 {
        let n = KernelOptions.int("ipiq.fifo", default: 32)
        guard n >= 4 && n <= 256 && n & (n - 1) == 0 else {
            Console.line { $0.write("ipiq: ipiq.fifo="); $0.dec(n); $0.write(" is not a power of two in 4..256; using 32") }
            return 32
        }
        return UInt32(n)
    }

    /// Boot CPU, before any AP starts.
    static func initialize(cpuCount n: Int, capacity: UInt32) {
        ring = IPIRing(capacity: capacity)
        cpuCount = n
        let r = UnsafeMutablePointer<IPIRingState>.allocate(capacity: n * n)
        for i in 0..<(n * n) {
            let slots = UnsafeMutablePointer<IPIMessage>.allocate(capacity: Int(capacity))
            slots.initialize(repeating: IPIMessage(function: 0, arg1: 0, arg2: 0, sequence: 0), count: Int(capacity))
            (r + i).initialize(to: IPIRingState(start: startIndex, slots: slots))
        }
        rings = r
        targets = (0..<n).map { _ in IPITarget(cpus: n) }
        Traps.register(vector: Vectors.ipiQueue) { _ in
            LocalAPIC.eoi()
            IPIQueue.process()
        }
    }

    static func ringFor(source: Int, target: Int) -> UnsafeMutablePointer<IPIRingState> {
        rings! + (source * cpuCount + target)
    }

    // MARK: send

    /// Sends `fn(arg1, arg2)` to run on `target`. Returns the ticket for `wait`,
    /// or nil when a nowait send found the ring too full.
    @discardableResult
    static func send(to target: Int, _ fn: IPIFunction, _ arg1: UInt64 = 0, _ arg2: UInt64 = 0,
                     mode: Mode = .normal) -> IPITicket? {
        CriticalSection.enter()                            // 2. no preemption, no migration:
        let me = PerCPU.currentNumber                      //    `me` stays true until exit
        if target == me {                                  // 1. to self: just call it
            fn(arg1, arg2)
            CriticalSection.exit()
            return IPITicket(source: me, target: me, sequence: 0, delivery: .ranHere)
        }
        if Panic.schedulerStopped {                        // the target is stopped: fail fast
            CriticalSection.exit()
            return IPITicket(source: me, target: target, sequence: 0, delivery: .dropped)
        }
        let q = ringFor(source: me, target: target)
        let t = targets[target]
        var flags = CPU.saveFlagsAndDisableInterrupts()
        var waited = false
        // 3. Nearly full: wait for room with interrupts as they were, and keep
        // draining our own incoming rings: two CPUs flooding each other both
        // make progress this way instead of deadlocking.
        while true {
            let occupancy = ring.occupancy(windex: q.pointee.windex.load(ordering: .relaxed),
                                           rindex: q.pointee.rindex.load(ordering: .acquiring))
            if mode == .nowait && ring.refusesNowait(occupancy) {
                targets[me].nowaitRefused.wrappingAdd(1, ordering: .relaxed)
                CPU.restoreFlags(flags)
                CriticalSection.exit()
                return nil
            }
            // nowait never waits (it may be called from a handler, where waiting
            // would process, and so re-enter, further messages): below 2/3 it
            // simply writes.
            guard mode != .nowait && ring.isNearlyFull(occupancy) else { break }
            targets[me].fifoFullWaits.wrappingAdd(1, ordering: .relaxed)
            waited = true
            CPU.restoreFlags(flags)
            waitForRoom(q, target: target)
            flags = CPU.saveFlagsAndDisableInterrupts()
        }
        // 4. Slot (stamped with its index, D2), then windex (release: the slot's
        // stores are visible before the new windex; on x86 a plain store after a
        // compiler barrier, which is what DragonFly's cpu_sfence() amounts to
        // there), then our source bit.
        let w = q.pointee.windex.load(ordering: .relaxed)
        q.pointee.slots[ring.slot(w)] = IPIMessage(function: UInt(bitPattern: unsafeBitCast(fn, to: UnsafeRawPointer.self)),
                                                    arg1: arg1, arg2: arg2, sequence: w)
        q.pointee.windex.store(w &+ 1, ordering: .releasing)
        t.sources.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
        targets[me].sent.wrappingAdd(1, ordering: .relaxed)
        // 5. Coalesce: interrupt the target only if we are the one who set its latch.
        let delivery: IPITicket.Delivery = mode == .passive ? .passive : signal(target, t, from: me)
        KTrace.record(delivery == .coalesced ? .ipiCoalesced : .ipiSend, UInt64(target), UInt64(w))
        CPU.restoreFlags(flags)
        CriticalSection.exit()
        return IPITicket(source: me, target: target, sequence: w &+ 1, delivery: delivery, waitedForRoom: waited)   // 6.
    }

    private static func signal(_ target: Int, _ t: IPITarget, from me: Int) -> IPITicket.Delivery {
        if kick(target, t, from: me) { return .interrupted }
        targets[me].ipisAvoided.wrappingAdd(1, ordering: .relaxed)
        return .coalesced
    }

    /// Test-and-set of the target's latch; the hardware IPI only if it was clear
    /// (the target is then certain to look at its source mask again).
    private static func kick(_ target: Int, _ t: IPITarget, from me: Int) -> Bool {
        guard t.npoll.exchange(1, ordering: .sequentiallyConsistent) == 0 else { return false }
        targets[me].ipisSent.wrappingAdd(1, ordering: .relaxed)
        LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
        return true
    }

    /// The nearly-full wait (DragonFly lwkt_send_ipiq3): until the ring is back to
    /// a quarter, make sure the target will look (respecting its latch), drain our
    /// own incoming rings, pause. Bounded by the watchdog.
    private static func waitForRoom(_ q: UnsafeMutablePointer<IPIRingState>, target: Int) {
        var dog = SpinWatchdog("ipiq: no room in the ring to CPU", other: target)
        while !ring.hasDrained(ring.occupancy(windex: q.pointee.windex.load(ordering: .relaxed),
                                               rindex: q.pointee.rindex.load(ordering: .acquiring))) {
            _ = kick(target, targets[target], from: PerCPU.currentNumber)
            if !BugKnobs.ipiqNoDrain { process() }
            Rendezvous.servicePending()
            CPU.pause()
            dog.check()
        }
    }

    /// Sends to every CPU in `mask` (self included: called directly).
    @discardableResult
    static func send(toMask mask: CPUMask, _ fn: IPIFunction, _ arg1: UInt64 = 0, _ arg2: UInt64 = 0) -> IPITickets {
        var tickets = IPITickets()
        mask.forEach { if let t = send(to: $0, fn, arg1, arg2) { tickets.add(t) } }
        return tickets
    }

    /// wait_ipiq: returns once the message of `ticket` has finished on its
    /// target. Drains our own rings while waiting (the target may be waiting for
    /// us). Warns after 1 s, panics after 10 s.
    static func wait(_ ticket: IPITicket) {
        guard ticket.source != ticket.target, ticket.delivery != .dropped, !Panic.schedulerStopped else { return }
        let q = ringFor(source: ticket.source, target: ticket.target)
        var dog = SpinWatchdog("wait_ipiq: no answer from CPU", other: ticket.target)
        while !IPIRing.reached(q.pointee.xindex.load(ordering: .acquiring), ticket.sequence) {
            process()
            Rendezvous.servicePending()
            // Halts (interrupts on) until the target's drain of this ring wakes
            // us (W1); incoming messages and rendezvous still arrive by IPI.
            HaltingWait.pass(.ipiq, channel: UInt(bitPattern: q)) {
                IPIRing.reached(q.pointee.xindex.load(ordering: .acquiring), ticket.sequence)
            }
            dog.check()
        }
    }

    /// True once the message of `ticket` has finished on its target (a poll,
    /// for waits that must stay bounded).
    static func isDone(_ ticket: IPITicket) -> Bool {
        guard ticket.source != ticket.target, ticket.delivery != .dropped else { return true }
        let q = ringFor(source: ticket.source, target: ticket.target)
        return IPIRing.reached(q.pointee.xindex.load(ordering: .acquiring), ticket.sequence)
    }

    /// Spins until the target has taken the message (rindex passed it, its
    /// handler may still run), at most `maxCycles`. For test hooks.
    static func waitTaken(_ ticket: IPITicket, maxCycles: UInt64) {
        guard ticket.source != ticket.target, ticket.delivery != .dropped else { return }
        let q = ringFor(source: ticket.source, target: ticket.target)
        let end = TSC.now &+ maxCycles
        while !IPIRing.reached(q.pointee.rindex.load(ordering: .acquiring), ticket.sequence) && TSC.now < end {
            Rendezvous.servicePending()
            CPU.pause()
        }
    }

    static func wait(_ tickets: IPITickets) {
        for i in 0..<tickets.count { wait(tickets[i]) }
    }

    // MARK: receive

    /// Runs every pending message for this CPU. Called from the IPI handler, the
    /// idle loop, the tick (passive messages), every outermost critical_exit in
    /// thread context, and while waiting in send/wait/cpusync.
    /// Re-entrant up to `maxNesting`: a handler may send, wait, and so process
    /// further messages.
    static func process() {
        guard cpuCount > 0 else { return }
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let me = PerCPU.currentNumber                  // interrupts off: we stay here
        let t = targets[me]
        guard t.processing < maxNesting else {
            t.nestingRefused &+= 1
            CPU.restoreFlags(flags)
            return
        }
        // Handlers must not switch threads: raw critical section (see enterRaw);
        // the switch path also asserts processing == 0.
        CriticalSection.enterRaw()
        t.processing += 1
        if t.processing > t.deepest { t.deepest = t.processing }
        var hold: SpinWatchdog? = nil
        while true {
            let pending = t.sources.exchange(0, ordering: .sequentiallyConsistent)
            CPUMask(bits: pending).forEach { processRing(ringFor(source: $0, target: me), t, source: $0) }
            CPUSync.runParked(t, me)
            if t.processing > 1 { break }                  // the outer level re-checks
            // Release the latch, then re-check: a sender that saw the latch still
            // set skipped its IPI, so its bit must be seen here. Store npoll then
            // load sources: the SB shape, which only MFENCE (or a locked
            // instruction) keeps in order on x86 (docs/ipi-queues.md, D5).
            t.npoll.store(0, ordering: .relaxed)
            if BugKnobs.ipiqNoRecheck { break }
            if !BugKnobs.ipiqNoFence { CPU.mfence() }
            let held = CPUSync.holds(t)
            if t.sources.load(ordering: .relaxed) == 0 && !held { break }
            // More work arrived, or a parked cpusync holds us: take the latch back
            // (senders coalesce again) and go round.
            _ = t.npoll.exchange(1, ordering: .sequentiallyConsistent)
            if held {
                Rendezvous.servicePending()      // a held CPU still joins a rendezvous
                CPU.pause()
                if hold == nil { hold = SpinWatchdog("cpusync: held, never released by its caller") }
                hold!.check()
            }
        }
        t.processing -= 1
        CriticalSection.exitRaw()
        CPU.restoreFlags(flags)
        // From thread context (idle loop, waits), take a preemption a handler
        // asked for; from an interrupt, the interrupt return does.
        if t.processing == 0 { Scheduler.preemptIfOwed() }
    }

    /// Drains one ring: rindex, fence, arguments, full fence, ++rindex, call,
    /// xindex (D2: the arguments are read only after rindex and windex).
    private static func processRing(_ q: UnsafeMutablePointer<IPIRingState>, _ t: IPITarget, source: Int) {
        var w = q.pointee.windex.load(ordering: .acquiring)
        while true {
            let r = q.pointee.rindex.load(ordering: .relaxed)   // re-read: nested levels advance it
            var m: IPIMessage
            if BugKnobs.ipiqEarlyCopy {
                // BUG (negative control): the slot is copied before windex says it
                // was written (seed 003's bug in program order), window widened.
                m = q.pointee.slots[ring.slot(r)]
                for _ in 0..<64 { CPU.pause() }
                w = q.pointee.windex.load(ordering: .acquiring)
                guard Int32(bitPattern: w &- r) > 0 else { break }
            } else {
                guard Int32(bitPattern: w &- r) > 0 else { break }
                CPU.lfence()                                      // seed 003: not before rindex
                m = q.pointee.slots[ring.slot(r)]
            }
            if m.sequence != r { staleSlot(q, r, m.sequence) }
            CPU.mfence()                                          // copy done before the slot is freed
            q.pointee.rindex.store(r &+ 1, ordering: .releasing)
            if q.pointee.inFlight == 0 { q.pointee.inFlightBase = r }
            q.pointee.inFlight += 1
            KTrace.record(.ipiRecv, UInt64(source), UInt64(r))
            let fn = unsafeBitCast(UnsafeRawPointer(bitPattern: m.function)!, to: IPIFunction.self)
            fn(m.arg1, m.arg2)
            q.pointee.inFlight -= 1
            t.received.wrappingAdd(1, ordering: .relaxed)
            // xindex: everything below it has finished. While an outer level's
            // handler on this ring is still running (it waited, and so we ran
            // later messages here), xindex stays at that message: a waiter for it
            // must not return early.
            let done = q.pointee.inFlight == 0 ? q.pointee.rindex.load(ordering: .relaxed) : q.pointee.inFlightBase
            q.pointee.xindex.store(done, ordering: .releasing)
        }
        // W1: xindex, a full fence, then the source's halting-wait slot. Not
        // gated on `halting`: the source decided to halt from its own earlier
        // read of it, and the benchmarks switch it at run time.
        CPU.mfence()
        HaltingWait.wake(source, channel: UInt(bitPattern: q))
    }

    /// D2 broken: the slot does not hold the message written at this index.
    private static func staleSlot(_ q: UnsafeMutablePointer<IPIRingState>, _ r: UInt32, _ found: UInt32) -> Never {
        let pair = (q - rings!)
        panic("D2: IPI slot read before it was written") { l in
            l.write("ring "); l.dec(pair / cpuCount); l.write("->"); l.dec(pair % cpuCount)
            l.write(" index "); l.hex(UInt64(r)); l.write(" holds the message of index "); l.hex(UInt64(found))
        }
    }

    /// True when messages are waiting for this CPU (a cheap hint for idle loops).
    static var hasPending: Bool { hasPending(PerCPU.local) }

    /// The same through a header the caller already read. This is on every
    /// outermost critical_exit: the target comes from the header (gs:64),
    /// borrowed, neither the `targets` array nor the object retained (each
    /// retain/release is a locked instruction).
    @inline(__always)
    static func hasPending(_ h: LocalHeader) -> Bool {
        let raw = h.ipiTarget
        guard raw != 0 else { return false }
        return Unmanaged<IPITarget>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef {
            $0.sources.load(ordering: .relaxed) != 0 || $0.parkedCount > 0
        }
    }

    /// Processing depth on this CPU (the switch path asserts it is 0).
    static var processingDepth: Int { processingDepth(PerCPU.local) }
    @inline(__always)
    static func processingDepth(_ h: LocalHeader) -> Int {
        let raw = h.ipiTarget
        guard raw != 0 else { return 0 }
        return Unmanaged<IPITarget>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { $0.processing }
    }
}

/// The tickets of a send to a CPU mask, one per target.
struct IPITickets {
    private var storage = InlineArray<64, IPITicket>(repeating: IPITicket(source: 0, target: 0, sequence: 0, delivery: .ranHere))
    private(set) var count = 0
    mutating func add(_ t: IPITicket) { storage[count] = t; count += 1 }
    subscript(_ i: Int) -> IPITicket { storage[i] }
}
