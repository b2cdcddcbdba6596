import Synchronization

// User-class lwps (DragonFly's struct lwp, the part the bsd4 scheduler uses).
// Until real user mode exists, an lwp is a kernel thread that crosses an
// explicit "return to user" boundary: its body calls Bsd4Scheduler.userret at
// every boundary and runs "user code" only while it is its CPU's designated lwp
// (docs/bsd4-scheduler.md). Who writes what:
//   under bsd4_spin   the run-queue links and fields, priority, estcpu state,
//                     `place`, the totals charged by the scheduler clock
//   the lwp's thread  `progress`, `sleeping`
// An lwp's thread is pulled between CPUs only while it is parked on the run
// queue (Bsd4Scheduler.park): the designated CPU is always the thread's CPU.

final class Lwp: Bsd4Node {
    /// Where the lwp is, for A5 (every lwp in exactly one place).
    enum Place: UInt8 { case kernel, queued, user, exited }

    let id: Int
    let name: StaticString
    var nice: Int          // under bsd4_spin (the monitor's nice changes it)
    let cls: Bsd4Class
    let cpuMask: CPUMask
    /// Set once, right after the thread is created.
    private(set) var thread: Thread! = nil

    // bsd4_spin.
    var rqNext: Lwp? = nil
    var rqPrev: Lwp? = nil
    var rqLevel = -1
    var onRunQ = false
    var rqType: Bsd4Class
    var rqIndex: Int
    var priority: Int
    var est = Bsd4EstcpuState()
    var place = Place.kernel
    /// Scheduler ticks charged to this lwp since it was created (its CPU share).
    var runTicks: UInt64 = 0
    /// recalculate runs that changed something (the sample or slept-long
    /// branch): a CPU hog's come from ASTs and the once-a-second scan.
    var recalcs: UInt64 = 0
    /// The CPU the lwp last ran on: its thread's CPU (a parked thread stays on
    /// the CPU it parked on until a chooser pulls it).
    var lastCPU: Int { thread?.cpu ?? -1 }

    // The lwp's own thread.
    /// Chunks of "user code" run: proof of progress (A5: lost lwps never move).
    let progress = Atomic<UInt64>(0)
    /// In a kernel sleep (the once-a-second scan counts its slptime).
    let sleeping = Atomic<Bool>(false)
    /// Running "user code": set when userret returns, cleared when the next
    /// boundary (userret, a kernel sleep, exit) is entered. A8: a running lwp
    /// with this set is its CPU's uschedcp (checked at every tick).
    let inUser = Atomic<Bool>(false)
    let exited = Atomic<Bool>(false)

    private static let nextID = Atomic<Int>(1)

    init(name: StaticString, nice: Int, cls: Bsd4Class = .normal, cpuMask: CPUMask, estcpu: Int = 0) {
        id = Lwp.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.name = name
        self.nice = max(Bsd4.prioMin, min(Bsd4.prioMax, nice))
        self.cls = cls
        self.cpuMask = cpuMask
        est.estcpu = estcpu
        let p = Bsd4Priority.compute(cls, niceOrRtprio: self.nice, estcpu: estcpu, batch: 0)
        priority = p.priority
        rqIndex = p.rqIndex
        rqType = p.rqType
    }

    /// The identity other CPUs compare against `uschedcp` (never dereferenced
    /// remotely, so a remote reader takes no reference: A4).
    var identity: UInt { UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()) }

    static func from(identity: UInt) -> Lwp {
        Unmanaged<Lwp>.fromOpaque(UnsafeRawPointer(bitPattern: identity)!).takeUnretainedValue()
    }

    func attach(_ td: Thread) {
        thread = td
        td.lwpIdentity = identity
    }
}
