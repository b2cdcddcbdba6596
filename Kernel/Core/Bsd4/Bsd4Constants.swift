// The bsd4 user scheduler's constants (docs/bsd4-scheduler.md, "Constants"). The
// values are DragonFly's usched_bsd4.c as of 2011 (the batch step, +328 per tick,
// decay 8). Everything here is an integer: the formulas are integer formulas, and
// the kernel build avoids floating point altogether.

/// The four priority classes. The raw value is the run-queue type (`rqtype`):
/// realtime, normal and idle have 32 queues each; thread-class lwps compute a
/// priority but are never queued by this scheduler (DragonFly panics if one is).
public enum Bsd4Class: Int {
    case realtime = 0
    case normal = 1
    case idle = 2
    case thread = 3

    /// The class's first priority: realtime 0, normal 128, idle 256, thread 384.
    var base: Int { rawValue * Bsd4.maxPri }
    /// Realtime, normal and idle have run queues; thread does not.
    var hasRunQueues: Bool { self != .thread }
}

/// Namespace for the constants; names follow DragonFly's macros in lower camel
/// case (MAXPRI is `maxPri`, ESTCPULIM is `estcpuLim`).
public enum Bsd4 {
    /// MAXPRI: priorities inside a class are 0..127.
    static let maxPri = 128
    /// PRIMASK: the priority within a class; `priority & ~priMask` is the class base.
    static let priMask = maxPri - 1
    /// PRIBASE_REALTIME / _NORMAL / _IDLE / _THREAD.
    static let priBaseRealtime = 0
    static let priBaseNormal = maxPri
    static let priBaseIdle = maxPri * 2
    static let priBaseThread = maxPri * 3
    /// PRIBASE_NULL: the `upri` of a CPU with no designated lwp (worse than any
    /// class, so every comparison against it says "this CPU would take work").
    static let priBaseNull = maxPri * 4

    /// NQS: queues per class.
    static let nqs = 32
    /// PPQ: priorities per queue (128 / 32 = 4), and PPQMASK.
    static let ppq = maxPri / nqs
    static let ppqMask = ppq - 1

    /// NICEPPQ: nice units per queue.
    static let nicePPQ = 2
    /// ESTCPUPPQ: estcpu units per queue; ESTCPUMAX = 512 * 32 = 16384.
    static let estcpuPPQ = 512
    static let estcpuMax = estcpuPPQ * nqs

    /// The nice range -20..20 (PRIO_MIN, PRIO_MAX) and PRIO_RANGE = 41.
    public static let prioMin = -20
    public static let prioMax = 20
    static let prioRange = prioMax - prioMin + 1

    /// ESTCPUFREQ: the scheduler clock, 50 Hz (one scheduler tick = 20 ms).
    static let estcpuFreq = 50
    /// What each scheduler tick adds to the running lwp's estcpu:
    /// ESTCPUMAX / ESTCPUFREQ + 1 = 328 (before the ESTCPULIM clamp).
    static let estcpuIncrement = estcpuMax / estcpuFreq + 1
    /// rrinterval: (ESTCPUFREQ + 9) / 10 = 5 scheduler ticks, about 100 ms.
    static let rrInterval = (estcpuFreq + 9) / 10
    /// The decay tunable's default (DragonFly's kern.usched_bsd4.decay); the
    /// recalculation clamps a tuned value into 1...1024 as DragonFly does.
    public static let defaultDecay = 8
    /// BATCHMAX = ESTCPUFREQ * 30 = 1500: 30 s of scheduler ticks.
    static let batchMax = estcpuFreq * 30

    /// ESTCPULIM(v) = min(v, ESTCPUMAX). Without it `p & PRIMASK` in
    /// resetpriority wraps and the worst hog gets the best priority.
    static func estcpuLim(_ v: Int) -> Int { min(v, estcpuMax) }

    /// The queue part of a priority (`priority & ~PPQMASK`): the class base plus
    /// 4 * rqindex. setrunqueue compares CPUs by this value.
    static func queueOf(_ priority: Int) -> Int { priority & ~ppqMask }
    /// The class part of a priority (`priority & ~PRIMASK`): resetpriority's poke
    /// compares by this value.
    static func classOf(_ priority: Int) -> Int { priority & ~priMask }
}
