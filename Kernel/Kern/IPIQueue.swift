import Synchronization

// LWKT-style IPI message queues (DragonFly lwkt_ipiq.c, SPEC.md section 2).
//
// One single-producer single-consumer ring per ordered (source, target) pair.
// The source alone writes slots and `windex`; the target alone advances `rindex`
// (slot taken) and `xindex` (function done). Each target has a poll latch
// (`npoll`) that coalesces hardware IPIs and a mask of sources with pending work.
//
// Producer exclusivity: our critical sections do not block interrupts (FreeBSD
// style), so a handler on this CPU could send to the same target in the middle of
// a send. The slot write and the windex increment therefore run with interrupts
// off; waiting for room does not.

typealias IPIFunction = @convention(c) (UInt64, UInt64) -> Void

/// One ring. Lives in memory that never moves (allocated once at boot).
struct IPIRingState: ~Copyable {
    let windex = Atomic<UInt32>(0)
    let rindex = Atomic<UInt32>(0)
    let xindex = Atomic<UInt32>(0)
    let slots: UnsafeMutablePointer<IPIMessage>
}

struct IPIMessage {
    var function: UInt
    var arg1: UInt64
    var arg2: UInt64
}

/// Per target CPU: the poll latch, the pending-source mask, and statistics.
final class IPITarget {
    let npoll = Atomic<UInt32>(0)
    let sources = Atomic<UInt64>(0)
    // Statistics (SPEC: sent/received, hardware IPIs, IPIs avoided, full waits).
    let sent = Atomic<UInt64>(0)            // by this CPU as a source
    let received = Atomic<UInt64>(0)        // handled on this CPU
    let ipisSent = Atomic<UInt64>(0)        // hardware IPIs this CPU sent
    let ipisAvoided = Atomic<UInt64>(0)     // sends that found the target's latch set
    let fifoFullWaits = Atomic<UInt64>(0)
    let nowaitRefused = Atomic<UInt64>(0)
    /// Nesting depth of `process` on this CPU (handlers may send and wait).
    var processing = 0
    /// cpusync remotes waiting for their release (DragonFly's gd_cpusyncq).
    var cpusyncWaiting: [CPUSyncState] = []
    /// cpusyncs this CPU itself is running: while > 0 it is not held by the
    /// others' requests (it runs their parked list once per pass), otherwise two
    /// CPUs starting cpusyncs at once would each hold for the other forever.
    var cpusyncInitiating = 0
}

enum IPIQueue {
    enum Mode { case normal, passive, nowait }

