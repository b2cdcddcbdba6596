// kmain: the boot CPU's path from the assembly stub to a running kernel.
// Order matters: each step may only use what the steps before it set up.

extension Boot {
/// Called by the Init layer's `kmain_entry64` (Kernel/Init/Init.swift).
static func entry(_ magic: UInt32, _ infoAddress: UInt32) {
    // 1. A console, then descriptor tables: from here on every fault is reported.
    TSC.boot = CPU.rdtsc()
    Console.initialize()
    Console.print("")
    Console.print("Quartet: an x86-64 SMP microkernel in Embedded Swift")
    BootCPU.loadDescriptorTables()
    // GS before the IDT, as on the APs: from the IDT on an NMI can be taken,
    // and its handler finds its CPU through GS (E6).
    PerCPU.installHeader(archPage: LinkerSymbols.bspArchArea, cpuNumber: 0)
    BootCPU.installIDT()
    FaultReport.install()
    KernelSymbols.load()                 // names in fault reports from here on
    PerCPU.installInterruptAccounting()

    // 2. Boot information (non-allocating parsers: there is no heap yet).
    DirectMapReader.snapshotPageZero()
    let info = MultibootInfo.parse(magic: magic, infoAddress: UInt64(infoAddress), reader: DirectMapReader())
    BootReport.multibootProblems(info)
    guard info.valid else {
        Console.print("boot: the multiboot information is unusable; stopping")
        QEMUExit.failure(FaultReport.exitCode)
    }
    BootReport.memoryMap(info)

    // 3. Physical pages, page tables, heap.
    guard PhysicalMemory.initialize(info, infoAddress: UInt64(infoAddress)) else {
        QEMUExit.failure(FaultReport.exitCode)
    }
    Paging.allocateTablePage = { PhysicalMemory.allocateZeroedPage() }
    guard Paging.unmapNullPage() else { panic("no memory to split the null page") }
    Heap.initialize(poison: true)

    // 4. Leave the boot stack for a guarded one (overflow is reported, not silent).
    guard let stack = KernelStacks.allocate() else { panic("no memory for the boot CPU's stack") }
    Boot.mainStack = stack
    Boot.commandLine = info.cmdlineBytes(DirectMapReader())
    CPU.callOnStack({ _ in Boot.main() }, arg: 0, stackTop: stack.top)
    panic("kmain returned")
}
}

enum Boot {
    /// What the layers above Kern provide (set by Kernel/Init before boot).
    nonisolated(unsafe) static var registerHigherLayers: (() -> Void)? = nil
    nonisolated(unsafe) static var suiteRunner: (([String]) -> Never)? = nil
    nonisolated(unsafe) static var demos: [(name: String, start: () -> Void)] = []

    nonisolated(unsafe) static var commandLine: UnsafeRawBufferPointer? = nil
    /// The guarded stack the boot CPU's main thread runs on.
    nonisolated(unsafe) static var mainStack: KernelStacks.Stack? = nil

    /// The rest of the boot, on the boot CPU's guarded stack. Allocation works.
    static func main() {
        KernelOptions.load(commandLine)
        KernelOptions.printParsed()
        BugKnobs.load()
        BugKnobs.report()
        Panic.configure()
        BootReport.memorySummary()
        KernelSymbols.report()
        Clock.enabled = KernelOptions.flag("tick", default: true)
        SMP.initializeBootCPU()
        SMP.startApplicationProcessors()
        SMP.report()
        InspectCommands.register()
        ControlCommands.register()
        registerHigherLayers?()
        let run = KernelOptions.list("run")
        if !run.isEmpty {
            guard let runner = suiteRunner else { panic("run= given but no suite runner is linked") }
            runner(run)
        }
        if let demo = KernelOptions.value("demo") {
            if let d = demos.first(where: { $0.name == demo }) { d.start() }
            else { Console.print("demo: unknown demo '" + demo + "'") }
        }
        Monitor.start()
        // The boot thread's work is done; it stays, asleep (ps shows it).
        while true { _ = Sleep.sleep(on: Sleep.channel(Thread.current)) }
    }
}
