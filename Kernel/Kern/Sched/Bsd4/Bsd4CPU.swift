import Synchronization

// One CPU's bsd4 fields (DragonFly's bsd4_pcpu[]). Who writes what:
//   this CPU only   uschedcp, upri, rrcount, userResched, its curprocmask bit
//                   (A1: every write checks that it runs on the owner; A3:
//                   uschedcp and the curprocmask bit change together, with
//                   interrupts off, so this CPU never sees them disagree)
//   other CPUs      nothing but the request latches below (test-and-set) and
//                   rdyprocmask bits (Bsd4Scheduler)
// Other CPUs read uschedcp and upri as hints (A4): uschedcp is an identity word,
// compared and never dereferenced remotely (a remote retain would race the
// owner's release); a stale value costs at most a spurious request.

final class Bsd4CPU {
    let cpu: Int
    private let uschedcpWord = Atomic<UInt>(0)
    private let upriWord = Atomic<Int>(Bsd4.priBaseNull)
    private let rrcountWord = Atomic<Int>(0)
    /// need_user_resched(): the designated lwp goes through acquire_curproc at
    /// its next return-to-user boundary.
    let userResched = Atomic<Bool>(false)
    /// Latches of the user-resched requests (Bsd4Requests): set by the sender
    /// that sends, cleared by this CPU's handler, so repeats coalesce.
    let reschedPending = Atomic<Bool>(false)
    let wakePending = Atomic<Bool>(false)
    /// The helper thread and its wake-up flag (this CPU, interrupts off).
    var helper: Thread? = nil
    var helperWanted = true

    // Counters of this CPU's own traffic (read by suites and the monitor).
    let requestsReceived = Atomic<UInt64>(0)
    /// Requests whose hint was true when sent and stale on arrival: the lwp the
    /// sender saw designated here no longer is, or upri is no longer worse. The
    /// accepted cost of reading remote fields as hints (seed 000).
    let requestsSpurious = Atomic<UInt64>(0)
    let requestsCoalesced = Atomic<UInt64>(0)
    /// "running" requests whose sender saw the lwp designated here.
    let requestsSawDesignated = Atomic<UInt64>(0)
    let requestsDropped = Atomic<UInt64>(0)
    /// A refused send left a request owed to this CPU: the next tick of any
    /// CPU sends it again (Bsd4Requests.resendOwed), so a sender whose request
    /// coalesced into the refused one is not lost.
    let reschedOwed = Atomic<Bool>(false)
    let wakeOwed = Atomic<Bool>(false)
    let requestsResent = Atomic<UInt64>(0)
    /// A7: set under bsd4_spin by the sweep or chain that offers this CPU work
    /// (and clears its rdyprocmask bit in the same hold); cleared by its helper
    /// just before it sets the bit again. An offer finding it set is a second
    /// offer of the same readiness: two parks picked the same CPU.
    let offered = Atomic<Bool>(false)
    let a7Violations = Atomic<UInt64>(0)
    /// A6: the scheduler tick (Bsd4Scheduler.now) of the last install (select
    /// or helper), -1 after a take or steal (owner only). Checked at each
    /// scheduler tick: rrcount counts no more ticks than passed since.
    var installedAt = -1
    let a6Checks = Atomic<UInt64>(0)
    let a6Violations = Atomic<UInt64>(0)
    /// A8 at every tick: the running lwp, when in user code, is uschedcp.
    let a8Checks = Atomic<UInt64>(0)
    let a8Violations = Atomic<UInt64>(0)
    let helperPasses = Atomic<UInt64>(0)
    /// A3 checks made on this CPU, and the ones that failed.
    let a3Checks = Atomic<UInt64>(0)
    let a3Violations = Atomic<UInt64>(0)
    /// A5 checks of this CPU's designated lwp (Bsd4Clock), and failures.
    let a5Checks = Atomic<UInt64>(0)
    let a5Violations = Atomic<UInt64>(0)

    init(cpu: Int) { self.cpu = cpu }

    /// The designated lwp's identity, or 0 (a hint on any other CPU).
    var uschedcp: UInt { uschedcpWord.load(ordering: .acquiring) }
    var upri: Int { upriWord.load(ordering: .relaxed) }
    var rrcount: Int { rrcountWord.load(ordering: .relaxed) }
    var hasUschedcp: Bool { uschedcp != 0 }

    /// This CPU's designated lwp (owner only: it keeps the lwp alive).
    var designated: Lwp? {
        ownerOnly("uschedcp (dereferenced)")
        let id = uschedcp
        return id == 0 ? nil : Lwp.from(identity: id)
    }

    /// Makes `lp` this CPU's designated lwp (take, steal or install).
    func designate(_ lp: Lwp) {
        ownerOnly("uschedcp")
        let flags = CPU.saveFlagsAndDisableInterrupts()
        uschedcpWord.store(lp.identity, ordering: .releasing)
        upriWord.store(lp.priority, ordering: .relaxed)
        Bsd4Scheduler.curprocmask.bitwiseOr(CPUMask.bit(cpu), ordering: .sequentiallyConsistent)
        CPU.restoreFlags(flags)
    }

    /// No designated lwp: uschedcp nil, upri PRIBASE_NULL, curprocmask bit clear.
    func undesignate() {
        ownerOnly("uschedcp")
        let flags = CPU.saveFlagsAndDisableInterrupts()
        uschedcpWord.store(0, ordering: .releasing)
        upriWord.store(Bsd4.priBaseNull, ordering: .relaxed)
        Bsd4Scheduler.curprocmask.bitwiseAnd(~CPUMask.bit(cpu), ordering: .sequentiallyConsistent)
        CPU.restoreFlags(flags)
    }

    func setUpri(_ p: Int) {
        ownerOnly("upri")
        upriWord.store(p, ordering: .relaxed)
    }

    func setRRCount(_ v: Int) {
        ownerOnly("rrcount")
        rrcountWord.store(v, ordering: .relaxed)
    }

    /// A3 on this CPU (interrupts off, or in the tick): curprocmask bit set <=>
    /// uschedcp non-nil. Never checked for another CPU (A4).
    func checkA3() {
        ownerOnly("A3 check")
        a3Checks.wrappingAdd(1, ordering: .relaxed)
        let bit = Bsd4Scheduler.curprocmask.load(ordering: .relaxed) & CPUMask.bit(cpu) != 0
        if bit != hasUschedcp { a3Violations.wrappingAdd(1, ordering: .relaxed) }
    }

    /// A1: the owner is the only writer.
    @inline(__always)
    private func ownerOnly(_ field: StaticString) {
        let me = PerCPU.currentNumber
        guard me != cpu else { return }
        let owner = cpu
        panic("A1: a CPU touched another CPU's private bsd4 field") { l in
            l.write(field); l.write(" of CPU "); l.dec(owner); l.write(" from CPU "); l.dec(me)
        }
    }
}
