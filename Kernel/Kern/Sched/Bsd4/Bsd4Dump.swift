import Synchronization

// A readable picture of the bsd4 scheduler for people at the console (the
// monitor's `sched`, bsd4-torture's last words, the `make run` demo). Copied
// under bsd4_spin, printed after it is dropped (printing is slow). Remote
// per-CPU fields are shown as they were read: hints, like every remote read.

enum Bsd4Dump {
    struct CPURow { var cpu = 0, lwp = 0, upri = 0, rrcount = 0, designated = false, ready = false }
    struct LwpRow {
        var id = 0, nice = 0, priority = 0, estcpu = 0, batch = 0, cpu = 0
        var place = Lwp.Place.kernel, runTicks: UInt64 = 0, name: StaticString = ""
    }
    struct QueueRow { var cls = Bsd4Class.normal, index = 0, ids: [Int] = [] }

    struct Snapshot {
        var cpus: [CPURow] = []
        var lwps: [LwpRow] = []
        var queues: [QueueRow] = []
        var runqcount = 0, scancpu = 0
        var curprocmask: UInt64 = 0, rdyprocmask: UInt64 = 0
    }

    static func snapshot() -> Snapshot {
        var s = Snapshot()
        s.cpus.reserveCapacity(Bsd4Scheduler.ncpus)
        Bsd4Scheduler.lock.lock()
        s.runqcount = Bsd4Scheduler.queues.runqcount
        s.scancpu = Bsd4Scheduler.scancpu
        s.curprocmask = Bsd4Scheduler.curprocmask.load(ordering: .relaxed)
        s.rdyprocmask = Bsd4Scheduler.rdyprocmask.load(ordering: .relaxed)
        for c in Bsd4Scheduler.cpus {
            let id = c.uschedcp
            let lwp = id == 0 ? 0 : (Bsd4Scheduler.lwps.first { $0.identity == id }?.id ?? -1)
            s.cpus.append(CPURow(cpu: c.cpu, lwp: lwp, upri: c.upri, rrcount: c.rrcount,
                                 designated: s.curprocmask & CPUMask.bit(c.cpu) != 0,
                                 ready: s.rdyprocmask & CPUMask.bit(c.cpu) != 0))
        }
        for lp in Bsd4Scheduler.lwps {
            s.lwps.append(LwpRow(id: lp.id, nice: lp.nice, priority: lp.priority, estcpu: lp.est.estcpu,
                                 batch: lp.est.batch, cpu: lp.thread.cpu, place: lp.place,
                                 runTicks: lp.runTicks, name: lp.name))
        }
        for raw in 0..<3 {
            let cls = Bsd4Class(rawValue: raw)!
            var bits = Bsd4Scheduler.queues.bits(cls)
            while bits != 0 {
                let index = bits.trailingZeroBitCount
                var row = QueueRow(cls: cls, index: index)
                var n = Bsd4Scheduler.queues.head(cls, index)
                while let lp = n { row.ids.append(lp.id); n = lp.rqNext }
                s.queues.append(row)
                bits &= bits &- 1
            }
        }
        Bsd4Scheduler.lock.unlock()
        return s
    }

    /// Per-CPU designations, the non-empty run queues and, with `lwps`, the lwp
    /// table.
    static func print(lwps: Bool = true) {
        guard Bsd4Scheduler.started.load(ordering: .acquiring) else {
            Console.print("bsd4: not started (no user-class lwp yet)")
            return
        }
        let s = snapshot()
        Console.line { l in
            l.write("bsd4: "); l.dec(s.lwps.count); l.write(" lwps, runqcount "); l.dec(s.runqcount)
            l.write(", curprocmask "); l.hex(s.curprocmask); l.write(", rdyprocmask "); l.hex(s.rdyprocmask)
            l.write(", scancpu "); l.dec(s.scancpu)
        }
        for c in s.cpus {
            Console.line { l in
                l.write("  cpu "); l.dec(c.cpu); l.write(": uschedcp ")
                if c.lwp == 0 { l.write("none  ") } else { l.write("lwp "); l.dec(c.lwp, width: 3) }
                l.write("  upri "); writePriority(&l, c.upri)
                l.write("  rrcount "); l.dec(c.rrcount)
                l.write(c.ready ? "  ready" : "  busy")
            }
        }
        if s.queues.isEmpty { Console.print("  run queues: empty") }
        for q in s.queues {
            Console.line { l in
                l.write("  queue "); writeClass(&l, q.cls); l.write(" "); l.dec(q.index, width: 2); l.write(":")
                for id in q.ids.prefix(16) { l.write(" lwp "); l.dec(id) }
                if q.ids.count > 16 { l.write(" ..."); l.dec(q.ids.count); l.write(" in all") }
            }
        }
        guard lwps else { return }
        Console.print("  lwp name          nice  pri  estcpu batch cpu place   ticks")
        for r in s.lwps {
            Console.line { l in
                l.write("  "); l.dec(r.id, width: 3); l.write(" "); l.padRight(r.name, width: 13)
                l.dec(r.nice, width: 4); l.dec(r.priority, width: 6); l.dec(r.estcpu, width: 7)
                l.dec(r.batch, width: 6); l.dec(r.cpu, width: 4); l.write(" ")
                switch r.place {
                case .kernel: l.write("kernel ")
                case .queued: l.write("queued ")
                case .user: l.write("user   ")
                case .exited: l.write("exited ")
                }
                l.dec(r.runTicks, width: 7)
            }
        }
    }

    static func writePriority(_ l: inout FixedLineBuffer, _ p: Int) {
        if p >= Bsd4.priBaseNull { l.write("none    "); return }
        l.dec(p, width: 3); l.write(" (")
        writeClass(&l, Bsd4Class(rawValue: p / Bsd4.maxPri) ?? .thread)
        l.write(" "); l.dec((p & Bsd4.priMask) / Bsd4.ppq); l.write(")")
    }

    static func writeClass(_ l: inout FixedLineBuffer, _ c: Bsd4Class) {
        switch c {
        case .realtime: l.write("rt")
        case .normal: l.write("normal")
        case .idle: l.write("idle")
        case .thread: l.write("thread")
        }
    }
}
