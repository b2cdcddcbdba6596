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
    /// Releases while draining, bumped under `lock`: destroy sleeps only if
    /// no release came since its round looked (no lost wake-up, no polling).
    var releasesWhileDraining: UInt64 = 0
    let lock = SpinLock("psref target")
    init(_ name: StaticString) { self.name = name }
}

/// One passive reference, owned by its holder (NetBSD's `struct psref`, which
/// callers keep on their stack).
final class Psref {
    fileprivate(set) var target: PsrefTarget? = nil
    fileprivate(set) var threadID = 0
    fileprivate(set) var cpu = -1
    /// Taken in an interrupt handler: not counted on the interrupted thread.
    fileprivate var inInterrupt = false
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
    /// B3 needs a holder that cannot move: bound, or preemption disabled.
    private static func mayNotMigrate(_ td: Thread) -> Bool {
        td.critnest > 0 || td.isBound || PerCPU.inInterrupt || SpinlockSection.depth > 0
    }

    static func tryAcquire(_ r: Psref, _ t: PsrefTarget) -> Bool {
        let td = Thread.current
        if !mayNotMigrate(td) {
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
        if !PerCPU.inInterrupt { td.psrefsHeld += 1 }
        r.inInterrupt = PerCPU.inInterrupt
        CPU.restoreFlags(flags)
        acquires.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    static func release(_ r: Psref, _ t: PsrefTarget) {
        // The same rule as acquire: a thread that may migrate between here
        // and the check below would pass it on one CPU and unlink on another.
        if !mayNotMigrate(Thread.current) && !BugKnobs.misuseUnchecked {
            panic("psref_release: the thread may migrate (neither bound nor in a critical section)")
        }
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
        if !r.inInterrupt { Thread.current.psrefsHeld -= 1 }
        CPU.restoreFlags(flags)
        if t.draining.load(ordering: .acquiring) {
            t.lock.withLock { t.releasesWhileDraining &+= 1 }
            Sleep.wakeup(Sleep.channel(t))
        }
    }

    /// True if this CPU holds a reference to `t` (its own list only). Every
    /// entry must have been taken on this CPU: a corruption guard (acquire
    /// links only into its own CPU's list and records that CPU, and release
    /// panics on B3 before it unlinks, so only a write from outside trips it).
    static func heldHere(_ t: PsrefTarget) -> Bool {
        let flags = CPU.saveFlagsAndDisableInterrupts()
        let me = PerCPU.currentNumber
        var n = held![me]
        var found = false
        while let r = n {
            if r.cpu != me {
                let c = r.cpu
                panic("psref: a reference on this CPU's list was taken on another CPU") { l in
                    l.write("list of CPU "); l.dec(me); l.write(", entry of CPU "); l.dec(c)
                }
            }
            if r.target === t { found = true }
            n = r.next
        }
        CPU.restoreFlags(flags)
        return found
    }

    /// psref_target_destroy: no new references from now on; returns once no CPU
    /// holds one. Each round asks every CPU by a cross-call (cpusync); if one
    /// holds a reference, it sleeps until a release wakes it. The sleep is
    /// interlocked with the releases (their count under the target's lock),
    /// so no wake-up is lost and it needs neither the tick nor polling; a
    /// yielding poll would never let a lower-priority holder on this CPU run.
    /// With the tick the sleep is timed (a watchdog: a warning after 1 s, a
    /// named panic after 10 s for a reference that is never released); with
    /// tick=0 a holder left only on other CPUs is polled under the same
    /// watchdog, one on this CPU is waited for untimed (it must run here).
    /// One destroy at a time per target: a second one while the first is
    /// draining would overwrite its round's holder mask (it panics).
    /// Thread context only. Returns the rounds that found a holder.
    @discardableResult
    static func destroy(_ t: PsrefTarget) -> Int {
        if t.draining.exchange(true, ordering: .sequentiallyConsistent) && !BugKnobs.misuseUnchecked {
            // E7: the detail captures plain values, never an object (releasing
            // it before the claim could reach the heap).
            let name = t.name
            panic("psref destroy: the target is already draining (two destroys at once, or no reinitialize)") { l in
                l.write(name)
            }
        }
        // Bound for the whole wait: "a holder on my CPU" is decided from this
        // CPU's number, and must stay true until it is used (a move between
        // the two would poll a holder on the new CPU with yields, which never
        // run a lower-priority one). B1: bound, it cannot change.
        let previous = Binding.bind()
        defer { Binding.unbind(previous) }
        let raw = UInt64(UInt(bitPattern: Unmanaged.passUnretained(t).toOpaque()))
        var waits = 0
        var dog = SpinWatchdog("psref destroy: a passive reference to the target is never released (leaked?)")
        while true {
            let seen = t.lock.withLock { t.releasesWhileDraining }
            t.holders.store(0, ordering: .relaxed)
            CPUSync.run(mask: SMP.online, { p, _ in PassiveRef.reportHolder(p) }, raw)
            let holders = t.holders.load(ordering: .acquiring)
            if holders == 0 { break }
            waits += 1
            dog.check()
            let mine = holders & CPUMask.bit(PerCPU.currentNumber) != 0
            if !Clock.enabled && !mine {
                Scheduler.yield()
                TSC.delay(microseconds: 1000)
                continue
            }
            t.lock.lock()                    // bare: Sleep.sleep(releasing:) drops it once we are queued
            if t.releasesWhileDraining != seen { t.lock.unlock(); continue }
            _ = Sleep.sleep(on: Sleep.channel(t), releasing: t.lock, timeoutTicks: Clock.enabled ? max(1, Clock.hz / 10) : 0)
            t.lock.unlock()
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
