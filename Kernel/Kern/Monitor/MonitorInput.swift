import Synchronization

// The serial console's input side. COM1's receive interrupt arrives through the
// I/O APIC on CPU 0; the handler moves every waiting byte into a ring and wakes
// the monitor thread, which sleeps while the ring is empty. Without an I/O APIC
// (no usable MADT) the monitor polls the UART once a tick instead.
//
// Who writes what:
//   the interrupt handler (CPU 0, lock held)   the ring's tail, `interrupts`
//   the monitor thread (lock held)             the ring's head
//   the handler, on Ctrl-C                     `interrupted` (read by long commands)

enum MonitorInput {
    static let lock = SpinLock("monitor input")
    private static let capacity = 512
    nonisolated(unsafe) private static var ring = [UInt8](repeating: 0, count: 512)
    nonisolated(unsafe) private static var head = 0, tail = 0
    /// Bytes lost because the ring was full (a paste faster than the monitor).
    static let overruns = Atomic<UInt64>(0)
    static let interrupts = Atomic<UInt64>(0)
    /// Ctrl-C seen by the handler: a running command should stop.
    static let interrupted = Atomic<Bool>(false)
    nonisolated(unsafe) private(set) static var interruptDriven = false
    private static let channel: UInt = 0x5EED_C0A1

    /// Boot CPU, after SMP bring-up: route COM1 (ISA IRQ 4) to CPU 0.
    static func start() {
        // The handler first, then the route (no vector may arrive unhandled).
        Traps.register(vector: Vectors.serial) { _ in MonitorInput.receive() }
        interruptDriven = true
        guard let madt = SMP.madt,
              IOAPIC.route(isaIRQ: 4, vector: UInt8(Vectors.serial), apicID: PerCPU.cpus[0].apicID, madt: madt) else {
            interruptDriven = false
            Console.print("monitor: no I/O APIC route for COM1; input is polled")
            return
        }
        Serial16550.com1.enableReceiveInterrupts()
        receive()                                   // bytes that arrived before the route
    }

    /// Interrupt context (or a poll): drain the UART into the ring.
    static func receive() {
        if interruptDriven { LocalAPIC.eoi() }
        interrupts.wrappingAdd(1, ordering: .relaxed)
        var got = false
        lock.lock()
        while let b = Console.poll() {
            if b == 0x03 { interrupted.store(true, ordering: .relaxed) }
            let next = (tail + 1) % capacity
            if next == head { overruns.wrappingAdd(1, ordering: .relaxed); continue }
            ring[tail] = b
            tail = next
            got = true
        }
        lock.unlock()
        if got { Sleep.wakeup(channel) }
    }

    /// The monitor thread: the next byte, sleeping until one arrives.
    static func next() -> UInt8 {
        lock.lock()
        while head == tail {
            if interruptDriven {
                _ = Sleep.sleep(on: channel, releasing: lock)
            } else {
                lock.unlock()
                if Clock.enabled { _ = Sleep.sleep(on: channel, timeoutTicks: 1) }
                else { Scheduler.yield(); TSC.delay(microseconds: 1000) }   // no tick to sleep on: poll gently
                receive()
                lock.lock()
            }
        }
        let b = ring[head]
        head = (head + 1) % capacity
        lock.unlock()
        return b
    }

    /// A byte if one is waiting, without sleeping (for `top`).
    static func take() -> UInt8? {
        if !interruptDriven { receive() }
        lock.lock()
        defer { lock.unlock() }
        guard head != tail else { return nil }
        let b = ring[head]
        head = (head + 1) % capacity
        return b
    }
}
