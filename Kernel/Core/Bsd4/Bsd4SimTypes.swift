// The simulator's inputs and outputs (Bsd4Simulator.swift runs them): a
// workload of lwps with a class, a nice or rtprio, a CPU/sleep pattern and a CPU
// mask; per-lwp results, a time series and counters. Public because the host
// tool (scripts/schedsim) builds workloads and prints results; integers only.

/// What an lwp does with the CPU.
public enum Bsd4SimPattern: Equatable {
    /// Always runnable (a CPU hog).
    case hog
    /// Runs `runMs` of CPU, then sleeps `sleepMs`, over and over.
    case periodic(runMs: Int, sleepMs: Int)
}

/// One lwp of a workload.
public struct Bsd4SimLwpSpec: Equatable {
    public var cls: Bsd4Class = .normal
    /// nice (-20...20) for the normal class, rtprio (0...31) for the others.
    public var niceOrRtprio = 0
    public var pattern: Bsd4SimPattern = .hog
    /// The CPUs it may use (intersected with the simulated ones).
    var cpuMask = CPUMask(bits: UInt64.max)
    /// When it is created, in ms.
    public var startMs = 0

    /// The CPU mask as a word (bit c = CPU c), for code outside Core.
    public var cpuMaskBits: UInt64 {
        get { cpuMask.bits }
        set { cpuMask = CPUMask(bits: newValue) }
    }

    public init(cls: Bsd4Class = .normal, niceOrRtprio: Int = 0, pattern: Bsd4SimPattern = .hog,
                cpuMaskBits: UInt64 = UInt64.max, startMs: Int = 0) {
        self.cls = cls
        self.niceOrRtprio = niceOrRtprio
        self.pattern = pattern
        self.cpuMask = CPUMask(bits: cpuMaskBits)
        self.startMs = startMs
    }
}

public struct Bsd4SimWorkload: Equatable {
    public var cpus = 1
    public var durationMs = 60_000
    public var decay = Bsd4.defaultDecay
    /// The time series' period; at most 1000 and a divisor of it.
    public var sampleMs = 100
    public var lwps: [Bsd4SimLwpSpec] = []

    public init(cpus: Int = 1, durationMs: Int = 60_000, decay: Int = Bsd4.defaultDecay, sampleMs: Int = 100,
         lwps: [Bsd4SimLwpSpec] = []) {
        self.cpus = cpus
        self.durationMs = durationMs
        self.decay = decay
        self.sampleMs = sampleMs
        self.lwps = lwps
    }
}

/// Where an lwp is (A5: every lwp is in exactly one of these).
enum Bsd4SimState: Equatable {
    case notStarted
    /// The uschedcp of this CPU, running in user mode.
    case running(cpu: Int)
    case queued
    case sleeping(untilMs: Int)
    /// Released and on its way back to user mode (acquire_curproc): only ever
    /// seen inside a step.
    case inKernel
}

final class Bsd4SimLwp: Bsd4Node {
    let id: Int
    let spec: Bsd4SimLwpSpec
    var rqNext: Bsd4SimLwp?
    var rqPrev: Bsd4SimLwp?
    var rqLevel = -1
    var onRunQ = false
    var rqType: Bsd4Class
    var rqIndex = 0
    var priority = 0
    let cpuMask: CPUMask
    var lastCPU = 0
    var est = Bsd4EstcpuState()
    var state = Bsd4SimState.notStarted
    /// ms of CPU left in the current burst (periodic lwps).
    var burstLeft = 0
    var cpuMs = 0

    init(id: Int, spec: Bsd4SimLwpSpec, cpus: Int) {
        self.id = id
        self.spec = spec
        self.rqType = spec.cls
        self.cpuMask = spec.cpuMask.intersection(CPUMask.first(cpus))
    }
}

/// Counts of what happened, for the report.
public struct Bsd4SimCounters: Equatable {
    /// An lwp made a CPU's uschedcp by select_curproc or the helper.
    public var installs = 0
    /// acquire_curproc displaced a worse uschedcp.
    public var steals = 0
    /// Round-robin reschedules asked by the scheduler clock.
    public var roundRobin = 0
    /// resetpriority pokes: local need_user_resched / remote IPI.
    public var pokesLocal = 0
    public var pokesRemote = 0
    /// setrunqueue deliveries to other CPUs: user-resched IPI / helper wake-up.
    public var remoteResched = 0
    public var remoteWakeHelper = 0
    public var helperPasses = 0
    /// Helper passes that chained work on to a free CPU.
    public var chains = 0
    /// Recalculations that took the "slept more than a second" branch.
    public var sleptLong = 0
    /// Remote pokes and IPIs after which the target's helper installed nothing
    /// (it kept its uschedcp, or found nothing it may run): the harmless
    /// "spurious" IPIs the rule accepts.
    public var spuriousIPIs = 0
}

public struct Bsd4SimLwpResult: Equatable {
    public var cpuMs: Int
    /// The final priority, and its queue inside the class (rqindex).
    public var priority: Int
    public var rqIndex: Int
    public var estcpu: Int
    public var batch: Int
}

public struct Bsd4SimSample: Equatable {
    public var timeMs: Int
    /// Each lwp's priority at that moment.
    public var priority: [Int]
    /// Each lwp's CPU use over the last second (or since the start), in
    /// thousandths of one CPU.
    public var cpuPermille: [Int]
}

public struct Bsd4SimResult: Equatable {
    public var workload: Bsd4SimWorkload
    public var lwps: [Bsd4SimLwpResult]
    public var samples: [Bsd4SimSample]
    public var counters: Bsd4SimCounters
    /// The first invariant violation seen (when checking was on), or nil.
    public var violation: String?

    /// lwp i's CPU time in thousandths of one CPU over the whole run (like
    /// top's %CPU, times 10).
    public func cpuPermille(_ i: Int) -> Int {
        workload.durationMs == 0 ? 0 : lwps[i].cpuMs * 1000 / workload.durationMs
    }
    /// lwp i's share of the machine (all CPUs), in thousandths.
    public func machinePermille(_ i: Int) -> Int {
        let capacity = workload.durationMs * workload.cpus
        return capacity == 0 ? 0 : lwps[i].cpuMs * 1000 / capacity
    }
}
