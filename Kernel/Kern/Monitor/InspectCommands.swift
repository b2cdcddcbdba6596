import Synchronization

// Monitor commands that look: cpus, ps, runq, ipiq, locks, mem, uptime,
// balance, options. Other CPUs' fields are read as hints (a line may mix
// values from slightly different moments); threads are read through the
// thread table's references, never through another CPU's raw pointers.

enum InspectCommands {
    static func register() {
        Monitor.register(MonitorCommandSpec("cpus", help: "per CPU: running thread, critnest, ticks, idle share, IPIs, stopped")) { _ in cpus() }
        Monitor.register(MonitorCommandSpec("ps", help: "every thread: id, name, state, CPU, bound, affinity (monitor's bind), priority, nice, estcpu, share")) { _ in ps() }
        Monitor.register(MonitorCommandSpec("runq", help: "bsd4: run queues, per-CPU uschedcp/upri, lwps")) { _ in Bsd4Dump.print() }
        Monitor.register(MonitorCommandSpec("sched", help: "the same as runq")) { _ in Bsd4Dump.print() }
        Monitor.register(MonitorCommandSpec("ipiq", help: "IPI queues: per-CPU counters and per-pair occupancy")) { _ in ipiq() }
        Monitor.register(MonitorCommandSpec("locks", help: "the kernel's named spinlocks: acquisitions, contention, holder")) { _ in locks() }
        Monitor.register(MonitorCommandSpec("mem", help: "memory summary")) { _ in BootReport.memorySummary() }
        Monitor.register(MonitorCommandSpec("uptime", help: "time since boot, ticks, CPUs online")) { _ in uptime() }
        Monitor.register(MonitorCommandSpec("balance", help: "the load balancer's last report (read under a passive reference)")) { _ in
            Balancer.printReport()
        }
        Monitor.register(MonitorCommandSpec("options", help: "the parsed kernel command line and every known option")) { _ in
            KernelOptions.printParsed()
            Console.print("known options:")
            KernelOptions.printKnown()
        }
    }

    static func cpus() {
        let threads = ThreadTable.snapshot()
        Console.print("cpu  thread               critnest    ticks  idle%  lost%  ipi-sent  ipi-recv  ipi-avoided  state")
        SMP.online.forEach { c in
            let td = threads.first { $0.cpu == c && $0.state == .running }
            let ticks = PerCPU.cpus[c].ticks.load(ordering: .relaxed)
            let idle = Scheduler.perCPU[c].idleTicks.load(ordering: .relaxed)
            let lost = PerCPU.cpus[c].lostTicks.load(ordering: .relaxed)   // periods with no tick
            let t = IPIQueue.targets[c]
            Console.line { l in
                l.dec(c, width: 3); l.write("  ")
                if let td { l.padRight(td.name, width: 12); l.write(" #"); l.dec(td.id, width: 5); l.dec(td.critnest, width: 10) }
                else { l.write("(switching)            "); l.write("         -") }
                l.dec(ticks, width: 9); l.dec(ticks == 0 ? 0 : idle * 100 / ticks, width: 7)
                l.dec(ticks + lost == 0 ? 0 : lost * 100 / (ticks + lost), width: 7)
                l.dec(t.sent.load(ordering: .relaxed), width: 10); l.dec(t.received.load(ordering: .relaxed), width: 10)
                l.dec(t.ipisAvoided.load(ordering: .relaxed), width: 13)
                l.write(StopCPUs.stoppedMask.contains(c) ? "  stopped" : "  running")
            }
        }
    }

    static func stateName(_ s: Thread.State) -> StaticString {
        switch s {
        case .embryo: "embryo"
        case .runnable: "runnable"
        case .running: "running"
        case .sleeping: "sleeping"
        case .migrating: "migrating"
        case .exited: "exited"
        }
    }