    nonisolated(unsafe) static var ring = IPIRing(capacity: 32)
    nonisolated(unsafe) static var cpuCount = 0
    nonisolated(unsafe) static var rings: UnsafeMutablePointer<IPIRingState>? = nil
    nonisolated(unsafe) static var targets: [IPITarget] = []
    /// Negative control (`bug.ipiq_nofence=1`): no MFENCE between releasing the
    /// poll latch and re-checking the source mask.
    nonisolated(unsafe) static var skipRecheckFence = false
    /// `bug.ipiq_noargfence=1`: no fence between reading rindex and the arguments
    /// (the seed-003 bug; on x86-TSO loads are not reordered, so expect no effect).
    nonisolated(unsafe) static var skipArgumentFence = false

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
            slots.initialize(repeating: IPIMessage(function: 0, arg1: 0, arg2: 0), count: Int(capacity))
            (r + i).initialize(to: IPIRingState(slots: slots))
        }
        rings = r
        targets = (0..<n).map { _ in IPITarget() }
        Traps.register(vector: Vectors.ipiQueue) { _ in
            LocalAPIC.eoi()
            IPIQueue.process()
        }
    }

    static func ringFor(source: Int, target: Int) -> UnsafeMutablePointer<IPIRingState> {
        rings! + (source * cpuCount + target)
    }

    // MARK: send

    /// Sends `fn(arg1, arg2)` to run on `target`. Returns the sequence number for
    /// `wait` (the message's windex + 1), 0 when it ran here at once, nil when a
    /// nowait send found the ring too full.
    @discardableResult
    static func send(to target: Int, _ fn: IPIFunction, _ arg1: UInt64 = 0, _ arg2: UInt64 = 0,
                     mode: Mode = .normal) -> UInt32? {
        let me = PerCPU.currentNumber
        if target == me {                                  // 1. to self: just call it
            CriticalSection.enter()
            fn(arg1, arg2)
            CriticalSection.exit()
            return 0
        }
        CriticalSection.enter()                            // 2. no preemption, no migration
        let q = ringFor(source: me, target: target)
        let t = targets[target]
        var flags = CPU.saveFlagsAndDisableInterrupts()
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
            CPU.restoreFlags(flags)
            waitForRoom(q, target: target)
            flags = CPU.saveFlagsAndDisableInterrupts()
        }
        // 4. Slot, then windex (release: the slot's stores are visible before the
        // new windex; on x86 a plain store after a compiler barrier, which is
        // what DragonFly's cpu_sfence() amounts to there), then our source bit.
        let w = q.pointee.windex.load(ordering: .relaxed)
        q.pointee.slots[ring.slot(w)] = IPIMessage(function: UInt(bitPattern: unsafeBitCast(fn, to: UnsafeRawPointer.self)),
                                                    arg1: arg1, arg2: arg2)
        q.pointee.windex.store(w &+ 1, ordering: .releasing)
        t.sources.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
        targets[me].sent.wrappingAdd(1, ordering: .relaxed)
        // 5. Coalesce: interrupt the target only if we are the one who set its latch.
        if mode != .passive { signal(target, t) }
        CPU.restoreFlags(flags)
        CriticalSection.exit()
        return w &+ 1                                      // 6. sequence for wait()
    }

    private static func signal(_ target: Int, _ t: IPITarget) {
        let me = targets[PerCPU.currentNumber]
        if t.npoll.exchange(1, ordering: .sequentiallyConsistent) == 0 {
            me.ipisSent.wrappingAdd(1, ordering: .relaxed)
            LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
        } else {
            me.ipisAvoided.wrappingAdd(1, ordering: .relaxed)
        }
    }

    private static func waitForRoom(_ q: UnsafeMutablePointer<IPIRingState>, target: Int) {
        while !ring.hasDrained(ring.occupancy(windex: q.pointee.windex.load(ordering: .relaxed),
                                               rindex: q.pointee.rindex.load(ordering: .acquiring))) {
            // Make sure the target knows (its latch may be set by a poll that
            // already finished), drain our own incoming rings, pause.
            LocalAPIC.sendIPI(to: PerCPU.cpus[target].apicID, vector: UInt8(Vectors.ipiQueue))
            process()
            CPU.pause()
        }
    }

    /// Sends to every CPU in `mask` (self included: called directly).
    static func send(toMask mask: CPUMask, _ fn: IPIFunction, _ arg1: UInt64 = 0, _ arg2: UInt64 = 0) {
        mask.forEach { send(to: $0, fn, arg1, arg2) }
    }

    /// wait_ipiq: returns once `target` finished the message with sequence `seq`
    /// from this CPU. Drains our own rings while waiting (the target may be
    /// waiting for us). Warns after 1 s, panics after 10 s.
    static func wait(target: Int, sequence seq: UInt32) {
        guard seq != 0 else { return }
        let q = ringFor(source: PerCPU.currentNumber, target: target)
        let start = TSC.now
        var warned = false
        while !IPIRing.reached(q.pointee.xindex.load(ordering: .acquiring), seq) {
            process()
            CPU.pause()
            let waited = TSC.now &- start
            if !warned && waited > TSC.ticksPerMs &* 1000 {
                warned = true
                Console.line { $0.write("ipiq: CPU "); $0.dec(PerCPU.currentNumber); $0.write(" waiting > 1 s for CPU "); $0.dec(target) }
            }
            if waited > TSC.ticksPerMs &* 10_000 { panic("wait_ipiq: target did not answer in 10 s") { $0.dec(target) } }
        }
    }

    // MARK: receive

    /// Runs every pending message for this CPU. Called from the IPI handler, the
    /// idle loop, the tick (passive messages), every outermost critical_exit in
    /// thread context, and while waiting in send/wait.
    /// Re-entrant: a handler may send, wait, and so process further messages.
    static func process() {
        guard cpuCount > 0 else { return }
        let me = PerCPU.currentNumber
        let t = targets[me]
        let flags = CPU.saveFlagsAndDisableInterrupts()
        // Handlers must not switch threads: raw critical section (see enterRaw).
        CriticalSection.enterRaw()
        t.processing += 1
        while true {
            let pending = t.sources.exchange(0, ordering: .sequentiallyConsistent)
            CPUMask(bits: pending).forEach { processRing(ringFor(source: $0, target: me), t) }
            runWaitingCPUSyncs(t)
            if t.processing > 1 { break }                  // the outer level re-checks
            // Release the latch, then re-check: a sender that saw the latch still
            // set skipped its IPI, so its bit must be seen here. Store npoll then
            // load sources: the SB shape, which only MFENCE (or a locked
            // instruction) keeps in order on x86.
            t.npoll.store(0, ordering: .relaxed)
            if !skipRecheckFence { CPU.mfence() }
            if t.sources.load(ordering: .relaxed) == 0 && (t.cpusyncWaiting.isEmpty || t.cpusyncInitiating > 0) { break }
            // More work arrived: take the latch back (coalescing again) and loop.
            _ = t.npoll.exchange(1, ordering: .sequentiallyConsistent)
        }
        t.processing -= 1
        CriticalSection.exitRaw()
        CPU.restoreFlags(flags)
        // From thread context (idle loop, waits), take a preemption a handler
        // asked for; from an interrupt, the interrupt return does.
        if t.processing == 0 { Scheduler.preemptIfOwed() }
    }

    /// Drains one ring: rindex, fence, arguments, full fence, ++rindex, call,
    /// xindex = rindex (SPEC section 2; D2: the arguments are read only after rindex).
    private static func processRing(_ q: UnsafeMutablePointer<IPIRingState>, _ t: IPITarget) {
        let w = q.pointee.windex.load(ordering: .acquiring)
        while true {
            let r = q.pointee.rindex.load(ordering: .relaxed)   // re-read: nested levels advance it
            guard Int32(bitPattern: w &- r) > 0 else { break }
            if !skipArgumentFence { CPU.lfence() }                // seed 003: not before rindex
            let m = q.pointee.slots[ring.slot(r)]
            CPU.mfence()                                          // copy done before the slot is freed
            q.pointee.rindex.store(r &+ 1, ordering: .releasing)
            let fn = unsafeBitCast(UnsafeRawPointer(bitPattern: m.function)!, to: IPIFunction.self)
            fn(m.arg1, m.arg2)
            t.received.wrappingAdd(1, ordering: .relaxed)
            q.pointee.xindex.store(q.pointee.rindex.load(ordering: .relaxed), ordering: .releasing)
        }
    }

    /// True when messages are waiting for this CPU (a cheap hint for idle loops).
    static var hasPending: Bool {
        guard cpuCount > 0 else { return false }
        let t = targets[PerCPU.currentNumber]
        return t.sources.load(ordering: .relaxed) != 0 || !t.cpusyncWaiting.isEmpty
    }

    private static func runWaitingCPUSyncs(_ t: IPITarget) {
        guard !t.cpusyncWaiting.isEmpty else { return }
        let me = PerCPU.currentNumber
        var still: [CPUSyncState] = []
        for cs in t.cpusyncWaiting {
            if !CPUSync.tryRun(cs, me) { still.append(cs) }
        }
        t.cpusyncWaiting = still
    }
}
