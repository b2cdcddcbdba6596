import Synchronization

// spinlock-torture (after Linux locktorture): every online CPU hammers a few
// SpinLocks for `torture.seconds`. Each lock guards a plain (non-atomic) counter
// and a plain holder field; a CPU that finds the holder set after acquiring, or a
// final counter that differs from the sum of the acquisitions, proves a broken
// mutual exclusion. The run also proves it raced: every CPU took part and the
// suite's own locks were contended (their slow path ran). Negative control:
// `locktorture.lock=broken` swaps in a test-then-set lock built from plain loads
// and stores, which must FAIL.

enum SpinlockTorture {
    static let suite = TestSuite(name: "spinlock-torture", kind: .normal,
                                 summary: "all CPUs hammer spinlocks; mutual exclusion checked", torture: true, body: run)
    static let lockCount = 4

    /// Shared state, in heap memory so every CPU sees the same bytes.
    struct Shared {
        var value: UInt64        // incremented under the lock, non-atomically
        var holder: Int64        // CPU inside the critical section, or -1
        var brokenFlag: UInt64   // the broken lock's "lock word"
    }
    nonisolated(unsafe) static var locks: UnsafeMutablePointer<SpinLock>? = nil
    nonisolated(unsafe) static var shared: UnsafeMutablePointer<Shared>? = nil
    /// Per CPU, per lock: acquisitions; per CPU: errors seen.
    nonisolated(unsafe) static var acquisitions: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var errors: UnsafeMutablePointer<UInt64>? = nil
    nonisolated(unsafe) static var useBrokenLock = false
    nonisolated(unsafe) static var deadline: UInt64 = 0
    /// The locks' slow-path counts before this run (the counters are the locks').
    nonisolated(unsafe) static var contendedBefore = InlineArray<4, UInt64>(repeating: 0)

    static func run(_ t: inout TestContext) {
        guard SMP.online.count >= 2 else { t.skip("run", reason: .needs2CPUs, "needs at least 2 CPUs (no contention on one)"); return }
        setUp()
        let seconds = UInt64(max(1, KernelOptions.int("torture.seconds", default: 2)))
        useBrokenLock = KernelOptions.value("locktorture.lock") == "broken"
        t.note { $0.write("lock type "); $0.write(useBrokenLock ? "broken (negative control)" : "ticket SpinLock"); $0.write(", "); $0.dec(seconds); $0.write(" s on "); $0.dec(SMP.online.count); $0.write(" CPUs") }
        deadline = TSC.now &+ TSC.ticksPerMs &* 1000 &* seconds
        // A CPU whose thread could not be created shows as a CPU that took no part.
        SuiteThreads.runOnEveryCPU("locktorture") { SpinlockTorture.hammer() }
        report(&t)
    }

    private static func setUp() {
        if locks == nil {
            let l = UnsafeMutablePointer<SpinLock>.allocate(capacity: lockCount)
            for i in 0..<lockCount { (l + i).initialize(to: SpinLock("torture")) }
            locks = l
            shared = .allocate(capacity: lockCount)
            acquisitions = .allocate(capacity: PerCPU.maxCPUs * lockCount)
            errors = .allocate(capacity: PerCPU.maxCPUs)
        }
        for i in 0..<lockCount {
            shared![i] = Shared(value: 0, holder: -1, brokenFlag: 0)
            contendedBefore[i] = locks![i].raw.contended.load(ordering: .relaxed)
        }
        acquisitions!.initialize(repeating: 0, count: PerCPU.maxCPUs * lockCount)
        errors!.initialize(repeating: 0, count: PerCPU.maxCPUs)
    }

