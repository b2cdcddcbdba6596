import Synchronization

// The kernel console: COM1 output with one lock, so that lines from different CPUs
// never interleave mid-line. Callers format a whole line first (FixedLineBuffer,
// no allocation, usable from interrupt handlers) and emit it in one locked write.
//
// The fault and panic paths claim the console for their CPU (`claimEmergency`):
// from then on that CPU's output goes straight to the UART without the lock,
// because a CPU that died may hold it, and every other CPU's output is dropped,
// so the report stays whole and readable instead of interleaving byte by byte.

enum Console {
    static let lock = TicketLock()
    /// The CPU printing a fault or panic report, or -1.
    static let emergencyOwner = Atomic<Int32>(-1)
    nonisolated(unsafe) static var serial = Serial16550.com1

    static func initialize() { serial.initialize() }

    /// Makes this CPU the only one that prints from now on. Returns false when
    /// another CPU already owns the console (its report is in progress).
    static func claimEmergency() -> Bool {
        let me = currentCPUNumberForLocks()
        let (won, owner) = emergencyOwner.compareExchange(expected: -1, desired: me, ordering: .sequentiallyConsistent)
        if won {
            // A CPU already inside a locked write finishes its line first (a
            // bounded wait: it may have died holding the lock), so the report
            // does not interleave with it byte by byte. A holder the stop has
            // already NMI-stopped never finishes: no wait for it.
            var spins = 0
            while lock.isLocked && spins < 2_000_000 {
                let holder = lock.owner.load(ordering: .relaxed)
                if holder >= 0 && StopCPUs.stoppedMask.contains(Int(holder)) { break }
                CPU.pause(); spins += 1
            }
            // Still held: the holder stopped (or hangs) in the middle of its
            // line. End that line here, so the report's first line starts a
            // line of its own (the "panic: ..." parsers read line starts).
            if lock.isLocked && !BugKnobs.consoleMidlineGlue { serial.put(0x0D); serial.put(0x0A) }   // the control: glued
        }
        return won || owner == me
    }

    /// Formats one line with `body` and prints it atomically, newline added (also
    /// after a line cut at the buffer's capacity, which then ends in "...").
    static func line(_ body: (inout FixedLineBuffer) -> Void) {
        var buffer = FixedLineBuffer()
        body(&buffer)
        buffer.withBytes { emit($0, endLine: buffer.truncated ? .cut : .plain) }
    }

    enum LineEnd { case none, plain, cut }

    static func print(_ s: StaticString) {
        line { $0.write(s) }
    }

    static func print(_ s: String) {
        line { $0.write(s) }
    }

    /// Writes bytes as one unit, then the line end. Converts "\n" to "\r\n".
    static func emit(_ bytes: UnsafeRawBufferPointer, endLine: LineEnd = .none) {
        let owner = emergencyOwner.load(ordering: .relaxed)
        if owner >= 0 {
            if owner == currentCPUNumberForLocks() { putBytes(bytes, endLine) }
            return
        }
        let flags = CPU.saveFlagsAndDisableInterrupts()
        // No rendezvous from this wait: an action that printed would queue behind
        // our own ticket. The console's holder only prints (it never waits for
        // a rendezvous while holding it), so this wait always ends.
        lock.lock(cpu: currentCPUNumberForLocks(), servicing: false)
        putBytes(bytes, endLine)
        lock.unlock()
        CPU.restoreFlags(flags)
    }

    private static func putBytes(_ bytes: UnsafeRawBufferPointer, _ end: LineEnd) {
        for b in bytes {
            if b == 0x0A { serial.put(0x0D) }
            serial.put(b)
        }
        if end == .cut { for _ in 0..<3 { serial.put(0x2E) } }
        if end != .none { serial.put(0x0D); serial.put(0x0A) }
    }

    /// Reads a byte if one is waiting (polled input).
    static func poll() -> UInt8? { serial.poll() }
}

/// The Embedded Swift runtime prints (print(), fatalError messages) through putchar.
/// Bytes are collected per CPU until a newline, so that runtime messages stay
/// whole lines even when several CPUs print at once. The per-CPU buffers live on
/// the heap once it exists (Console.allocateLineBuffers); before that only the
/// boot CPU runs and uses the static one.
nonisolated(unsafe) private var bootLine = FixedLineBuffer()
nonisolated(unsafe) private var cpuLines: UnsafeMutablePointer<FixedLineBuffer>? = nil

extension Console {
    static func allocateLineBuffers(cpus: Int) {
        let p = UnsafeMutablePointer<FixedLineBuffer>.allocate(capacity: cpus)
        p.initialize(repeating: FixedLineBuffer(), count: cpus)
        cpuLines = p
    }
}

@_cdecl("putchar")
func putchar(_ c: Int32) -> Int32 {
    // Interrupts off: a handler (or a thread switched in) on this CPU must not
    // add its bytes to the same partial line.
    let flags = CPU.saveFlagsAndDisableInterrupts()
    defer { CPU.restoreFlags(flags) }
    let byte = UInt8(truncatingIfNeeded: c)
    let cpu = PerCPU.currentNumber
    let line: UnsafeMutablePointer<FixedLineBuffer>
    if let lines = cpuLines, cpu < PerCPU.count { line = lines + cpu }
    else { line = withUnsafeMutablePointer(to: &bootLine) { $0 } }
    if byte == 0x0A || line.pointee.count >= FixedLineBuffer.capacity - 1 {
        line.pointee.withBytes { Console.emit($0, endLine: .plain) }
        line.pointee.reset()
    } else {
        line.pointee.put(byte)
    }
    return c
}

/// The calling CPU's number as a lock owner id (valid from kmain's first lines).
func currentCPUNumberForLocks() -> Int32 { Int32(truncatingIfNeeded: PerCPU.currentNumber) }
