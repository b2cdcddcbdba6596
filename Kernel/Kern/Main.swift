// kmain: the boot CPU's path from the assembly stub to a running kernel.
// Order matters: each step may only use what the steps before it set up.

@_cdecl("kmain_entry64")
func kmainEntry(_ magic: UInt32, _ infoAddress: UInt32) {
    Console.initialize()
    Console.print("")
    Console.print("Quartet: an x86-64 SMP microkernel in Embedded Swift")
    BootCPU.installDescriptorTables()
    FaultReport.install()
    Console.print("boot: GDT, TSS and IDT loaded; faults are reported")
    _ = CPU.divideByZero(7)
    QEMUExit.success()
}
