// Deliberate kernel faults. Each ends the kernel through the fault reporter, so
// they are [fatal] suites, run by name only; the integration tests check the
// serial output (vector name, registers, backtrace) and the failure exit code.
// A suite whose fault did not come records its one check, `faulted`, as a FAIL
// (a report that never came proves nothing); when the fault comes, the kernel
// ends before any check line.

enum FaultSuites {
    static let unmappedAddress: UInt64 = 0x0000_00C0_DEAD_0000   // PML4 slot 1, never mapped

    static let pageFault = TestSuite(name: "fault-pf", kind: .fatal,
        summary: "read an unmapped kernel address: #PF report", body: { t in
            Console.print("fault-pf: reading an unmapped address; a #PF report follows")
            _ = CPU.touch(unmappedAddress)
            t.expect("faulted", false, "the read returned (no fault)")
        })

    static let divideError = TestSuite(name: "fault-de", kind: .fatal,
        summary: "divide by zero: #DE report", body: { t in
            Console.print("fault-de: dividing by zero; a #DE report follows")
            _ = CPU.divideByZero(42)
            t.expect("faulted", false, "the division returned (no fault)")
        })

    static let nullPointer = TestSuite(name: "fault-null", kind: .fatal,
        summary: "dereference a null pointer: #PF at address 0", body: { t in
            Console.print("fault-null: reading address 8; a #PF report follows")
            _ = CPU.touch(8)
            t.expect("faulted", false, "the read returned (no fault)")
        })

    static let swiftTrap = TestSuite(name: "fault-trap", kind: .fatal,
        summary: "Swift integer overflow trap: #UD report naming a Swift runtime trap", body: { t in
            Console.print("fault-trap: overflowing an Int; a #UD report follows")
            var x = Int.max
            x += Int(CPU.rdtsc() & 1) | 1      // the optimizer cannot fold an rdtsc

            t.expect("faulted", false) { $0.write("no trap, x = "); $0.dec(x) }
        })

    static let threadStackOverflow = TestSuite(name: "fault-thread-stack", kind: .fatal,
        summary: "a kernel thread overflows its stack: #DF report names the guard page", body: { t in
            Console.print("fault-thread-stack: a thread recurses without bound; a #DF report follows")
            let td = Thread.spawn("overflow", { _ = FaultSuites.recurse(1) })
            td?.join()
            t.expect("faulted", false, "the thread returned (no fault)")
        })

    static let stackOverflow = TestSuite(name: "fault-stack", kind: .fatal,
        summary: "unbounded recursion on a guarded stack: #DF on its IST stack", body: { t in
            guard let stack = KernelStacks.allocate(pages: 4) else {
                t.expect("setup", false, "could not allocate a stack"); return
            }
            Console.print("fault-stack: recursing on a 16 KiB guarded stack; a #DF report follows")
            CPU.callOnStack({ _ in _ = recurse(1) }, arg: 0, stackTop: stack.top)
            t.expect("faulted", false, "recursion returned (no fault)")
        })

    /// A handler that yields from thread-context IPI processing (a poller thread
    /// on another CPU; run with tick=0 so no interrupt processes it first): the
    /// switch path must refuse with a named panic (docs/ipi-queues.md, D5).
    static let ipiHandlerYields = TestSuite(name: "fault-ipi-yield", kind: .fatal,
        summary: "an IPI handler yields inside thread-context processing: named panic", body: { t in
            guard let cpu = SMP.online.nth(1) else { t.skip("faulted", reason: .needs2CPUs, "needs 2 CPUs"); return }
            Console.print("fault-ipi-yield: a handler yields; a panic follows")
            let polling = SharedCounters()
            Thread.spawn("poller", cpu: cpu, {
                polling.values[0] = 1
                while true { IPIQueue.process(); CPU.pause() }
            })
            // Once the poller runs (its own hand-over message processed), a passive
            // message is found only by its thread-context processing.
            _ = spinUntil(milliseconds: 5000) { CPU.compilerBarrier(); return polling.values[0] == 1 }
            IPIQueue.send(to: cpu, { _, _ in Scheduler.yield() }, mode: .passive)
            _ = spinUntil(milliseconds: 5000) { false }
            t.expect("faulted", false, "no panic")
        })

    /// Every CPU faults at the same moment: exactly one whole report (the others
    /// stop silently), never a report cut off by another CPU's.
    static let allCPUsFault = TestSuite(name: "fault-all-cpus", kind: .fatal,
        summary: "every CPU reads an unmapped address at once: one whole #PF report", body: { t in
            Console.print("fault-all-cpus: every CPU faults at once; one #PF report follows")
            let go = SharedCounters()
            SMP.online.forEach { cpu in
                guard cpu != PerCPU.currentNumber else { return }
                Thread.spawn("faulter", cpu: cpu, {
                    while go.values[0] == 0 { CPU.compilerBarrier(); CPU.pause() }
                    _ = CPU.touch(unmappedAddress)
                })
            }
            TSC.delay(microseconds: 20_000)
            go.values[0] = 1
            _ = CPU.touch(unmappedAddress)
            t.expect("faulted", false, "the read returned (no fault)")
        })

    nonisolated(unsafe) static var sink: UInt64 = 0

    /// Not a tail call (work after the call), 256 bytes of frame per level.
    @inline(never)
    static func recurse(_ depth: UInt64) -> UInt64 {
        var pad = InlineArray<32, UInt64>(repeating: depth)
        CPU.compilerBarrier()
        // `sink` is never all-ones, but the compiler cannot know: the recursion
        // stays unbounded without a warning about it.
        if sink != UInt64.max { pad[Int(depth % 32)] = recurse(depth + 1) }
        sink = pad[Int(depth % 7)]
        return pad[0] &+ 1
    }
}
