import Synchronization

// Passive references (NetBSD psref(9); docs/binding-and-psref.md).
//
// A passive reference lives on the CPU where it was taken and only that CPU
// touches it, so taking one costs a list insertion with interrupts off: no
// atomic, no shared cache line. The price is paid by whoever destroys the
// target: it must ask every CPU whether it still holds one.
//
// Who writes what:
//   CPU c (interrupts off)  its own list `held[c]`, and the references on it
//   the destroyer           target.draining (then only reads, by cross-calls)
//
// B3: (thread, CPU) at release equals (thread, CPU) at acquire. That holds
// only if the holder cannot move: acquire requires a critical section or BOUND.

/// Something passive references point at (an interface, a statistics record).
final class PsrefTarget {
    let name: StaticString
    /// Set by destroy: new acquires are a bug from then on.
    let draining = Atomic<Bool>(false)
    /// CPUs found holding a reference by the last destroy round.
    let holders = Atomic<UInt64>(0)
    init(_ name: StaticString) { self.name = name }
}

/// One passive reference, owned by its holder (NetBSD's `struct psref`, which
/// callers keep on their stack).
final class Psref {
    fileprivate(set) var target: PsrefTarget? = nil
    fileprivate(set) var threadID = 0
    fileprivate(set) var cpu = -1
    fileprivate var next: Psref? = nil
    fileprivate var prev: Psref? = nil
    init() {}
}

enum PassiveRef {
    /// One list head per CPU, allocated once (not a Swift array: every CPU
    /// writes its own slot at once, and an array's copy-on-write check could
    /// copy the buffer under the others).
    nonisolated(unsafe) private static var held: UnsafeMutablePointer<Psref?>? = nil
    /// Acquires and releases so far, all CPUs (statistics).
    static let acquires = Atomic<UInt64>(0)

    /// Boot CPU, before any AP starts.
    static func initialize(cpuCount: Int) {
        let p = UnsafeMutablePointer<Psref?>.allocate(capacity: cpuCount)
        p.initialize(repeating: nil, count: cpuCount)
        held = p
    }

    static func acquire(_ r: Psref, _ t: PsrefTarget) {
        if !tryAcquire(r, t) { panic("psref_acquire: target is being destroyed") }
    }

    /// acquire, or false if the target is being destroyed. A reader that found
    /// the target through a published pointer uses this, with interrupts off
    /// from the load through here, so a destroy's cross-call round cannot run
    /// between the two on this CPU (it sees the reference, or the reader sees
    /// draining and looks again).
    static func tryAcquire(_ r: Psref, _ t: PsrefTarget) -> Bool {
        let td = Thread.current
        if !(td.critnest > 0 || td.isBound || PerCPU.inInterrupt || SpinlockSection.depth > 0) {
            panic("psref_acquire: the thread may migrate (neither bound nor in a critical section)")
        }
        if r.target != nil { panic("psref_acquire: reference already in use") }
        let flags = CPU.saveFlagsAndDisableInterrupts()
        if t.draining.load(ordering: .acquiring) {
            CPU.restoreFlags(flags)
            return false
        }
        let me = PerCPU.currentNumber                    // cannot change: see above
        r.target = t
        r.threadID = td.id
        r.cpu = me
        let heads = held!
        r.prev = nil
        r.next = heads[me]
        heads[me]?.prev = r
        heads[me] = r
        CPU.restoreFlags(flags)
        acquires.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    static func release(_ r: Psref, _ t: PsrefTarget) {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let me = PerCPU.currentNumber
        if r.target == nil { panic("psref_release: the reference is not held") }
        // B3, with the message of the seed's KASSERT.
        if r.cpu != me {
            let from = r.cpu
            panic("B3 violated in psref_release") { l in
                l.write("passive reference transferred from CPU "); l.dec(from); l.write(" to CPU "); l.dec(me)
            }
        }
        if r.threadID != Thread.current.id { panic("psref_release: released by another thread") }
        if r.target !== t { panic("psref_release: reference to another target") }
        if let p = r.prev { p.next = r.next } else { held![me] = r.next }
        r.next?.prev = r.prev
        r.next = nil
        r.prev = nil
        r.target = nil
        r.cpu = -1
        CPU.restoreFlags(flags)
        if t.draining.load(ordering: .acquiring) { Sleep.wakeup(Sleep.channel(t)) }
    }

    /// True if this CPU holds a reference to `t` (its own list only).
    static func heldHere(_ t: PsrefTarget) -> Bool {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        var n = held![PerCPU.currentNumber]
        var found = false
        while let r = n, !found { found = r.target === t; n = r.next }
        CPU.restoreFlags(flags)
        return found
    }

    /// psref_target_destroy: no new references from now on; returns once no CPU
    /// holds one. Each round asks every CPU by a cross-call (cpusync), then
    /// sleeps a tick or until a release wakes it (with tick=0: yields and
    /// polls). Thread context only.
    /// Returns the rounds that found a holder (and so waited).
    @discardableResult
    static func destroy(_ t: PsrefTarget) -> Int {
        t.draining.store(true, ordering: .sequentiallyConsistent)
        let raw = UInt64(UInt(bitPattern: Unmanaged.passUnretained(t).toOpaque()))
        var waits = 0
        while true {
            t.holders.store(0, ordering: .relaxed)
            CPUSync.run(mask: SMP.online, { p, _ in PassiveRef.reportHolder(p) }, raw)
            if t.holders.load(ordering: .acquiring) == 0 { break }
            waits += 1
            // A release's wake-up can fall between the round and this sleep:
            // the tick's timeout bounds the loss. Without the tick, poll.
            if Clock.enabled { _ = Sleep.sleep(on: Sleep.channel(t), timeoutTicks: 1) }
            else { Scheduler.yield(); TSC.delay(microseconds: 1000) }
        }
        withExtendedLifetime(t) {}
        return waits
    }

    /// psref_target_init again, after destroy returned: the target may be
    /// referenced anew (a recycled buffer).
    static func reinitialize(_ t: PsrefTarget) { t.draining.store(false, ordering: .releasing) }

    /// Cross-call body (interrupts off, on each CPU): report a reference held here.
    private static func reportHolder(_ raw: UInt64) {
        Unmanaged<PsrefTarget>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!)._withUnsafeGuaranteedRef { t in
            if heldHere(t) { t.holders.bitwiseOr(CPUMask.bit(PerCPU.currentNumber), ordering: .sequentiallyConsistent) }
        }
    }
}
