// A deterministic discrete-time simulation of the bsd4 scheduler: N lwps on M
// CPUs, driven through the same functions the kernel glue will call
// (docs/bsd4-scheduler.md). Host-oriented: it allocates (arrays for lwps, CPUs and
// the time series), so the kernel never calls it per tick; it is in Core so that
// XCTest and `swift run schedsim` share it.
//
// Model, one step per millisecond, in this order:
//  1. lwps whose start time came are forked (from an idle parent on CPU 0) and
//     setrunqueue'd from CPU 0;
//  2. sleepers whose sleep ended wake on the CPU their thread is on: the sleep
//     path runs the "slept > 1 s" recalculation, then acquire_curproc there;
//  3. helper threads that were woken (by setrunqueue, a poke or a chain) run one
//     pass each, CPU 0 first;
//  4. CPUs with a pending user reschedule and a uschedcp: that lwp goes through
//     acquire_curproc (the way back to user mode): round robin and demotion;
//  5. every CPU runs its uschedcp for the millisecond; an lwp whose burst ended
//     goes to sleep (release_curproc, which selects the next one);
//  6. every 20 ms, the scheduler clock on each CPU for the lwp it holds
//     (cpticks, rrcount, +328 estcpu, resetpriority);
//  7. every 1000 ms, the scan on CPU 0: sleepers count a second of slptime, and
//     every lwp that slept <= 1 s is recalculated;
//  8. every `sampleMs`, a sample of each lwp's priority and recent CPU use.
// Messages between CPUs (IPIs, helper wake-ups) take effect at the next step.
// All CPUs' scheduler clocks tick at the same instant, so a periodic lwp whose
// bursts always fall between two ticks is never charged (a sampling clock's blind
// spot, kept rather than hidden). Nothing is random: the same workload gives the
// same result, to the millisecond.
//
// Choices where the description leaves room: every function that touches CPU c's
// uschedcp/upri/rrcount takes the CPU it runs on and only writes that CPU's
// fields (A1 by construction; other CPUs are only sent messages). An lwp that
// acquire_curproc displaces goes back to the run queue at once (setrunqueue),
// and so does, through its own acquire_curproc, a uschedcp the helper replaced.
// New lwps are forked by a parent with estcpu 0 (child: estcpu 2048, batch 750).

public final class Bsd4Simulator {
    static let tickMs = 1000 / Bsd4.estcpuFreq

    let workload: Bsd4SimWorkload
    let ncpus: Int
    private(set) var lwps: [Bsd4SimLwp] = []
    private var queues = Bsd4RunQueues<Bsd4SimLwp>()
    private(set) var pcpu: [Bsd4PerCPU]
    private var needResched: [Bool]
    private var helperWoken: [Bool]
    /// Remote resched requests not yet consumed by the target's helper.
    private var ipiPending: [Bool]
    private(set) var curprocmask = CPUMask()
    private(set) var rdyprocmask: CPUMask
    private(set) var scancpu = 0
    private(set) var nowMs = 0
    private(set) var schedTick = 0
    private(set) var counters = Bsd4SimCounters()
    private var samples: [Bsd4SimSample] = []
    private var cpuAtSample: [[Int]] = []
    /// Check A2, A3 and A5 after every `checkEveryMs`-th step; 0 never. The
    /// check walks every list, so 1 is slow for long runs in a debug build.
    public var checkEveryMs = 0
    private(set) var violation: String?

    public init(_ workload: Bsd4SimWorkload) {
        precondition(workload.cpus >= 1 && workload.cpus <= CPUMask.capacity, "bsd4 sim: 1...64 CPUs")
        precondition(workload.sampleMs >= 1 && 1000 % workload.sampleMs == 0,
                     "bsd4 sim: the sample period must divide 1000 ms")
        self.workload = workload
        ncpus = workload.cpus
        pcpu = Array(repeating: Bsd4PerCPU(), count: ncpus)
        needResched = Array(repeating: false, count: ncpus)
        helperWoken = Array(repeating: false, count: ncpus)
        ipiPending = Array(repeating: false, count: ncpus)
        // Every helper starts ready (DragonFly sets each CPU's rdyprocmask bit
        // when it creates the helper).
        rdyprocmask = CPUMask.first(ncpus)
        for (i, spec) in workload.lwps.enumerated() {
            lwps.append(Bsd4SimLwp(id: i, spec: spec, cpus: ncpus))
        }
        cpuAtSample.append(Array(repeating: 0, count: lwps.count))
    }

