import Synchronization

// Stopping every other CPU on panic (FreeBSD stop_cpus_hard; docs/panic.md).
//
// With an NMI, because a CPU that spins with interrupts off (on a lock, on the
// panic claim, in a rendezvous barrier) cannot take a maskable IPI. The owner
// sets each target's bit in `pendingNMI`, sends the NMIs, and waits (bounded)
// until `stopped` covers them all, else reports "timeout stopping cpus" with the
// laggards (E2). A CPU's NMI handler checks its pending bit: not set means an
// ordinary NMI (counted, and the CPU goes on: E6); set means stop: clear it, save
// the interrupted frame for the dump, set the stopped bit, and halt with
// interrupts off for good (no IRET, so no further NMI either).
//
// One stopper at a time (E8; FreeBSD's stopping_cpu): `stopper` is claimed by
// compare-and-swap with interrupts off and never given back (a panic or the
// monitor's halt: the machine is ending). A second stopper spins there with
// interrupts off and the first one's NMI stops it: it can neither overwrite the
// pending mask nor NMI the first one (a panic owner in the middle of its dump).
// A CPU marking itself online publishes its online bit, then reads `stopper`;
// the stopper publishes `stopper`, then reads the online mask: either the
// stopper's snapshot has the new CPU (it gets an NMI) or the new CPU sees the
// stop and stops itself (stopIfStopping, E8).
//
// The NMI path touches no lock, no heap, no IPI ring and no scheduler state, and
// the way out of an NMI never preempts (InterruptReturn).
// Negative control `bug.panic_stop_ipi=1`: a fixed IPI instead of the NMI; a CPU
// spinning with interrupts off then never stops.

enum StopCPUs {
    /// The CPU stopping the others, or -1 (E8: claimed once, by compare-and-swap).
    static let stopper = Atomic<Int32>(-1)
    static let pendingNMI = Atomic<UInt64>(0)
    static let stopped = Atomic<UInt64>(0)
    /// What the owner asked for and how long it took (for the dump).
    nonisolated(unsafe) static var requested = CPUMask()
    /// Set once a stopper has read the online mask into `requested` (for the
    /// test.late_ap hook: an AP held back until exactly then).
    static let snapshotTaken = Atomic<Bool>(false)
    nonisolated(unsafe) static var elapsedNs: UInt64 = 0
    /// CPUs online now that the stopper's snapshot did not have: they came
    /// online later and must have stopped themselves (E8).
    static var late: CPUMask {
        let s = stopper.load(ordering: .acquiring)
        guard s >= 0 else { return CPUMask() }
        var all = CPUMask(bits: SMP.onlineMask.load(ordering: .acquiring))
        all.remove(Int(s))
        return all.subtracting(requested)
    }
    /// The stopper the panic owner took the stop over from after its bounded
    /// wait (it never sent its NMIs), or -1.
    nonisolated(unsafe) static var tookOverFrom = -1
    /// The bounded wait is over (for the recursive-panic line).
    nonisolated(unsafe) static var done = false
    static let timeoutMs: UInt64 = 2000
    /// The frame each stopped CPU was interrupted at (raw memory, set up at boot).
    nonisolated(unsafe) static var frames: UnsafeMutablePointer<TrapFrame>? = nil
    /// Per CPU: NMIs nobody asked for (E6).
    nonisolated(unsafe) static var ordinaryNMIs: UnsafeMutablePointer<Atomic<UInt64>>? = nil

