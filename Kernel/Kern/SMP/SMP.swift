import Synchronization

// SMP bring-up on the boot CPU: read the MADT, set up the local APIC and the
// clocks, create every CPU's per-CPU data, then start the application processors,
// all at once by default (`smp.bringup=serial`: one at a time). An AP that does
// not report in within the timeout is reported and left out.
//
// S1 (one fate per AP): each AP's bring-up state is one word, changed only by
// compare-and-swap from `starting`: to `online` by the AP (before it touches
// anything the boot CPU would undo), or to `abandoned` by the boot CPU when its
// wait ran out. Exactly one wins. An AP that finds `abandoned` parks itself; a
// boot CPU that finds `online` waits for the AP to finish. (With a flag each,
// "read online, then write abandoned" against "read abandoned, then go on" let
// both sides pass: an AP left out and online at once.)

enum SMP {
    /// CPUs that finished bring-up (bit = CPU number).
    static let onlineMask = Atomic<UInt64>(0)
    static var online: CPUMask { CPUMask(bits: onlineMask.load(ordering: .acquiring)) }
    nonisolated(unsafe) static var madt: MADTInfo? = nil
    enum APState: UInt8 { case starting = 0, online = 1, abandoned = 2 }
    /// S1: per CPU, written only by compare-and-swap from `starting`.
    nonisolated(unsafe) static var apStates: UnsafeMutablePointer<Atomic<UInt8>>? = nil
    /// TSC at which the boot CPU gives up on the APs it waits for (the test
    /// hook `smp.late_ap_ms` needs it).
    static let bringupDeadline = Atomic<UInt64>(0)
    static let apTimeoutMs: UInt64 = 2000

    /// Boot-CPU part: APIC, PIC, calibration, per-CPU data for CPU 0.
    static func initializeBootCPU() {
        let acpi = ACPI.discover(DirectMapReader())
        reportACPI(acpi)
        madt = acpi.madt
        LocalAPIC.configure(preferX2APIC: KernelOptions.value("apic") != "xapic",
                            mmioBase: acpi.madt?.localAPICAddress ?? 0xFEE0_0000)
        PIC8259.remapAndMaskAll()
        installInterruptHandlers()
        // E6: vector 2's handler exists (installInterruptHandlers) before LINT1
        // can deliver an NMI.
        LocalAPIC.enableOnThisCPU(lint1IsNMI: true)
        if PanicTestHooks.bootNMI { nmiSelf() }
        TSC.calibrate()
        Console.line { l in
            l.write("clock: TSC "); l.dec(TSC.ticksPerMs / 1000); l.write(" MHz, local APIC timer ")
            l.dec(TSC.apicTicksPerMs); l.write(" counts/ms (divide 16); tick "); l.dec(Clock.hz); l.write(" Hz")
            l.write(LocalAPIC.mode == .x2apic ? "; x2APIC" : "; xAPIC")
        }
        Console.line { $0.write("cpu: hypervisor "); $0.write(Hypervisor.current.name) }
        buildPerCPU()
        Console.allocateLineBuffers(cpus: PerCPU.count)
        Sleep.initialize()
        Scheduler.initialize(cpuCount: PerCPU.count)
        IPIQueue.initialize(cpuCount: PerCPU.count, capacity: IPIQueue.configuredCapacity())
        Rendezvous.initialize()
        HaltingWait.initialize(cpuCount: PerCPU.count)
        Bsd4Scheduler.initialize(cpuCount: PerCPU.count)
        PassiveRef.initialize(cpuCount: PerCPU.count)
        KTrace.initialize(cpuCount: PerCPU.count)
        StopCPUs.initialize(cpuCount: PerCPU.count)
        let bsp = PerCPU.cpus[0]
        bsp.bootStack = Boot.mainStack
        PerCPU.attach(bsp)
        Scheduler.bootstrapThisCPU(isBootCPU: true)
        markOnline(bsp)
        Clock.startOnThisCPU()
        CPU.enableInterrupts()
    }

    private static func reportACPI(_ acpi: ACPIDiscovery) {
        for i in 0..<acpi.problems.list.count {
            let p = acpi.problems.list[i]
            Console.line { $0.write("acpi: problem: "); $0.write(p.reason); $0.write(" at "); $0.hex(p.at) }
        }
        if let m = acpi.madt {
            Console.line { l in
                l.write("acpi: MADT at "); l.hex(acpi.madtAddress ?? 0); l.write(": ")
                l.dec(m.enabledProcessorCount); l.write(" enabled CPUs, ")
                l.dec(m.ioAPICs.count); l.write(" I/O APIC, local APIC at "); l.hex(m.localAPICAddress)
            }
        } else {
            Console.print("acpi: no usable MADT; running on the boot CPU only")
        }
    }

