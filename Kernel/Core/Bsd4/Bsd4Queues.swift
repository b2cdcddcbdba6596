// The bsd4 run queues (docs/bsd4-scheduler.md, "Data"): for each of the realtime,
// normal and idle classes, 32 FIFO lists and a 32-bit word with bit i set exactly
// when list i is non-empty; insert at the tail, take from the head; pick order is
// realtime, then normal, then idle, and inside a class the lowest set bit. Each
// class is a RunQueue (intrusive links, O(1) insert and remove); this type adds
// the ONRUNQ / rqtype / rqindex bookkeeping, runqcount, and the A2 check.
//
// No locking: every method runs under the caller's bsd4_spin (the kernel glue
// owns the lock; the host drives it single-threaded).

/// An lwp as the run queues see it. The run queue owns the links, `rqLevel`,
/// `onRunQ`; resetpriority (through `reposition`) owns `priority`, `rqType` and
/// `rqIndex`; the rest belongs to the caller.
protocol Bsd4Node: RunQueueNode {
    /// LWP_MP_ONRUNQ: set exactly while the lwp is on one of the lists.
    var onRunQ: Bool { get set }
    /// The class of the list the lwp belongs on (lwp_rqtype).
    var rqType: Bsd4Class { get set }
    /// The list inside the class, 0..31 (lwp_rqindex).
    var rqIndex: Int { get set }
    /// The full priority (lwp_priority): lower is better.
    var priority: Int { get set }
    /// The CPUs the lwp may run on.
    var cpuMask: CPUMask { get }
    /// The CPU the lwp's thread is on, i.e. where it last ran (td_gd).
    var lastCPU: Int { get }
}

/// The first A2 violation found: what is wrong, and where (class, list index,
/// position in the list from 0, or the two numbers that disagree).
struct Bsd4QueueViolation: Equatable {
    enum Kind: UInt8, Equatable {
        case bitWithoutList
        case listWithoutBit
        case brokenLinks
        case notOnRunQ
        case wrongType
        case wrongIndex
        case countMismatch

        var reason: StaticString {
            switch self {
            case .bitWithoutList: return "summary bit set for an empty list"
            case .listWithoutBit: return "non-empty list with its summary bit clear"
            case .brokenLinks: return "list links or recorded level inconsistent"
            case .notOnRunQ: return "queued lwp without ONRUNQ"
            case .wrongType: return "queued lwp's rqtype is not its list's class"
            case .wrongIndex: return "queued lwp's rqindex is not its list's index"
            case .countMismatch: return "runqcount differs from the total length of the lists"
            }
        }
    }

    var kind: Kind
    /// The class (rqtype raw value), or -1 for countMismatch.
    var rqType: Int
    /// The list index; for countMismatch, runqcount as recorded.
    var index: Int
    /// The position in the list; for countMismatch, the counted total.
    var position: Int

    /// A line for a host log ("A2: ... (class 1, list 6, position 0)").
    var description: String {
        var s = "A2: "
        s += kind.reason.description
        if kind == .countMismatch {
            s += " (runqcount \(index), lists hold \(position))"
        } else {
            s += " (class \(rqType), list \(index), position \(position))"
        }
        return s
    }
}

struct Bsd4RunQueues<Node: Bsd4Node> {
    private var realtime = RunQueue<Node>()
    private var normal = RunQueue<Node>()
    private var idle = RunQueue<Node>()
    /// bsd4_runqcount: lwps on the lists. Kept separately from the lists (as
    /// DragonFly does) so that the A2 check compares two independent numbers.
    private(set) var runqcount = 0

    init() {}

    /// bsd4_rtqueuebits, bsd4_queuebits, bsd4_idqueuebits.
    func bits(_ cls: Bsd4Class) -> UInt32 {
        switch cls {
        case .realtime: return realtime.mask
        case .normal: return normal.mask
        case .idle: return idle.mask
        case .thread: return 0
        }
    }

    /// The head of list `index` of class `cls`, without removing it.
    func head(_ cls: Bsd4Class, _ index: Int) -> Node? {
        switch cls {
        case .realtime: return realtime.head(level: index)
        case .normal: return normal.head(level: index)
        case .idle: return idle.head(level: index)
        case .thread: return nil
        }
    }

    private mutating func withQueue<R>(_ cls: Bsd4Class, _ body: (inout RunQueue<Node>) -> R) -> R {
        switch cls {
        case .realtime: return body(&realtime)
        case .normal: return body(&normal)
        case .idle: return body(&idle)
        case .thread: preconditionFailure("bsd4: thread-class lwps are never queued")
        }
    }

    /// setrunqueue_locked: appends `lp` at the tail of list lp.rqIndex of class
    /// lp.rqType (as resetpriority last computed them), sets ONRUNQ, ++runqcount.
    /// O(1).
    mutating func insert(_ lp: Node) {
        precondition(!lp.onRunQ, "bsd4: lwp already on a run queue")
        precondition(lp.rqType.hasRunQueues, "bsd4: thread-class lwps are never queued")
        precondition(lp.rqIndex >= 0 && lp.rqIndex < Bsd4.nqs, "bsd4: rqindex out of range")
        let index = lp.rqIndex
        withQueue(lp.rqType) { $0.enqueue(lp, level: index) }
        lp.onRunQ = true
        runqcount += 1
    }

