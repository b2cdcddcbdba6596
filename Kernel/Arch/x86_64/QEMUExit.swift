// QEMU's isa-debug-exit device at port 0xf4 (docs/testing.md): writing c makes QEMU
// exit with status (c << 1) | 1. So 0 = all passed (status 1), non-zero = failure
// (status 3 for 1); status 0 means the kernel never got here (hang, triple fault).

enum QEMUExit {
    static let port = IOPort(0xF4)

    static func success() -> Never { exit(code: 0) }
    static func failure(_ code: UInt8 = 1) -> Never { exit(code: code == 0 ? 1 : code) }

    static func exit(code: UInt8) -> Never {
        port.write32(UInt32(code))
        // Not under QEMU (or the device is absent): stop here, quietly.
        CPU.haltForever()
    }
}
