import Synchronization

// cpusync (DragonFly lwkt_cpusync; docs/ipi-queues.md): run a function on a set
// of CPUs with all of them held at a common point.
//   interlock:   every remote CPU in the mask acknowledges and is then held in
//                its IPI processing loop (still draining other messages, so two
//                CPUs cannot deadlock waiting for each other);
//   run:         the caller runs the function (if it is in the mask);
//   deinterlock: the remotes are released, each runs the function and acknowledges.
// The caller holds a critical section for the whole run: it must not be switched
// out (or moved) while remotes spin for it with interrupts off.
//
// A held remote does not spin inside the handler that received the request: it
// parks the request in its own per-CPU slot for that caller and re-checks it every
// time its IPI processing loop goes round (DragonFly's gd_cpusyncq), never
// recursing. The slots are written only by their CPU with interrupts off, so an
// IPI handler never races thread-context code over them, and a request is taken
// out of its slot before its function runs, so a nested pass cannot run it twice
// and a new request (another caller's slot) cannot be lost.
// A thread that is itself inside a cpusync is not held by others' requests: it
// runs the released ones once per pass and goes back to its own wait (DragonFly's
// td_cscount rule, counted per thread), so concurrent cpusyncs cannot hold each
// other forever.

final class CPUSyncState {
    let function: IPIFunction
    let argument: UInt64
    let remotes: CPUMask
    let caller: Int
    /// Bit set = that remote acknowledged the current phase.
    let acknowledged = Atomic<UInt64>(0)
    /// Set by the caller at deinterlock.
    let released = Atomic<Bool>(false)

    init(function: IPIFunction, argument: UInt64, remotes: CPUMask, caller: Int) {
        self.function = function
        self.argument = argument
        self.remotes = remotes
        self.caller = caller
    }
}

enum CPUSync {
    /// Runs `fn(arg)` on every CPU in `mask` (the caller's included if present),
    /// with the remotes held until the caller's own call has finished.
    static func run(mask: CPUMask, _ fn: IPIFunction, _ arg: UInt64 = 0) {
        if Panic.schedulerStopped {                        // the others are stopped: here only
            if mask.contains(PerCPU.currentNumber) { fn(arg, 0) }
            return
        }
        CriticalSection.enter()
        let me = PerCPU.currentNumber
        let td = Thread.currentIfAny
        td?.cpusyncDepth += 1
        var remotes = mask.intersection(SMP.online)
        remotes.remove(me)
        KTrace.record(.cpusyncBegin, mask.bits)
        let cs = CPUSyncState(function: fn, argument: arg, remotes: remotes, caller: me)
        interlock(cs)
        if BugKnobs.cpusyncEarlyRelease { cs.released.store(true, ordering: .releasing) }
        if mask.contains(me) { fn(arg, 0) }
        deinterlock(cs)
        KTrace.record(.cpusyncEnd, mask.bits)
        td?.cpusyncDepth -= 1
        // Requests from others that arrived while we were initiating were parked,
        // not held: now that we are a plain remote again, hold for them here
        // (process() goes round until every parked request was released and run).
        if (td?.cpusyncDepth ?? 0) == 0 && IPIQueue.targets[me].parkedCount > 0 { IPIQueue.process() }
        CriticalSection.exit()
    }

    /// Every remote acknowledges and is held; the acknowledgements are then
    /// cleared for the second phase (no remote acknowledges again before release).
    static func interlock(_ cs: CPUSyncState) {
        let raw = UInt64(UInt(bitPattern: Unmanaged.passUnretained(cs).toOpaque()))
        cs.remotes.forEach { IPIQueue.send(to: $0, { p, _ in CPUSync.remoteArrive(p) }, raw) }
        waitFor(cs)
        cs.acknowledged.store(0, ordering: .sequentiallyConsistent)
    }

    static func deinterlock(_ cs: CPUSyncState) {
        cs.released.store(true, ordering: .releasing)
        waitFor(cs)                        // each remote ran the function
        withExtendedLifetime(cs) {}
    }

    private static func waitFor(_ cs: CPUSyncState) {
        let bits = cs.remotes.bits
        var dog = SpinWatchdog("cpusync: a remote CPU did not acknowledge")
        let channel = UInt(bitPattern: Unmanaged.passUnretained(cs).toOpaque())
        while cs.acknowledged.load(ordering: .acquiring) & bits != bits {
            IPIQueue.process()
            Rendezvous.servicePending()
            // Halts until the last acknowledgement's wake-up (W1), when the
            // caller's interrupts are on; held remotes spin with theirs off.
            HaltingWait.pass(.cpusync, channel: channel) { cs.acknowledged.load(ordering: .acquiring) & bits == bits }
            dog.check()
        }
    }

    /// The first message on a remote (IPI processing, interrupts off):
    /// acknowledge the interlock, then park the request in the caller's slot.
    static func remoteArrive(_ raw: UInt64) {
        // No retain: the caller keeps `cs` alive until every remote acknowledged
        // its second phase, and the acknowledgement is each remote's last access.
        Unmanaged<CPUSyncState>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { cs in
            let me = PerCPU.currentNumber
            let t = IPIQueue.targets[me]
            // The panic's detail captures a plain copy, not `cs`: capturing the
            // object made the specialized panic entry release it before the
            // claim (E7: no release, no free path, before the claim).
            let caller = cs.caller
            if t.parked[caller] != 0 { panic("cpusync: a second request from one caller") { $0.dec(caller) } }
            t.parked[caller] = UInt(raw)
            t.parkedCount += 1
            cs.acknowledged.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
            // W1: the locked OR is the fence; `cs` is not touched after it.
            HaltingWait.wake(caller, channel: UInt(raw))
        }
    }

    /// IPI processing loop, interrupts off: runs every parked request whose
    /// caller has released it.
    static func runParked(_ t: IPITarget, _ me: Int) {
        guard t.parkedCount > 0 else { return }
        for caller in 0..<IPIQueue.cpuCount {
            let raw = t.parked[caller]
            guard raw != 0 else { continue }
            Unmanaged<CPUSyncState>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!)._withUnsafeGuaranteedRef { cs in
                guard cs.released.load(ordering: .acquiring) else { return }
                t.parked[caller] = 0                // out of the slot before it runs
                t.parkedCount -= 1
                cs.function(cs.argument, 0)
                // The caller may free `cs` as soon as it sees this bit: last access
                // (no reference is held here, so nothing is released after it).
                let caller = cs.caller
                cs.acknowledged.bitwiseOr(CPUMask.bit(me), ordering: .sequentiallyConsistent)
                HaltingWait.wake(caller, channel: raw)            // W1: the locked OR is the fence
            }
        }
    }

    /// True when parked requests must hold this CPU in its processing loop: not
    /// while the running thread is inside its own cpusync.
    static func holds(_ t: IPITarget) -> Bool {
        t.parkedCount > 0 && (Thread.currentIfAny?.cpusyncDepth ?? 0) == 0
    }
}
