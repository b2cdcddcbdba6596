import Synchronization

// cpusync (DragonFly lwkt_cpusync): run a function on a set of CPUs with all of
// them held at a common point.
//   interlock:   every remote CPU in the mask acknowledges and is then held in
//                its IPI processing loop (still draining other messages, so two
//                CPUs cannot deadlock waiting for each other);
//   run:         the caller runs the function (if it is in the mask);
//   deinterlock: the remotes are released, each runs the function and acknowledges.
// A held remote does not spin inside the handler that received the request: it
// parks the request on its own CPU's cpusync list and re-checks it every time its
// IPI processing loop goes round (DragonFly's gd_cpusyncq), never recursing.
// A CPU that is itself inside a cpusync is not held by the others' requests: it
// runs their parked list once per pass and goes back to its own wait (DragonFly's
// td_cscount rule), so concurrent cpusyncs cannot hold each other forever.

final class CPUSyncState {
    let function: IPIFunction
    let argument: UInt64
    let remotes: CPUMask
    /// Bit set = that remote acknowledged the current phase.
    let acknowledged = Atomic<UInt64>(0)
    /// Set by the caller at deinterlock.
    let released = Atomic<Bool>(false)

    init(function: IPIFunction, argument: UInt64, remotes: CPUMask) {
        self.function = function
        self.argument = argument
        self.remotes = remotes
    }
}

enum CPUSync {
    /// Runs `fn(arg)` on every CPU in `mask` (the caller's included if present),
    /// with the remotes held until the caller's own call has finished.
    static func run(mask: CPUMask, _ fn: IPIFunction, _ arg: UInt64 = 0) {
        let me = PerCPU.currentNumber
        var remotes = mask.intersection(SMP.online)
        remotes.remove(me)
        let cs = CPUSyncState(function: fn, argument: arg, remotes: remotes)
        let t = IPIQueue.targets[me]
        let flags = CPU.saveFlagsAndDisableInterrupts()
        t.cpusyncInitiating += 1
        CPU.restoreFlags(flags)
        interlock(cs)
        if mask.contains(me) { fn(arg, 0) }
        deinterlock(cs)
        CPU.disableInterrupts()
        t.cpusyncInitiating -= 1
        CPU.restoreFlags(flags)
        // Requests from others that arrived while we were initiating were parked,
        // not held: now that we are a plain remote again, hold for them here
        // (process() loops until every parked request has been released and run).
        if t.cpusyncInitiating == 0 && !t.cpusyncWaiting.isEmpty { IPIQueue.process() }
    }

    static func interlock(_ cs: CPUSyncState) {
        let raw = UInt64(UInt(bitPattern: Unmanaged.passUnretained(cs).toOpaque()))
        cs.remotes.forEach { IPIQueue.send(to: $0, { p, _ in CPUSync.remoteArrive(p) }, raw) }
        waitFor(cs, cs.remotes.bits)
    }

    static func deinterlock(_ cs: CPUSyncState) {
        cs.acknowledged.store(0, ordering: .sequentiallyConsistent)
        cs.released.store(true, ordering: .releasing)
        waitFor(cs, cs.remotes.bits)           // each remote ran the function
        withExtendedLifetime(cs) {}
    }

    private static func waitFor(_ cs: CPUSyncState, _ bits: UInt64) {
        let start = TSC.now
        while cs.acknowledged.load(ordering: .acquiring) & bits != bits {
            IPIQueue.process()
            CPU.pause()
            if TSC.now &- start > TSC.ticksPerMs &* 10_000 { panic("cpusync: a CPU did not answer in 10 s") }
        }
    }

    /// The first message on a remote: acknowledge the interlock, then park.
    static func remoteArrive(_ raw: UInt64) {
        let cs = Unmanaged<CPUSyncState>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
        let me = PerCPU.currentNumber
        cs.acknowledged.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
        if !tryRun(cs, me) { IPIQueue.targets[me].cpusyncWaiting.append(cs) }
    }

    /// Runs the function if the caller has released the remotes. Returns false
    /// while still held.
    static func tryRun(_ cs: CPUSyncState, _ me: Int) -> Bool {
        guard cs.released.load(ordering: .acquiring) else { return false }
        cs.function(cs.argument, 0)
        cs.acknowledged.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
        return true
    }
}