    static func ps() {
        let threads = ThreadTable.snapshot()
        let tickCycles = TSC.ticksPerMs * 1000 / UInt64(max(1, Clock.hz))
        Console.print("   id  name            state      cpu  bound  aff  prio  nice  estcpu  share%")
        for td in threads {
            let lwp = Bsd4Scheduler.info(of: td)
            let lifeTicks = max(1, (TSC.now &- td.createdTSC) / max(1, tickCycles))
            let share = td.ticksRun.load(ordering: .relaxed) * 100 / lifeTicks
            Console.line { l in
                l.dec(td.id, width: 5); l.write("  "); l.padRight(td.name, width: 14); l.write("  ")
                l.padRight(stateName(td.state), width: 9); l.dec(td.cpu, width: 5)
                l.write(td.isBound ? "    yes" : "     no")
                let aff = td.pinned.load(ordering: .relaxed) ? td.affinity.load(ordering: .relaxed) : -1
                if aff >= 0 { l.dec(aff, width: 5) } else { l.write("    -") }
                l.dec(td.priority, width: 6)
                if let lwp { l.dec(lwp.nice, width: 6); l.dec(lwp.estcpu, width: 8) } else { l.write("     -       -") }
                l.dec(min(share, 100), width: 8)
            }
        }
        Console.line { l in l.dec(threads.count); l.write(" threads") }
    }

    static func ipiq() {
        let cpus = SMP.online
        Console.print("cpu      sent  received  hw-ipis   avoided  full-waits  nowait-refused")
        cpus.forEach { c in
            let t = IPIQueue.targets[c]
            Console.line { l in
                l.dec(c, width: 3); l.dec(t.sent.load(ordering: .relaxed), width: 10); l.dec(t.received.load(ordering: .relaxed), width: 10)
                l.dec(t.ipisSent.load(ordering: .relaxed), width: 9); l.dec(t.ipisAvoided.load(ordering: .relaxed), width: 10)
                l.dec(t.fifoFullWaits.load(ordering: .relaxed), width: 12); l.dec(t.nowaitRefused.load(ordering: .relaxed), width: 16)
            }
        }
        Console.line { l in
            l.write("ring occupancy (row: source, column: target; capacity "); l.dec(UInt64(IPIQueue.ring.capacity)); l.write("):")
        }
        cpus.forEach { s in
            Console.line { l in
                l.dec(s, width: 3); l.write(":")
                cpus.forEach { d in
                    let q = IPIQueue.ringFor(source: s, target: d)
                    let n = q.pointee.windex.load(ordering: .relaxed) &- q.pointee.rindex.load(ordering: .relaxed)
                    l.dec(UInt64(n), width: 5)
                }
            }
        }
    }

    static func locks() {
        Console.print("lock                   acquisitions   contended        spins  wait-ms  holder")
        func row(_ name: StaticString, _ raw: borrowing TicketLock) {
            let owner = raw.owner.load(ordering: .relaxed)
            Console.line { l in
                l.padRight(name, width: 20); l.dec(UInt64(raw.nextTicket.load(ordering: .relaxed)), width: 15)
                l.dec(raw.contended.load(ordering: .relaxed), width: 12); l.dec(raw.spins.load(ordering: .relaxed), width: 13)
                l.dec(raw.waitCycles.load(ordering: .relaxed) / max(1, TSC.ticksPerMs), width: 9)
                if owner >= 0 { l.write("  CPU "); l.dec(Int(owner)) } else { l.write("  -") }
            }
        }
        row("bsd4_spin", Bsd4Scheduler.lock.raw)
        row("balancer", Balancer.lock.raw)
        row("heap", Heap.lock.raw)
        row("physical pages", PhysicalMemory.lock.raw)
        row("kernel stacks", KernelStacks.lock.raw)
        row("kernel page tables", KernelPageTables.lock.raw)
        row("smp rendezvous", Rendezvous.lock.raw)
        row("thread table", ThreadTable.lock.raw)
        row("monitor input", MonitorInput.lock.raw)
        row("console", Console.lock)
        Console.print("(acquisitions count tickets, modulo 2^32)")
    }

    static func uptime() {
        let ns = TSC.uptimeNanoseconds
        Console.line { l in
            l.write("uptime: "); l.dec(ns / 1_000_000_000); l.write("."); l.dec(ns / 1_000_000 % 1000, width: 3, pad: 0x30)
            l.write(" s, "); l.dec(PerCPU.cpus[0].ticks.load(ordering: .relaxed)); l.write(" ticks on CPU 0, ")
            l.dec(SMP.online.count); l.write(" CPUs online, "); l.dec(Monitor.executed); l.write(" monitor commands run")
        }
    }
}
