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
// The NMI path touches no lock, no heap, no IPI ring and no scheduler state, and
// the way out of an NMI never preempts (InterruptReturn).
// Negative control `bug.panic_stop_ipi=1`: a fixed IPI instead of the NMI; a CPU
// spinning with interrupts off then never stops.

enum StopCPUs {
    static let pendingNMI = Atomic<UInt64>(0)
    static let stopped = Atomic<UInt64>(0)
    /// What the owner asked for and how long it took (for the dump).
    nonisolated(unsafe) static var requested = CPUMask()
    nonisolated(unsafe) static var elapsedNs: UInt64 = 0
    static let timeoutMs: UInt64 = 2000
    /// The frame each stopped CPU was interrupted at (raw memory, set up at boot).
    nonisolated(unsafe) static var frames: UnsafeMutablePointer<TrapFrame>? = nil
    /// Per CPU: NMIs nobody asked for (E6).
    nonisolated(unsafe) static var ordinaryNMIs: UnsafeMutablePointer<Atomic<UInt64>>? = nil

    /// Boot CPU, before any AP starts.
    static func initialize(cpuCount n: Int) {
        let f = UnsafeMutablePointer<TrapFrame>.allocate(capacity: n)
        f.initialize(repeating: .zero, count: n)
        frames = f
        let c = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: n)
        for i in 0..<n { (c + i).initialize(to: Atomic(0)) }
        ordinaryNMIs = c
        Traps.register(vector: 2) { frame in StopCPUs.handle(frame) }
        Traps.register(vector: Vectors.stopIPI) { frame in StopCPUs.handle(frame) }
    }

    /// The owner: stop every other online CPU, bounded.
    static func stopOthers() {
        let me = PerCPU.currentNumber
        var others = SMP.online
        others.remove(me)
        requested = others
        guard !others.isEmpty else { return }
        pendingNMI.store(others.bits, ordering: .sequentiallyConsistent)
        let start = TSC.now
        others.forEach { cpu in
            if BugKnobs.panicStopIPI {
                LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.stopIPI))   // BUG: maskable
            } else {
                LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, delivery: .nmi)
            }
        }
        let limit = max(TSC.ticksPerMs, 1) &* timeoutMs
        while stopped.load(ordering: .acquiring) & others.bits != others.bits && TSC.now &- start < limit {
            CPU.pause()
        }
        elapsedNs = TSC.nanoseconds(TSC.now &- start)
    }

    /// Vector 2 (and the control's fixed vector), on the NMI's own IST stack.
    static func handle(_ frame: UnsafeMutablePointer<TrapFrame>) {
        let me = PerCPU.currentNumber
        let bit = CPUMask.bit(me)
        guard pendingNMI.bitwiseAnd(~bit, ordering: .acquiringAndReleasing).oldValue & bit != 0 else {
            ordinaryNMIs?[me].wrappingAdd(1, ordering: .relaxed)     // E6: not ours to stop
            return
        }
        KTrace.record(.nmiStop, UInt64(me))
        frames?[me] = frame.pointee
        stopped.bitwiseOr(bit, ordering: .releasing)
        CPU.haltForever()
    }

    static var stoppedMask: CPUMask { CPUMask(bits: stopped.load(ordering: .acquiring)) }
}
