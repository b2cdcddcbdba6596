import Synchronization

// Per-CPU data ("globaldata", after DragonFly's mycpu), reached through GS.
//
// Each CPU's GS base points at a small header inside the page that also holds its
// GDT and TSS (Arch/x86_64/GDT.swift, offsets 0..231). The header is raw memory so
// that assembly and early boot can use it before any Swift object exists:
//
//   gs:0   the CPU's GlobalData object (0 until created)
//   gs:8   CPU number (0 = boot CPU)
//   gs:16  current thread (kernel threads, Kern/Sched/Thread.swift)
//   gs:24  spinlock nesting count      gs:32  RFLAGS saved by the outermost spinlock_enter
//   gs:40  interrupt nesting depth (C1: no context switch while > 0)
//   gs:48  spinlocks held (no context switch while > 0)
//   gs:56  the header's own address (PerCPU.local: one GS read, then plain loads)
//   gs:64  this CPU's IPI target (unretained; 0 until the IPI queues exist)
//
// Rule (A1 style, docs/bsd4-scheduler.md): a CPU writes only its own per-CPU data, except fields that
// are Atomic and documented as written remotely. Remote reads are hints.

enum PerCPUHeader {
    static let offsetInPage = 256
    static let selfObject = 0, cpuNumber = 8, currentThread = 16
    static let spinlockCount = 24, spinlockFlags = 32, interruptDepth = 40, locksHeld = 48
    static let selfAddress = 56, ipiTarget = 64
    static let size = 72
}

/// This CPU's header reached through one GS read (`PerCPU.local`), then plain
/// loads and stores: each GS access is an out-of-line call (Swift has no inline
/// assembly), and the spinlock and critical-section fast paths made a dozen.
/// Like any per-CPU pointer it is valid only while the caller cannot move to
/// another CPU: interrupts off or inside a critical section, and not across a
/// call that may switch threads.
struct LocalHeader {
    let base: UnsafeMutableRawPointer
    @inline(__always) private func field(_ offset: Int) -> UInt64 { base.load(fromByteOffset: offset, as: UInt64.self) }
    @inline(__always) private func setField(_ offset: Int, _ v: UInt64) { base.storeBytes(of: v, toByteOffset: offset, as: UInt64.self) }

    var cpuNumber: Int { Int(truncatingIfNeeded: field(PerCPUHeader.cpuNumber)) }
    var currentThread: UInt64 {
        get { field(PerCPUHeader.currentThread) }
        nonmutating set { setField(PerCPUHeader.currentThread, newValue) }
    }
    /// The GDT and TSS in the same page (Arch/x86_64/GDT.swift).
    var descriptorTables: DescriptorTables { DescriptorTables(existing: base - PerCPUHeader.offsetInPage) }
    var interruptDepth: UInt64 { field(PerCPUHeader.interruptDepth) }
    var ipiTarget: UInt64 { field(PerCPUHeader.ipiTarget) }
    var spinlockCount: UInt64 {
        get { field(PerCPUHeader.spinlockCount) }
        nonmutating set { setField(PerCPUHeader.spinlockCount, newValue) }
    }
    var spinlockFlags: UInt64 {
        get { field(PerCPUHeader.spinlockFlags) }
        nonmutating set { setField(PerCPUHeader.spinlockFlags, newValue) }
    }
    var locksHeld: UInt64 {
        get { field(PerCPUHeader.locksHeld) }
        nonmutating set { setField(PerCPUHeader.locksHeld, newValue) }
    }
}

final class GlobalData {
    let id: Int
    let apicID: UInt32
    let acpiUID: UInt32
    /// The page holding this CPU's GDT, TSS and per-CPU header.
    let archPage: UnsafeMutableRawPointer
    /// True once the CPU runs kernel code on its own stack with its APIC enabled.
    let online = Atomic<Bool>(false)
    /// Local APIC timer ticks taken on this CPU (written by it, read by anyone).
    let ticks = Atomic<UInt64>(0)
    /// Proof of life, written only by this CPU (its tick, and suites' spinning
    /// threads); a stopped CPU's stays frozen (E5, docs/panic.md).
    let heartbeat = Atomic<UInt64>(0)
    /// Timer periods that passed without a tick on this CPU (the TSC between
    /// two ticks spanned more than one period): the vCPU was not running, or
    /// ran with interrupts off, and the periodic timer coalesced its
    /// interrupts. Tick-sampled accounting misses that time (docs/bsd4-scheduler.md,
    /// "The demo's figures").
    let lostTicks = Atomic<UInt64>(0)
    /// TSC at this CPU's last tick (this CPU only).
    var lastTickTSC: UInt64 = 0
    /// TSC when the CPU reported in (for the boot-time report).
    var onlineTSC: UInt64 = 0
    /// Guarded kernel stacks this CPU boots on and takes #DF/NMI/#MC on.
    var bootStack: KernelStacks.Stack? = nil
    var istStacks: (KernelStacks.Stack, KernelStacks.Stack, KernelStacks.Stack)? = nil

    init(id: Int, apicID: UInt32, acpiUID: UInt32, archPage: UnsafeMutableRawPointer) {
        self.id = id
        self.apicID = apicID
        self.acpiUID = acpiUID
        self.archPage = archPage
    }

    var tables: DescriptorTables { DescriptorTables(existing: archPage) }
}