    private static func installInterruptHandlers() {
        Traps.register(vector: Vectors.apicSpurious) { _ in }            // no EOI for spurious
        Traps.register(vector: Vectors.picSpuriousMaster) { _ in }
        Traps.register(vector: Vectors.picSpuriousSlave) { _ in }
        Traps.register(vector: Vectors.apicError) { _ in
            LocalAPIC.write(.esr, 0)
            let esr = LocalAPIC.read(.esr)
            LocalAPIC.eoi()
            Console.line { $0.write("apic: error interrupt, ESR "); $0.hex(UInt64(esr)) }
        }
        Clock.installHandler()
        StopCPUs.installNMIHandler()
    }

    /// Test hook (test.boot_nmi): an NMI to this CPU right now; reports
    /// whether vector 2 took it as an ordinary NMI (E6).
    private static func nmiSelf() {
        let me = PerCPU.currentNumber
        let before = StopCPUs.ordinaryNMIs?[me].load(ordering: .relaxed) ?? 0
        LocalAPIC.sendIPI(to: LocalAPIC.id, delivery: .nmi)
        var spins = 0                      // the TSC is not calibrated yet: a bound by count
        while (StopCPUs.ordinaryNMIs?[me].load(ordering: .relaxed) ?? 0) == before && spins < 20_000_000 { CPU.pause(); spins += 1 }
        let took = (StopCPUs.ordinaryNMIs?[me].load(ordering: .relaxed) ?? 0) != before
        Console.line { l in
            l.write("smp: CPU "); l.dec(me); l.write(": an NMI right after LINT1 was routed as NMI: ")
            l.write(took ? "taken as ordinary" : "NOT taken")
        }
    }

    /// Test hook (test.boot_nmi): APs inside their bring-up window ask the boot
    /// CPU for an NMI here (bit = CPU number); the boot CPU sends them while it
    /// waits for the APs.
    static let windowNMIRequests = Atomic<UInt64>(0)
    private static func serveWindowNMIs() {
        guard PanicTestHooks.bootNMI else { return }
        let asked = CPUMask(bits: windowNMIRequests.exchange(0, ordering: .acquiringAndReleasing))
        asked.forEach { LocalAPIC.sendIPI(to: PerCPU.cpus[$0].apicID, delivery: .nmi) }
    }
    /// On an AP: ask for the NMI and wait (bounded) until vector 2 counted it.
    private static func nmiInWindow(_ id: Int) -> Bool {
        windowNMIRequests.bitwiseOr(CPUMask.bit(id), ordering: .releasing)
        let deadline = TSC.now &+ max(TSC.ticksPerMs, 1) &* 1000
        while (StopCPUs.ordinaryNMIs?[id].load(ordering: .relaxed) ?? 0) == 0 && TSC.now < deadline { CPU.pause() }
        return (StopCPUs.ordinaryNMIs?[id].load(ordering: .relaxed) ?? 0) != 0
    }

    /// One GlobalData per usable CPU, boot CPU first, built before any AP runs.
    private static func buildPerCPU() {
        let bspAPIC = LocalAPIC.id
        let limit = min(PerCPU.maxCPUs, max(1, KernelOptions.int("smp.maxcpus", default: PerCPU.maxCPUs)))
        var cpus = [GlobalData(id: 0, apicID: bspAPIC, acpiUID: 0, archPage: LinkerSymbols.bspArchArea)]
        if let madt {
            for p in madt.processors where p.isEnabled && p.apicID != bspAPIC && cpus.count < limit {
                guard let page = PhysicalMemory.allocateZeroedPage() else { break }
                cpus.append(GlobalData(id: cpus.count, apicID: p.apicID, acpiUID: p.processorUID,
                                       archPage: AddressSpace.virtual(page)))
            }
        }
        PerCPU.cpus = cpus
    }

    private static func markOnline(_ cpu: GlobalData) {
        cpu.onlineTSC = TSC.now
        // E8: published before this CPU reads StopCPUs.stopper (stopIfStopping).
        onlineMask.bitwiseOr(CPUMask.bit(cpu.id), ordering: .sequentiallyConsistent)
        // The boot CPU waits on `online` and then reads the mask: the mask bit
        // goes first, so a CPU it saw online is in the mask too.
        cpu.online.store(true, ordering: .releasing)
    }

    /// Bring-up order (`smp.bringup=`): all APs at once (default) or one at a
    /// time, each waited for before the next is started.
    static var parallelBringup: Bool { KernelOptions.value("smp.bringup") != "serial" }