    /// The loop every CPU runs.
    static func hammer() {
        let me = PerCPU.currentNumber
        let s = shared!
        var rng = UInt64(me + 1) &* 0x9E37_79B9_7F4A_7C15
        var n: UInt64 = 0
        while TSC.now < deadline {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            let i = Int(rng % UInt64(lockCount))
            acquire(i)
            CPU.compilerBarrier()   // plain accesses below must really hit memory
            if s[i].holder != -1 { errors![me] += 1 }
            s[i].holder = Int64(me)
            let v = s[i].value
            for _ in 0..<Int(rng >> 60) { CPU.pause() }   // widen the window a little
            s[i].value = v &+ 1
            if s[i].holder != Int64(me) { errors![me] += 1 }
            s[i].holder = -1
            CPU.compilerBarrier()
            release(i)
            acquisitions![me * lockCount + i] += 1
            n &+= 1
            if n & 63 == 0 { CPU.pause() }
        }
    }

    private static func acquire(_ i: Int) {
        if useBrokenLock {
            // Test, then set: two CPUs can both see 0 before either stores 1.
            let flag = (UnsafeMutableRawPointer(shared! + i) + MemoryLayout<Shared>.offset(of: \.brokenFlag)!)
                .assumingMemoryBound(to: UInt64.self)
            while true {
                CPU.compilerBarrier()
                if flag.pointee == 0 { break }
                CPU.pause()
            }
            CPU.pause()
            flag.pointee = 1
            CPU.compilerBarrier()
        } else {
            locks![i].lock()
        }
    }

    private static func release(_ i: Int) {
        if useBrokenLock {
            CPU.compilerBarrier()
            shared![i].brokenFlag = 0
        } else {
            locks![i].unlock()
        }
    }

    private static func report(_ t: inout TestContext) {
        var total: UInt64 = 0, lost: UInt64 = 0, errorCount: UInt64 = 0
        var maxCPU: UInt64 = 0, minCPU = UInt64.max
        for lock in 0..<lockCount {
            var sum: UInt64 = 0
            SMP.online.forEach { sum += acquisitions![$0 * lockCount + lock] }
            total += sum
            let v = shared![lock].value
            if v != sum { lost += sum > v ? sum - v : v - sum }
        }
        SMP.online.forEach { cpu in
            var mine: UInt64 = 0
            for lock in 0..<lockCount { mine += acquisitions![cpu * lockCount + lock] }
            maxCPU = max(maxCPU, mine); minCPU = min(minCPU, mine)
            errorCount += errors![cpu]
        }
        var contended: UInt64 = 0, spins: UInt64 = 0
        if !useBrokenLock {
            for i in 0..<lockCount {
                contended += locks![i].raw.contended.load(ordering: .relaxed) &- contendedBefore[i]
                spins += locks![i].raw.spins.load(ordering: .relaxed)
            }
        }
        Console.line { l in
            l.write("Writes:  Total: "); l.dec(total); l.write("  Max/Min: "); l.dec(maxCPU); l.write("/")
            l.dec(minCPU == UInt64.max ? 0 : minCPU)
            l.write(errorCount > 0 || lost > 0 ? "  !!!" : "  ")
            l.write("  Exclusion errors: "); l.dec(errorCount); l.write("  Lost updates: "); l.dec(lost)
            l.write("  Contended: "); l.dec(contended); l.write("  Spins: "); l.dec(spins)
        }
        let fewest = minCPU == UInt64.max ? 0 : minCPU
        t.expect("took-part", fewest, .above(0)) { l in
            l.write("every CPU took part ("); l.dec(total); l.write(" acquisitions, fewest on one CPU ")
            l.dec(minCPU == UInt64.max ? 0 : minCPU); l.write(")")
        }
        if !useBrokenLock {
            t.expect("window", contended, .above(0)) { l in l.write("the locks were contended: "); l.dec(contended); l.write(" acquisitions took the slow path") }
        }
        t.expect("exclusion", errorCount, .equals(0)) { $0.write("no CPU found another holder inside the lock ("); $0.dec(errorCount); $0.write(" errors)") }
        t.expect("lost-updates", lost, .equals(0)) { $0.write("every counter equals the sum of its acquisitions ("); $0.dec(lost); $0.write(" lost updates)") }
    }
}