enum PerCPU {
    static let maxCPUs = 64
    /// Every CPU's data, indexed by CPU number. Built completely on the boot CPU
    /// before any AP starts, read-only afterwards (no reallocation under readers).
    nonisolated(unsafe) static var cpus: [GlobalData] = []

    static var count: Int { cpus.count }

    /// Points GS at the header in `archPage` and fills in the raw fields.
    static func installHeader(archPage: UnsafeMutableRawPointer, cpuNumber: Int) {
        let header = archPage + PerCPUHeader.offsetInPage
        header.initializeMemory(as: UInt8.self, repeating: 0, count: PerCPUHeader.size)
        header.storeBytes(of: UInt64(cpuNumber), toByteOffset: PerCPUHeader.cpuNumber, as: UInt64.self)
        header.storeBytes(of: UInt64(UInt(bitPattern: header)), toByteOffset: PerCPUHeader.selfAddress, as: UInt64.self)
        GSBase.set(UInt64(UInt(bitPattern: header)))
    }

    /// Links the calling CPU's header to its GlobalData object.
    static func attach(_ cpu: GlobalData) {
        GSBase.write(PerCPUHeader.selfObject, UInt64(UInt(bitPattern: Unmanaged.passUnretained(cpu).toOpaque())))
        // The IPI queues exist by now (SMP.start makes them before attaching
        // any CPU); the outermost critical_exit polls this CPU's through here.
        if cpu.id < IPIQueue.targets.count {
            GSBase.write(PerCPUHeader.ipiTarget, UInt64(UInt(bitPattern: Unmanaged.passUnretained(IPIQueue.targets[cpu.id]).toOpaque())))
        }
    }

    /// The calling CPU's header (see LocalHeader for when it stays valid).
    @inline(__always)
    static var local: LocalHeader {
        LocalHeader(base: UnsafeMutableRawPointer(bitPattern: UInt(GSBase.read(PerCPUHeader.selfAddress)))!)
    }

    /// The calling CPU's number; valid from the first line of kmain on.
    static var currentNumber: Int { Int(truncatingIfNeeded: GSBase.read(PerCPUHeader.cpuNumber)) }

    /// The calling CPU's data. Only valid after `attach` on this CPU.
    static var current: GlobalData {
        let raw = GSBase.read(PerCPUHeader.selfObject)
        precondition(raw != 0, "per-CPU data used before it was attached")
        return Unmanaged<GlobalData>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
    }

    static var currentIfAttached: GlobalData? {
        let raw = GSBase.read(PerCPUHeader.selfObject)
        guard raw != 0 else { return nil }
        return Unmanaged<GlobalData>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
    }

    static var interruptDepth: Int { Int(GSBase.read(PerCPUHeader.interruptDepth)) }

    /// Counts interrupt nesting on every trap (invariant C1 reads it: no context
    /// switch while the depth is non-zero), and runs every handler inside a RAW
    /// critical section (the seed-002 fix, applied to all interrupts): a handler
    /// that takes and releases a spinlock can never bring critnest to 0 with
    /// owepreempt set and switch before its EOI, even if it interrupted a
    /// critical_exit in its window. Preemptions a handler requests stay owed and
    /// are taken here, on the way out, back in thread context. The rendezvous
    /// vector is exempt (its depth is still counted): the rendezvous action
    /// routine raises critnest itself, so that its own fix is what is tested
    /// (Kern/SMP/Rendezvous.swift, bug.rendezvous_plain_critical).
    static func installInterruptAccounting() {
        Traps.enter = { frame in
            guard !PerCPU.istVector(frame.pointee.vector) else { return }
            GSBase.write(PerCPUHeader.interruptDepth, GSBase.read(PerCPUHeader.interruptDepth) &+ 1)
            // Every handler runs in a raw section (C2, docs/critical-sections.md).
            // Only the rendezvous controls exempt its vector, so that the action
            // routine's plain section (or none) can put the seed-002 bug back.
            if !exemptFromRawSection(frame.pointee.vector) { CriticalSection.enterRaw() }
        }
        Traps.exit = { frame in
            guard !PerCPU.istVector(frame.pointee.vector) else { return }
            if !exemptFromRawSection(frame.pointee.vector) { CriticalSection.exitRaw() }
            let depth = GSBase.read(PerCPUHeader.interruptDepth) &- 1
            GSBase.write(PerCPUHeader.interruptDepth, depth)
            if depth == 0 {
                Scheduler.preemptOnInterruptReturn(vector: frame.pointee.vector, interruptedFlags: frame.pointee.rflags)
            }
        }
    }
    static var inInterrupt: Bool { interruptDepth > 0 }
    @inline(__always)
    static func exemptFromRawSection(_ v: UInt64) -> Bool {
        (BugKnobs.rendezvousPlainCritical || BugKnobs.rendezvousNoCritical) && v == UInt64(Vectors.rendezvous)
    }

    /// NMI, #DF and #MC run on their own IST stacks and may arrive anywhere
    /// (inside a switch, a spinlock section, another handler): their path touches
    /// no thread or scheduler state, so the trap accounting leaves them alone.
    /// They never switch; the way out never preempts (InterruptReturn); a stopped
    /// CPU's dump row shows what it was doing, not the NMI.
    static func istVector(_ v: UInt64) -> Bool { v == 2 || v == 8 || v == 18 }
    static var locksHeld: Int { Int(GSBase.read(PerCPUHeader.locksHeld)) }
}

/// The calling CPU's data (DragonFly's `mycpu`).
var mycpu: GlobalData { PerCPU.current }
