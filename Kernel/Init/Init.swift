// The top of the layer stack (Init -> Suites -> Kern -> Arch -> Core): the
// assembly stub's entry point, which tells the kernel what the layers above it
// provide before it boots - the suites' monitor commands, the runner for
// `run=`, the demos for `demo=` - so that Kern never names a suite.

@_cdecl("kmain_entry64")
func kmainEntry(_ magic: UInt32, _ infoAddress: UInt32) {
    Boot.registerHigherLayers = Init.register
    Boot.entry(magic, infoAddress)
}

enum Init {
    /// Called by Boot.main once the heap and the CPUs are up.
    static func register() {
        SuiteCommands.register()
        Boot.suiteRunner = { names in TestRunner.run(names) }
        Boot.demos = [("bsd4", { Bsd4Demo.start() })]
    }
}