    /// remrunqueue_locked: unlinks `lp` from its list (clearing the bit when the
    /// list empties), clears ONRUNQ, --runqcount. O(1).
    mutating func remove(_ lp: Node) {
        precondition(lp.onRunQ, "bsd4: lwp not on a run queue")
        withQueue(lp.rqType) { $0.remove(lp) }
        lp.onRunQ = false
        runqcount -= 1
    }

    /// The lwp chooseproc would start from on CPU `cpu`: the first lwp allowed on
    /// `cpu` in pick order (realtime, normal, idle; lowest set bit first; FIFO
    /// inside a list). Not removed.
    ///
    /// Cost: when the head of the best non-empty list may run on `cpu` (always,
    /// when no lwp restricts its CPUs) this is O(1): three word tests, one
    /// trailing-zero count, one load. Otherwise it walks that list, as DragonFly's
    /// chooseproc does, and moves on to the next non-empty list when none in it
    /// is allowed: the bound is O(number of queued lwps not allowed on `cpu` that
    /// come before the answer in pick order + number of non-empty lists, <= 96).
    /// Mutating only so that it reads the lists in place (RunQueue.headInPlace):
    /// it changes nothing.
    mutating func best(allowedOn cpu: Int) -> Node? {
        for raw in 0..<3 {   // no array literal: this runs at every switch
            let cls = Bsd4Class(rawValue: raw)!
            var b = bits(cls)
            while b != 0 {
                let index = b.trailingZeroBitCount
                var n = withQueue(cls) { $0.headInPlace(level: index) }
                while let lp = n {
                    if lp.cpuMask.contains(cpu) { return lp }
                    n = lp.rqNext
                }
                b &= b &- 1
            }
        }
        return nil
    }

    /// resetpriority's store: records `new` in `lp`. When the queue did not
    /// change ((old ^ new) & ~PPQMASK == 0) only the priority is stored. When it
    /// changed, a queued lwp is moved to the tail of its new list (checkpri 1)
    /// and an lwp that is not queued only gets its fields (checkpri 0). The
    /// caller then asks Bsd4Poke.decide about a poke.
    mutating func reposition(_ lp: Node, to new: Bsd4Priority) -> Bsd4Reset {
        guard Bsd4Priority.queueChanged(old: lp.priority, new: new.priority) else {
            lp.priority = new.priority
            return Bsd4Reset(queueChanged: false, checkpri: 1)
        }
        lp.priority = new.priority
        if lp.onRunQ {
            remove(lp)
            lp.rqType = new.rqType
            lp.rqIndex = new.rqIndex
            insert(lp)
            return Bsd4Reset(queueChanged: true, checkpri: 1)
        }
        lp.rqType = new.rqType
        lp.rqIndex = new.rqIndex
        return Bsd4Reset(queueChanged: true, checkpri: 0)
    }

    /// A2, in full: for every class and list, the summary bit is set exactly when
    /// the list is non-empty; the links are consistent; every listed lwp carries
    /// ONRUNQ, the list's class as rqtype and the list's index as rqindex; and
    /// runqcount equals the total length. Returns the first violation, or nil.
    /// O(queued lwps); meant for tests and torture checks, not the fast path.
    func checkA2() -> Bsd4QueueViolation? {
        var total = 0
        for raw in 0..<3 {
            let cls = Bsd4Class(rawValue: raw)!
            let b = bits(cls)
            for index in 0..<Bsd4.nqs {
                let bit = b & (1 << UInt32(index)) != 0
                var n = head(cls, index)
                if bit && n == nil {
                    return Bsd4QueueViolation(kind: .bitWithoutList, rqType: cls.rawValue, index: index, position: 0)
                }
                if !bit && n != nil {
                    return Bsd4QueueViolation(kind: .listWithoutBit, rqType: cls.rawValue, index: index, position: 0)
                }
                var position = 0
                var prev: Node? = nil
                while let lp = n {
                    if lp.rqPrev !== prev || lp.rqLevel != index {
                        return Bsd4QueueViolation(kind: .brokenLinks, rqType: cls.rawValue, index: index, position: position)
                    }
                    if !lp.onRunQ {
                        return Bsd4QueueViolation(kind: .notOnRunQ, rqType: cls.rawValue, index: index, position: position)
                    }
                    if lp.rqType != cls {
                        return Bsd4QueueViolation(kind: .wrongType, rqType: cls.rawValue, index: index, position: position)
                    }
                    if lp.rqIndex != index {
                        return Bsd4QueueViolation(kind: .wrongIndex, rqType: cls.rawValue, index: index, position: position)
                    }
                    position += 1
                    total += 1
                    // A cycle would never end: more nodes than runqcount + 1 is proof enough.
                    if total > runqcount {
                        return Bsd4QueueViolation(kind: .countMismatch, rqType: -1, index: runqcount, position: total)
                    }
                    prev = lp
                    n = lp.rqNext
                }
            }
        }
        if total != runqcount {
            return Bsd4QueueViolation(kind: .countMismatch, rqType: -1, index: runqcount, position: total)
        }
        if !realtime.check() || !normal.check() || !idle.check() {
            return Bsd4QueueViolation(kind: .brokenLinks, rqType: -1, index: 0, position: 0)
        }
        return nil
    }
}