    /// Runs the whole workload and returns the result.
    public func run() -> Bsd4SimResult {
        while nowMs < workload.durationMs { step() }
        return result
    }

    public var result: Bsd4SimResult {
        Bsd4SimResult(workload: workload,
                      lwps: lwps.map { Bsd4SimLwpResult(cpuMs: $0.cpuMs, priority: $0.priority, rqIndex: $0.rqIndex,
                                                        estcpu: $0.est.estcpu, batch: $0.est.batch) },
                      samples: samples, counters: counters, violation: violation)
    }

    /// One millisecond (the numbered steps of the header comment).
    func step() {
        for lp in lwps where lp.state == .notStarted && lp.spec.startMs <= nowMs { start(lp) }
        for lp in lwps {
            if case .sleeping(let until) = lp.state, until <= nowMs { wake(lp) }
        }
        for c in 0..<ncpus where helperWoken[c] { helperPass(c) }
        for c in 0..<ncpus where needResched[c] {
            if let id = pcpu[c].uschedcp { acquire(lwps[id], on: c) }
        }
        for c in 0..<ncpus { execute(c) }

        nowMs += 1
        if nowMs % Self.tickMs == 0 {
            schedTick += 1
            for c in 0..<ncpus { if let id = pcpu[c].uschedcp { schedulerClock(lwps[id], on: c) } }
        }
        if nowMs % 1000 == 0 { scan() }
        if nowMs % workload.sampleMs == 0 { sample() }
        if checkEveryMs > 0 && nowMs % checkEveryMs == 0 && violation == nil { violation = invariantViolation() }
    }

    // MARK: lwp life

    private func start(_ lp: Bsd4SimLwp) {
        // Forked by an idle parent (estcpu 0) running on CPU 0.
        let f = Bsd4Estcpu.fork(parentEstcpu: 0)
        lp.est = Bsd4EstcpuState(estcpu: f.childEstcpu, batch: f.childBatch, cpbase: schedTick)
        let p = Bsd4Priority.compute(lp.spec.cls, niceOrRtprio: lp.spec.niceOrRtprio,
                                     estcpu: lp.est.estcpu, batch: lp.est.batch)
        lp.priority = p.priority
        lp.rqType = p.rqType
        lp.rqIndex = p.rqIndex
        lp.lastCPU = 0
        if case .periodic(let run, _) = lp.spec.pattern { lp.burstLeft = run }
        setrunqueue(lp, here: 0)
    }

    private func wake(_ lp: Bsd4SimLwp) {
        let c = lp.lastCPU
        if lp.est.slptime > 1 { recalculate(lp, here: c) }
        lp.est.slptime = 0
        if case .periodic(let run, _) = lp.spec.pattern { lp.burstLeft = run }
        acquire(lp, on: c)
    }

    private func execute(_ c: Int) {
        guard let id = pcpu[c].uschedcp else { return }
        let lp = lwps[id]
        lp.cpuMs += 1
        guard case .periodic(_, let sleep) = lp.spec.pattern else { return }
        lp.burstLeft -= 1
        if lp.burstLeft <= 0 {
            lp.state = .sleeping(untilMs: nowMs + 1 + sleep)
            release(lp, on: c)
        }
    }

    // MARK: the scheduler's entry points

    /// resetpriority's store, move and poke, run on CPU `here`.
    private func resetpriority(_ lp: Bsd4SimLwp, to p: Bsd4Priority, here: Int) {
        let target = lp.lastCPU
        let r = queues.resetpriority(lp, to: p, target: target, thisCPU: here,
                                     targetDesignatesLwp: pcpu[target].uschedcp == lp.id,
                                     targetReady: rdyprocmask.contains(target), targetUpri: pcpu[target].upri)
        if let u = r.ownUpri { pcpu[here].upri = u }
        switch r.poke {
        case .none: break
        case .local:
            needResched[here] = true
            counters.pokesLocal += 1
        case .remote(let t):
            rdyprocmask.remove(t)
            sendResched(t)
            counters.pokesRemote += 1
        }
    }