    /// Starts every AP and waits until each reported in or its time ran out.
    static func startApplicationProcessors() {
        defer {
            lastOnlineTSC = PerCPU.cpus.reduce(0) { max($0, $1.onlineTSC) }
            SpinWatchdog.scale = UInt64(max(1, online.count / 8))
        }
        guard PerCPU.count > 1 else { return }
        if PanicTestHooks.lateAP >= 0 { PanicTestHooks.lateAP = PerCPU.count - 1 }
        let heldBack = PanicTestHooks.lateAP
        var cpus: [GlobalData] = []
        var entries: [APStartEntry] = []
        for cpu in PerCPU.cpus.dropFirst() {
            guard prepareStacks(cpu), let boot = cpu.bootStack else {
                Console.line { $0.write("smp: no memory for CPU "); $0.dec(cpu.id); $0.write("; left out") }
                continue
            }
            cpus.append(cpu)
            entries.append(APStartEntry(apicID: cpu.apicID, reached: 0, stackTop: boot.top, argument: UInt64(cpu.id)))
        }
        Scheduler.prepareAPBootThreads(cpus)       // no allocation on the APs: see there
        lateAPms = UInt64(max(0, KernelOptions.int("smp.late_ap_ms", default: 0)))
        let states = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: PerCPU.count)
        for i in 0..<PerCPU.count { (states + i).initialize(to: Atomic(APState.starting.rawValue)) }
        apStates = states                          // published to the APs by prepare's MFENCE
        APStart.prepare(entries: entries, entry: { arg in SMP.apMain(arg) })
        if parallelBringup {
            APStart.start(Array(cpus.indices))
            // Under TCG every vCPU is a host thread: with many more vCPUs than host
            // cores, the last AP may need far longer than one does.
            let deadline = TSC.now &+ TSC.ticksPerMs * (apTimeoutMs + 50 * UInt64(cpus.count))
            bringupDeadline.store(deadline, ordering: .relaxed)
            while TSC.now < deadline && !cpus.allSatisfy({ $0.id == heldBack || $0.online.load(ordering: .acquiring) }) {
                serveWindowNMIs(); CPU.pause()
            }
        } else {
            for i in cpus.indices where cpus[i].id != heldBack {
                APStart.start([i])
                let deadline = TSC.now &+ TSC.ticksPerMs * apTimeoutMs
                bringupDeadline.store(deadline, ordering: .relaxed)
                while !cpus[i].online.load(ordering: .acquiring) && TSC.now < deadline { serveWindowNMIs(); CPU.pause() }
            }
            if let i = cpus.firstIndex(where: { $0.id == heldBack }) { APStart.start([i]) }
        }
        if heldBack >= 0 {
            Console.line { l in l.write("smp: CPU "); l.dec(heldBack); l.write(" held back: online only once a stop begins (test.late_ap)") }
        }
        for (i, cpu) in cpus.enumerated() where !cpu.online.load(ordering: .acquiring) && cpu.id != heldBack {
            // S1: abandon it only if it has not claimed its place yet.
            var gaveUp: Bool
            if BugKnobs.apTwoFlags {
                // BUG (the old check-then-act): write "abandoned" whatever the AP did.
                states[cpu.id].store(APState.abandoned.rawValue, ordering: .sequentiallyConsistent)
                gaveUp = true
            } else {
                (gaveUp, _) = states[cpu.id].compareExchange(expected: APState.starting.rawValue,
                                                             desired: APState.abandoned.rawValue, ordering: .sequentiallyConsistent)
            }
            guard gaveUp else {
                // It claimed it first: it is coming online and uses its prepared
                // thread. Its remaining steps are local; wait for them.
                let limit = TSC.now &+ TSC.ticksPerMs * apTimeoutMs
                while !cpu.online.load(ordering: .acquiring) {
                    if TSC.now >= limit {
                        let id = cpu.id                         // E7: plain values only
                        panic("smp: an AP claimed its place but never came online") { $0.dec(id) }
                    }
                    CPU.pause()
                }
                Console.line { $0.write("smp: CPU "); $0.dec(cpu.id); $0.write(" reported in after the bring-up timeout; kept") }
                continue
            }
            // Its prepared thread never runs (a late AP halts before using it).
            if let td = Scheduler.apBootThreads[cpu.id] { ThreadTable.remove(td); Scheduler.apBootThreads[cpu.id] = nil }
            let reached = APStart.reached(i)
            Console.line { l in
                l.write("smp: CPU "); l.dec(cpu.id); l.write(" (APIC id "); l.dec(UInt64(cpu.apicID))
                l.write(reached ? ") started but did not report in" : ") did not answer INIT/STARTUP")
                l.write("; left out")
            }
        }
    }

    /// TSC when the last CPU came online (boot.online in the benchmarks).
    nonisolated(unsafe) static var lastOnlineTSC: UInt64 = 0

    private static func prepareStacks(_ cpu: GlobalData) -> Bool {
        guard let boot = KernelStacks.allocate(), let df = KernelStacks.allocate(pages: 4),
              let nmi = KernelStacks.allocate(pages: 4), let mc = KernelStacks.allocate(pages: 4) else { return false }
        cpu.bootStack = boot
        cpu.istStacks = (df, nmi, mc)
        _ = DescriptorTables(page: cpu.archPage, istTops: (df: df.top, nmi: nmi.top, mc: mc.top))
        return true
    }

    /// First Swift code on an AP, on its own boot stack.
    static func apMain(_ argument: UInt64) {
        let id = Int(argument)
        let cpu = PerCPU.cpus[id]
        cpu.tables.load()
        // GS before the IDT: from the IDT on an NMI can be taken, and its
        // handler finds its CPU through GS (E6, E8).
        PerCPU.installHeader(archPage: cpu.archPage, cpuNumber: id)
        IDT.loadOnThisCPU()
        let windowNMI = PanicTestHooks.bootNMI ? nmiInWindow(id) : false
        PerCPU.attach(cpu)
        // S1: claim our place before anything the boot CPU would undo (the
        // prepared thread); too late, the boot CPU gave up on us: park.
        if BugKnobs.apTwoFlags {
            // BUG (the old check-then-act): read "abandoned", go on if not set;
            // the boot CPU may write it right after this read.
            if apStates![id].load(ordering: .sequentiallyConsistent) == APState.abandoned.rawValue { CPU.haltForever() }
        } else {
            let (claimed, _) = apStates![id].compareExchange(expected: APState.starting.rawValue,
                                                             desired: APState.online.rawValue, ordering: .sequentiallyConsistent)
            if !claimed { CPU.haltForever() }
        }
        lateAPHook(id)
        if PanicTestHooks.bootNMI {
            Console.line { l in
                l.write("smp: CPU "); l.dec(id); l.write(": an NMI right after loading its IDT: ")
                l.write(windowNMI ? "taken as ordinary" : "NOT taken")
            }
        }
        LocalAPIC.enableOnThisCPU(lint1IsNMI: true)
        Scheduler.bootstrapThisCPU(isBootCPU: false)
        if id == PanicTestHooks.lateAP {           // test: wait until a stopper took its snapshot
            // Not on the claim alone: coming online between the claim and the
            // snapshot puts this CPU in the snapshot (NMI-stopped, not the
            // late case under test). A stop that asks for no CPU (only this
            // AP held back) still takes its snapshot.
            while !StopCPUs.snapshotTaken.load(ordering: .acquiring) { CPU.pause() }
        }
        markOnline(cpu)
        StopCPUs.stopIfStopping()                  // E8: a stop that missed this CPU
        Clock.startOnThisCPU()
        CPU.enableInterrupts()
        Idle.loop()
    }

    /// Read on the boot CPU before any AP starts (an AP parses nothing).
    nonisolated(unsafe) static var lateAPms: UInt64 = 0
    /// Test hook `smp.late_ap_ms=N`: the last AP, once it claimed its place,
    /// waits until N ms after the boot CPU's bring-up deadline, so that the
    /// boot CPU times out on an AP that is on its way (S1).
    private static func lateAPHook(_ id: Int) {
        let ms = lateAPms
        guard id == PerCPU.count - 1, ms > 0 else { return }
        while bringupDeadline.load(ordering: .relaxed) == 0 { CPU.pause() }
        let until = bringupDeadline.load(ordering: .relaxed) &+ TSC.ticksPerMs &* ms
        while TSC.now < until { CPU.pause() }
    }

    static func report() {
        let online = self.online
        for cpu in PerCPU.cpus where online.contains(cpu.id) {
            Console.line { l in
                l.write("smp: CPU "); l.dec(cpu.id); l.write(" online, APIC id "); l.dec(UInt64(cpu.apicID))
                l.write(", at "); l.dec(TSC.nanoseconds(cpu.onlineTSC &- TSC.boot) / 1000); l.write(" us")
            }
        }
        Console.line { l in
            l.write("smp: "); l.dec(online.count); l.write(" of "); l.dec(PerCPU.count)
            l.write(" CPUs online; boot took "); l.dec(Clock.uptimeMilliseconds); l.write(" ms")
        }
    }
}

enum Idle {
    /// The idle thread: processes IPI messages, runs queued threads, else halts
    /// with interrupts enabled. Work is checked with interrupts disabled so that a
    /// wake-up IPI arriving between the check and the HLT is not lost: STI;HLT
    /// takes the interrupt only after the HLT has begun.
    static func loop() -> Never {
        let s = Scheduler.mine
        while true {
            CPU.disableInterrupts()
            if IPIQueue.hasPending { IPIQueue.process() }
            if !s.runQueue.isEmpty {
                CPU.enableInterrupts()
                Scheduler.yield()
            } else {
                CPU.enableInterruptsAndHalt()
            }
        }
    }
}