    /// Boot CPU, before its local APIC routes LINT1 as an NMI: from then on an
    /// NMI may come, and vector 2 must find this handler (the ordinary-NMI
    /// counters exist for every possible CPU already).
    static func installNMIHandler() {
        let c = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: PerCPU.maxCPUs)
        for i in 0..<PerCPU.maxCPUs { (c + i).initialize(to: Atomic(0)) }
        ordinaryNMIs = c
        TicketWaits.initialize()
        Traps.register(vector: 2) { frame in StopCPUs.handle(frame) }
    }

    /// Boot CPU, before any AP starts.
    static func initialize(cpuCount n: Int) {
        let f = UnsafeMutablePointer<TrapFrame>.allocate(capacity: n)
        f.initialize(repeating: .zero, count: n)
        frames = f
        Traps.register(vector: Vectors.stopIPI) { frame in StopCPUs.handle(frame) }
    }

    /// Stop every other online CPU, bounded: for a panic owner, or the monitor's
    /// halt. Interrupts go off first and stay off (pinned: `me` stays this CPU).
    static func stopOthers() {
        CPU.disableInterrupts()
        let me = PerCPU.currentNumber
        // The panic owner (E1) outranks any other stopper: a halt never stops
        // it (E8). Read after the panic claim on this CPU, so exact here.
        let forPanic = Panic.owner.load(ordering: .sequentiallyConsistent) == Int32(me)
        let waitStart = TSC.now
        let waitLimit = max(TSC.ticksPerMs, 1) &* timeoutMs
        // E8: one stopper. Losing to another CPU: it is stopping this one too,
        // and its NMI ends this loop. The panic owner waits for it a bounded
        // time only: a stopper that died (faulted and parked between its claim
        // and its NMIs) or hangs would leave the panic silent for good; after
        // the bound the owner takes the stop over (the dump names the CPU).
        var again = false
        while true {
            let (won, current) = stopper.compareExchange(expected: -1, desired: Int32(me), ordering: .sequentiallyConsistent)
            if won { break }
            if current == Int32(me) { again = true; break }
            if forPanic && TSC.now &- waitStart >= waitLimit {
                if stopper.compareExchange(expected: current, desired: Int32(me), ordering: .sequentiallyConsistent).exchanged {
                    tookOverFrom = Int(current)
                    break
                }
                continue
            }
            CPU.pause()
        }
        // A repeated stop by the same stopper (a halt from the post-mortem
        // monitor) keeps the first stop's record: its CPUs are stopped already.
        if again && done { return }
        if !forPanic { giveWayToAPanic() }
        var others = CPUMask(bits: SMP.onlineMask.load(ordering: .sequentiallyConsistent))
        others.remove(me)
        requested = others
        snapshotTaken.store(true, ordering: .sequentiallyConsistent)
        defer { done = true }
        guard !others.isEmpty else { return }
        pendingNMI.store(others.bits, ordering: .sequentiallyConsistent)
        let start = TSC.now
        if PanicTestHooks.stopWindowMs > 0 {           // test: hold the window before the NMIs open
            TSC.delay(microseconds: PanicTestHooks.stopWindowMs &* 1000)
        }
        if !forPanic { giveWayToAPanic() }
        others.forEach { cpu in
            if BugKnobs.panicStopIPI {
                LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.stopIPI))   // BUG: maskable
            } else {
                LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, delivery: .nmi)
            }
        }
        let limit = max(TSC.ticksPerMs, 1) &* timeoutMs
        // Wait for every CPU online now, not only the snapshot: one that came
        // online since stops itself (E8).
        while TSC.now &- start < limit {
            var want = CPUMask(bits: SMP.onlineMask.load(ordering: .acquiring))
            want.remove(me)
            if stopped.load(ordering: .acquiring) & want.bits == want.bits { break }
            if !forPanic { giveWayToAPanic() }
            CPU.pause()
        }
        elapsedNs = TSC.nanoseconds(TSC.now &- start)
    }

    /// A stopper that is not the panic owner (the monitor's halt) backs off as
    /// soon as it sees a panic under way (E8: it never stops the panic owner,
    /// whose report would be lost): it gives `stopper` back and waits, interrupts
    /// off, for the owner's NMI. A panic claimed after this CPU's last look is
    /// covered by the NMI handler: the panic owner never stops.
    private static func giveWayToAPanic() {
        guard Panic.owner.load(ordering: .sequentiallyConsistent) >= 0 else { return }
        stopper.store(-1, ordering: .sequentiallyConsistent)
        CPU.haltForever()
    }

    /// E8, on a CPU that has just published its online bit: a stop under way may
    /// have taken its snapshot without this CPU; stop here as the NMI would
    /// (take the pending bit, save a frame, set the stopped bit, halt).
    static func stopIfStopping() {
        let s = stopper.load(ordering: .sequentiallyConsistent)
        let me = PerCPU.currentNumber
        guard s >= 0, s != Int32(me) else { return }
        CPU.disableInterrupts()
        let bit = CPUMask.bit(me)
        pendingNMI.bitwiseAnd(~bit, ordering: .acquiringAndReleasing)   // a later NMI is then ordinary
        var here = TrapFrame.zero
        withUnsafeMutablePointer(to: &here) { CPU.capture($0) }
        frames?[me] = here
        stopped.bitwiseOr(bit, ordering: .releasing)
        CPU.haltForever()
    }

    /// Vector 2 (and the control's fixed vector), on the NMI's own IST stack.
    static func handle(_ frame: UnsafeMutablePointer<TrapFrame>) {
        let me = PerCPU.currentNumber
        let bit = CPUMask.bit(me)
        guard pendingNMI.bitwiseAnd(~bit, ordering: .acquiringAndReleasing).oldValue & bit != 0 else {
            ordinaryNMIs?[me].wrappingAdd(1, ordering: .relaxed)     // E6: not ours to stop
            return
        }
        // E8: a halt's NMI that reaches the panic owner (claimed after the
        // halter's last look) does not stop it: the halter gives way.
        if Panic.owner.load(ordering: .sequentiallyConsistent) == Int32(me) {
            ordinaryNMIs?[me].wrappingAdd(1, ordering: .relaxed)
            return
        }
        KTrace.record(.nmiStop, UInt64(me))
        frames?[me] = frame.pointee
        stopped.bitwiseOr(bit, ordering: .releasing)
        CPU.haltForever()
    }

    static var stoppedMask: CPUMask { CPUMask(bits: stopped.load(ordering: .acquiring)) }
}