    /// need_user_resched_remote arriving at CPU t: a user reschedule and a
    /// helper wake-up.
    private func sendResched(_ t: Int) {
        needResched[t] = true
        helperWoken[t] = true
        ipiPending[t] = true
    }

    private func recalculate(_ lp: Bsd4SimLwp, here: Int) {
        apply(Bsd4Estcpu.recalculate(lp.est, now: schedTick, runqcount: queues.runqcount, ncpus: ncpus,
                                     cls: lp.spec.cls, niceOrRtprio: lp.spec.niceOrRtprio, decay: workload.decay),
              to: lp, here: here)
    }

    private func apply(_ r: Bsd4Recalculation, to lp: Bsd4SimLwp, here: Int) {
        lp.est = r.state
        if r.kind == .sleptLong { counters.sleptLong += 1 }
        if let p = r.priority { resetpriority(lp, to: p, here: here) }
    }

    private func schedulerClock(_ lp: Bsd4SimLwp, on c: Int) {
        let t = Bsd4SchedulerClock.tick(lp.est, rrcount: pcpu[c].rrcount, cls: lp.spec.cls,
                                        niceOrRtprio: lp.spec.niceOrRtprio)
        pcpu[c].rrcount = t.rrcount
        if t.resched {
            needResched[c] = true
            counters.roundRobin += 1
        }
        lp.est = t.state
        resetpriority(lp, to: t.priority, here: c)
    }

    /// DragonFly's schedcpu_stats, on CPU 0.
    private func scan() {
        for lp in lwps where lp.state != .notStarted {
            var asleep = false
            if case .sleeping = lp.state { asleep = true }
            let s = Bsd4ScanStep.decide(lp.est, asleep: asleep, secondTick: true, now: schedTick,
                                        runqcount: queues.runqcount, ncpus: ncpus, cls: lp.spec.cls,
                                        niceOrRtprio: lp.spec.niceOrRtprio, decay: workload.decay)
            lp.est = s.state
            if let r = s.recalculation { apply(r, to: lp, here: 0) }
        }
    }

    private func install(_ lp: Bsd4SimLwp, on c: Int) {
        curprocmask.insert(c)
        pcpu[c] = Bsd4Designation.install.apply(to: pcpu[c], lwp: lp.id, priority: lp.priority)
        lp.state = .running(cpu: c)
        lp.lastCPU = c
        counters.installs += 1
    }

    /// acquire_curproc(lp) on CPU c.
    private func acquire(_ lp: Bsd4SimLwp, on c: Int) {
        recalculate(lp, here: c)
        if needResched[c] {
            needResched[c] = false
            release(lp, on: c)
        }
        let cur = pcpu[c].uschedcp
        switch Bsd4AcquireStep.decide(lpIsUschedcp: cur == lp.id, hasUschedcp: cur != nil,
                                      upri: pcpu[c].upri, lwpPriority: lp.priority) {
        case .alreadyCurrent:
            pcpu[c].upri = lp.priority
        case .take:
            curprocmask.insert(c)
            pcpu[c] = Bsd4Designation.take.apply(to: pcpu[c], lwp: lp.id, priority: lp.priority)
            lp.state = .running(cpu: c)
            lp.lastCPU = c
        case .steal:
            let old = lwps[cur!]
            pcpu[c] = Bsd4Designation.steal.apply(to: pcpu[c], lwp: lp.id, priority: lp.priority)
            lp.state = .running(cpu: c)
            lp.lastCPU = c
            counters.steals += 1
            setrunqueue(old, here: c)
        case .queue:
            lp.lastCPU = c
            setrunqueue(lp, here: c)
        }
    }

    /// release_curproc(lp) on CPU c.
    private func release(_ lp: Bsd4SimLwp, on c: Int) {
        guard pcpu[c].uschedcp == lp.id else { return }
        pcpu[c] = pcpu[c].released()
        curprocmask.remove(c)
        if case .running = lp.state { lp.state = .inKernel }
        if case .take(let nlp) = queues.chooseproc(cpu: c, current: nil) { install(nlp, on: c) }
    }

