// Test-only kernel options that force the panic and stop paths' rare windows
// open (docs/panic.md, "How the suites show it"). Read once at boot: the panic
// path itself must not parse the command line (that allocates, E7).

enum PanicTestHooks {
    /// `test.stop_window_ms=N`: the stopper waits N ms between publishing the
    /// pending mask and sending the NMIs (suite panic-halt: a second stopper
    /// arrives inside, E8; panic-all: the other panics reach the claim and
    /// lose, E1).
    nonisolated(unsafe) static var stopWindowMs: UInt64 = 0
    /// `test.late_ap=1`: the last AP marks itself online only once a stop has
    /// taken its snapshot of the online mask (E8); the boot CPU does not wait
    /// for it. -1 when off.
    nonisolated(unsafe) static var lateAP = -1
    /// `test.boot_nmi=1`: an NMI in each bring-up window: the boot CPU sends
    /// itself one right after LINT1 is routed as NMI, and each AP gets one from
    /// the boot CPU right after it loaded its IDT.
    nonisolated(unsafe) static var bootNMI = false
    /// `test.symbolizer_fault=1`: once a panic is under way the symbolizer
    /// faults (the recursive-panic line must still come out).
    nonisolated(unsafe) static var symbolizerFault = false

    static func configure() {
        stopWindowMs = UInt64(max(0, KernelOptions.int("test.stop_window_ms", default: 0)))
        bootNMI = KernelOptions.flag("test.boot_nmi", default: false)
        symbolizerFault = KernelOptions.flag("test.symbolizer_fault", default: false)
        if KernelOptions.flag("test.late_ap", default: false) { lateAP = Int.max }   // the last one: SMP knows which
    }
}
