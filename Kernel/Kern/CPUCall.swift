import Synchronization

// Starting a function on another CPU before kernel threads exist: each CPU has a
// one-slot mailbox that its idle loop checks after every wake-up; the sender fills
// the slot and sends a `testIPI` to wake it. The function runs in the idle loop's
// context (interrupts enabled, not in an interrupt handler). Used by the SMP
// suites; kernel threads and the IPI queues replace it for everything else.

enum CPUCall {
    typealias Function = @convention(c) (UInt64) -> Void
    /// One CPU's mailbox: function pointer (0 = empty) and argument.
    struct Slot: ~Copyable {
        let function = Atomic<UInt>(0)
        let argument = Atomic<UInt64>(0)
    }
    nonisolated(unsafe) static var slots: UnsafeMutablePointer<Slot>? = nil
    /// Per CPU: calls completed.
    nonisolated(unsafe) static var completedCounts: UnsafeMutablePointer<Atomic<UInt64>>? = nil
    static var completed: UnsafeMutablePointer<Atomic<UInt64>> { completedCounts! }

    /// Boot CPU, before any AP starts (the pointers are read-only afterwards).
    static func initialize() {
        let s = UnsafeMutablePointer<Slot>.allocate(capacity: PerCPU.maxCPUs)
        let c = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: PerCPU.maxCPUs)
        for i in 0..<PerCPU.maxCPUs {
            (s + i).initialize(to: Slot())
            (c + i).initialize(to: Atomic(0))
        }
        completedCounts = c
        slots = s
        // The wake-up IPI: nothing to do in the handler, the idle loop looks.
        Traps.register(vector: Vectors.testIPI) { _ in LocalAPIC.eoi() }
    }

    /// Asks `cpu` to run `fn(arg)` from its idle loop. Returns false if its slot is
    /// still busy with an earlier call.
    @discardableResult
    static func start(on cpu: Int, _ fn: Function, _ arg: UInt64) -> Bool {
        guard let slots else { return false }
        let raw = UInt(bitPattern: unsafeBitCast(fn, to: UnsafeRawPointer.self))
        slots[cpu].argument.store(arg, ordering: .relaxed)
        // Release: the argument is visible before the function pointer that
        // publishes it (the idle loop's acquiring exchange pairs with this).
        let (placed, _) = slots[cpu].function.compareExchange(expected: 0, desired: raw, ordering: .releasing)
        guard placed else { return false }
        LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.testIPI))
        return true
    }

    static var hasPending: Bool {
        guard let slots else { return false }
        return slots[PerCPU.currentNumber].function.load(ordering: .relaxed) != 0
    }

    /// Called by the idle loop (interrupts enabled) when `hasPending`.
    static func runPending() {
        guard let slots else { return }
        let me = PerCPU.currentNumber
        let raw = slots[me].function.load(ordering: .acquiring)
        guard raw != 0 else { return }
        let argument = slots[me].argument.load(ordering: .relaxed)   // ordered by the acquire above
        let fn = unsafeBitCast(UnsafeRawPointer(bitPattern: raw)!, to: Function.self)
        fn(argument)
        slots[me].function.store(0, ordering: .releasing)
        completed[me].wrappingAdd(1, ordering: .releasing)
    }

    /// Runs `fn(arg)` on every online CPU but this one, and on this one last;
    /// returns when all have finished or `timeoutMs` passed (false then).
    static func runEverywhere(_ fn: Function, _ arg: UInt64, timeoutMs: UInt64) -> Bool {
        let me = PerCPU.currentNumber
        var before = InlineArray<64, UInt64>(repeating: 0)
        var started = CPUMask()
        SMP.online.forEach { cpu in
            guard cpu != me else { return }
            before[cpu] = completed[cpu].load(ordering: .acquiring)
            if start(on: cpu, fn, arg) { started.insert(cpu) }
        }
        fn(arg)
        let deadline = TimeBudget(milliseconds: timeoutMs)
        var done = false
        while !done && !deadline.expired {
            done = true
            started.forEach { cpu in
                if completed[cpu].load(ordering: .acquiring) == before[cpu] { done = false }
            }
            if !done { CPU.pause() }
        }
        return done && started.count == SMP.online.count - 1
    }
}