    /// setrunqueue(lp), run on CPU `here`.
    private func setrunqueue(_ lp: Bsd4SimLwp, here: Int) {
        queues.insert(lp)
        lp.state = .queued
        scancpu += 1
        let d = Bsd4SetrunqueueDecision.decide(lwpPriority: lp.priority, lwpMask: lp.cpuMask, scancpu: scancpu,
                                               ncpus: ncpus, online: CPUMask.first(ncpus), thisCPU: here,
                                               thisHasUschedcp: pcpu[here].uschedcp != nil,
                                               curprocmask: curprocmask, rdyprocmask: rdyprocmask,
                                               upri: { pcpu[$0].upri })
        if let t = d.claim { rdyprocmask.remove(t) }
        switch d.delivery {
        case .nothing: break
        case .localWakeHelper: helperWoken[here] = true
        case .localResched: needResched[here] = true
        case .remoteResched(let t):
            sendResched(t)
            counters.remoteResched += 1
        case .remoteWakeHelper(let t):
            helperWoken[t] = true
            counters.remoteWakeHelper += 1
        }
    }

    /// One pass of CPU c's helper thread.
    private func helperPass(_ c: Int) {
        helperWoken[c] = false
        counters.helperPasses += 1
        let wasIPI = ipiPending[c]
        ipiPending[c] = false
        rdyprocmask.insert(c)
        needResched[c] = false
        pcpu[c].rrcount = 0
        let cur = pcpu[c].uschedcp.map { lwps[$0] }
        let pass = queues.helperPass(cpu: c, current: cur, curprocmask: curprocmask, rdyprocmask: rdyprocmask,
                                     ncpus: ncpus)
        if let nlp = pass.install {
            install(nlp, on: c)
            if let cur {
                // The displaced lwp finds out on its way back to user mode.
                cur.state = .inKernel
                acquire(cur, on: c)
            }
        } else if wasIPI {
            counters.spuriousIPIs += 1
        }
        if let t = pass.chain {
            rdyprocmask.remove(t)
            helperWoken[t] = true
            counters.chains += 1
        }
    }

    // MARK: observation

    private func sample() {
        let now = lwps.map { $0.cpuMs }
        cpuAtSample.append(now)
        let back = min(1000 / workload.sampleMs, cpuAtSample.count - 1)
        let window = max(1, back * workload.sampleMs)
        let then = cpuAtSample[cpuAtSample.count - 1 - max(1, back)]
        samples.append(Bsd4SimSample(timeMs: nowMs, priority: lwps.map { $0.priority },
                                     cpuPermille: (0..<lwps.count).map { (now[$0] - then[$0]) * 1000 / window }))
    }

    /// A2 (the queues), A3 (curprocmask bit c <=> uschedcp[c]) and A5 (every lwp
    /// is in exactly one place, and the places add up), or nil when all hold.
    func invariantViolation() -> String? {
        if let v = queues.checkA2() { return v.description }
        var designated = 0
        for c in 0..<ncpus {
            if (pcpu[c].uschedcp != nil) != curprocmask.contains(c) { return "A3: CPU \(c) curprocmask bit disagrees with uschedcp" }
            if let id = pcpu[c].uschedcp {
                designated += 1
                if lwps[id].state != .running(cpu: c) { return "A5: CPU \(c) designates lwp \(id), which is not running there" }
            }
        }
        var queued = 0, running = 0, asleep = 0, unborn = 0
        for lp in lwps {
            switch lp.state {
            case .queued:
                queued += 1
                if !lp.onRunQ { return "A5: lwp \(lp.id) is queued without ONRUNQ" }
            case .running(let c):
                running += 1
                if pcpu[c].uschedcp != lp.id { return "A5: lwp \(lp.id) runs on CPU \(c) without being its uschedcp" }
            case .sleeping: asleep += 1
            case .notStarted: unborn += 1
            case .inKernel: return "A5: lwp \(lp.id) left in the kernel between steps"
            }
            if lp.onRunQ != (lp.state == .queued) { return "A5: lwp \(lp.id) ONRUNQ disagrees with its state" }
        }
        if queued != queues.runqcount { return "A5: \(queued) lwps queued, runqcount \(queues.runqcount)" }
        if running != designated { return "A5: \(running) lwps running, \(designated) designated" }
        if queued + running + asleep + unborn != lwps.count { return "A5: lwps lost" }
        return nil
    }
}
