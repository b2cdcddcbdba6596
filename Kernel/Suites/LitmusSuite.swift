import Synchronization

// litmus: the x86-TSO litmus tests of REFERENCES.md (herdtools7 catalogue),
// reported like litmus7: a histogram of final states, then
// `Observation NAME Never|Sometimes|Always P N` (P runs showed the relaxed
// outcome, N did not). A forbidden outcome seen even once is a FAIL; an allowed
// one (SB, R, RWC) is reported, not required (TCG rarely shows it, KVM should).

struct LitmusTest {
    let name: StaticString
    let threads: Int
    let forbidden: Bool
    /// Runs role `i`'s body.
    let body: (Int, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Void
    /// The outcome the test is about (relaxed / forbidden).
    let condition: (LitmusOutcome) -> Bool
    /// (role, register) pairs shown in the histogram, and whether x, y are.
    let shown: [(Int, Int)]
    let showX: Bool
    let showY: Bool
}

/// Registers of up to 4 roles (2 each) and the final x and y, each 0...3.
struct LitmusOutcome {
    var key: UInt32
    init(key: UInt32) { self.key = key }
    init(regs: UnsafeMutablePointer<UInt64>, x: UInt64, y: UInt64) {
        var k: UInt32 = 0
        // Role r's register j is the word at byte r*128 + j*8 (Arena.regs, litmus.asm).
        for r in 0..<4 { for j in 0..<2 { k |= UInt32(regs[r * 16 + j] & 3) << UInt32(2 * (2 * r + j)) } }
        k |= UInt32(x & 3) << 16 | UInt32(y & 3) << 18
        key = k
    }
    func r(_ role: Int, _ reg: Int) -> UInt64 { UInt64(key >> UInt32(2 * (2 * role + reg)) & 3) }
    var x: UInt64 { UInt64(key >> 16 & 3) }
    var y: UInt64 { UInt64(key >> 18 & 3) }
}

enum LitmusSuite {
    static let suite = TestSuite(name: "litmus", kind: .normal,
                                 summary: "x86-TSO litmus tests: forbidden outcomes never, SB reported", body: run)

    static let tests: [LitmusTest] = [
        LitmusTest(name: "SB", threads: 2, forbidden: false,
                   body: { i, s, r in i == 0 ? litmus_sb_p0(s, r) : litmus_sb_p1(s, r) },
                   condition: { $0.r(0, 0) == 0 && $0.r(1, 0) == 0 }, shown: [(0, 0), (1, 0)], showX: false, showY: false),
        LitmusTest(name: "SB+mfences", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_sbmf_p0(s, r) : litmus_sbmf_p1(s, r) },
                   condition: { $0.r(0, 0) == 0 && $0.r(1, 0) == 0 }, shown: [(0, 0), (1, 0)], showX: false, showY: false),
        LitmusTest(name: "SB+xchgs", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_sbx_p0(s, r) : litmus_sbx_p1(s, r) },
                   condition: { $0.r(0, 0) == 0 && $0.r(1, 0) == 0 }, shown: [(0, 0), (1, 0)], showX: false, showY: false),
        LitmusTest(name: "MP", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_mp_p0(s, r) : litmus_mp_p1(s, r) },
                   condition: { $0.r(1, 0) == 1 && $0.r(1, 1) == 0 }, shown: [(1, 0), (1, 1)], showX: false, showY: false),
        LitmusTest(name: "LB", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_lb_p0(s, r) : litmus_lb_p1(s, r) },
                   condition: { $0.r(0, 0) == 1 && $0.r(1, 0) == 1 }, shown: [(0, 0), (1, 0)], showX: false, showY: false),
        LitmusTest(name: "S", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_s_p0(s, r) : litmus_s_p1(s, r) },
                   condition: { $0.x == 2 && $0.r(1, 0) == 1 }, shown: [(1, 0)], showX: true, showY: false),
        LitmusTest(name: "R", threads: 2, forbidden: false,
                   body: { i, s, r in i == 0 ? litmus_r_p0(s, r) : litmus_r_p1(s, r) },
                   condition: { $0.y == 2 && $0.r(1, 0) == 0 }, shown: [(1, 0)], showX: false, showY: true),
        LitmusTest(name: "R+mfence", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_r_p0(s, r) : litmus_rmf_p1(s, r) },
                   condition: { $0.y == 2 && $0.r(1, 0) == 0 }, shown: [(1, 0)], showX: false, showY: true),
        LitmusTest(name: "2+2W", threads: 2, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_w22_p0(s, r) : litmus_w22_p1(s, r) },
                   condition: { $0.x == 2 && $0.y == 2 }, shown: [], showX: true, showY: true),
        LitmusTest(name: "WRC", threads: 3, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_wrc_p0(s, r) : i == 1 ? litmus_wrc_p1(s, r) : litmus_wrc_p2(s, r) },
                   condition: { $0.r(1, 0) == 1 && $0.r(2, 0) == 1 && $0.r(2, 1) == 0 },
                   shown: [(1, 0), (2, 0), (2, 1)], showX: false, showY: false),
        LitmusTest(name: "RWC", threads: 3, forbidden: false,
                   body: { i, s, r in i == 0 ? litmus_rwc_p0(s, r) : i == 1 ? litmus_rwc_p1(s, r) : litmus_rwc_p2(s, r) },
                   condition: { $0.r(1, 0) == 1 && $0.r(1, 1) == 0 && $0.r(2, 0) == 0 },
                   shown: [(1, 0), (1, 1), (2, 0)], showX: false, showY: false),
        LitmusTest(name: "RWC+mfence", threads: 3, forbidden: true,
                   body: { i, s, r in i == 0 ? litmus_rwc_p0(s, r) : i == 1 ? litmus_rwc_p1(s, r) : litmus_rwcmf_p2(s, r) },
                   condition: { $0.r(1, 0) == 1 && $0.r(1, 1) == 0 && $0.r(2, 0) == 0 },
                   shown: [(1, 0), (1, 1), (2, 0)], showX: false, showY: false),
        LitmusTest(name: "IRIW", threads: 4, forbidden: true,
                   body: { i, s, r in
                       switch i { case 0: litmus_iriw_p0(s, r); case 1: litmus_iriw_p1(s, r)
                                  case 2: litmus_iriw_p2(s, r); default: litmus_iriw_p3(s, r) } },
                   condition: { $0.r(2, 0) == 1 && $0.r(2, 1) == 0 && $0.r(3, 0) == 1 && $0.r(3, 1) == 0 },
                   shown: [(2, 0), (2, 1), (3, 0), (3, 1)], showX: false, showY: false),
    ]

    /// One run's shared memory: x, y on separate cache lines; each role's two
    /// registers on a line of its own; the barrier counter and stop flag.
    final class Arena {
        let memory: UnsafeMutableRawPointer
        let barrier = Atomic<UInt64>(0)
        let stop = Atomic<Bool>(false)
        var histogramKeys = [UInt32](repeating: 0, count: 64)
        var histogramCounts = [UInt64](repeating: 0, count: 64)
        var distinct = 0
        var runs: UInt64 = 0
        var relaxed: UInt64 = 0
        init() {
            var p: UnsafeMutableRawPointer? = nil
            _ = posix_memalign(&p, 4096, 4096)
            memory = p!
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        }
        deinit { kfree(memory) }
        var shared: UnsafeMutableRawPointer { memory }
        func regs(_ role: Int) -> UnsafeMutableRawPointer { memory + 1024 + role * 128 }
        /// All registers as words: role r's register j at index r*16 + j.
        var allRegs: UnsafeMutablePointer<UInt64> { (memory + 1024).assumingMemoryBound(to: UInt64.self) }
    }

    static func run(_ t: inout TestContext) {
        let cpus = SMP.online
        let maxIterations = UInt64(max(1, KernelOptions.int("litmus.iterations", default: 200_000)))
        let budgetMs = UInt64(max(10, KernelOptions.int("litmus.ms", default: 300)))
        let only = KernelOptions.list("litmus.tests")
        for test in tests {
            if !only.isEmpty && !only.contains(where: { named(test.name, $0) }) { continue }
            guard cpus.count >= test.threads else {
                t.skip("a litmus test needs more CPUs than are online"); continue
            }
            let arena = Arena()
            runOne(test, arena, cpus: cpus, maxIterations: maxIterations, budgetMs: budgetMs)
            report(test, arena, &t)
        }
    }

    private static func named(_ a: StaticString, _ b: String) -> Bool {
        a.withUTF8Buffer { ab in Array(ab) == Array(b.utf8) }
    }

    static func runOne(_ test: LitmusTest, _ a: Arena, cpus: CPUMask, maxIterations: UInt64, budgetMs: UInt64) {
        let p = test.threads
        let end = TSC.now &+ TSC.ticksPerMs &* budgetMs
        var threads: [Thread] = []
        var cpu = cpus.first ?? 0
        for role in 0..<p {
            if let td = Thread.create("litmus", priority: Thread.highPriority, cpu: cpu, {
                var k: UInt64 = 0
                while true {
                    arrive(a, UInt64(p) * (2 * k + 1))           // start together
                    if a.stop.load(ordering: .acquiring) { break }
                    let flags = CPU.saveFlagsAndDisableInterrupts()
                    test.body(role, a.shared, a.regs(role))
                    CPU.restoreFlags(flags)
                    arrive(a, UInt64(p) * (2 * k + 2))           // all finished
                    if role == 0 {
                        collect(test, a)
                        if a.runs >= maxIterations || TSC.now >= end { a.stop.store(true, ordering: .releasing) }
                    }
                    k += 1
                }
            }) { threads.append(td) }
            cpu = cpus.next(atOrAfter: cpu + 1) ?? cpu
        }
        // Start them only once all exist, ours last: a high-priority role thread
        // spinning at the first barrier on this CPU would otherwise keep us from
        // ever creating the others.
        let me = PerCPU.currentNumber
        for td in threads where td.cpu != me { Scheduler.schedule(td) }
        for td in threads where td.cpu == me { Scheduler.schedule(td) }
        for td in threads { td.join() }
    }

    /// A counting barrier: returns once `target` arrivals happened in total.
    private static func arrive(_ a: Arena, _ target: UInt64) {
        a.barrier.wrappingAdd(1, ordering: .sequentiallyConsistent)
        while a.barrier.load(ordering: .acquiring) < target { CPU.pause() }
    }

    /// Role 0, between the two barriers of an iteration: record and reset.
    private static func collect(_ test: LitmusTest, _ a: Arena) {
        let s = a.shared.assumingMemoryBound(to: UInt64.self)
        let o = LitmusOutcome(regs: a.allRegs, x: s[0], y: s[8])
        a.runs += 1
        if test.condition(o) { a.relaxed += 1 }
        var i = 0
        while i < a.distinct && a.histogramKeys[i] != o.key { i += 1 }
        if i == a.distinct && i < 64 { a.histogramKeys[i] = o.key; a.distinct += 1 }
        if i < 64 { a.histogramCounts[i] += 1 }
        s[0] = 0; s[8] = 0
        for r in 0..<4 { a.allRegs[r * 16] = 0; a.allRegs[r * 16 + 1] = 0 }
    }

    static func report(_ test: LitmusTest, _ a: Arena, _ t: inout TestContext) {
        Console.line { $0.write("Test "); $0.write(test.name); $0.write(test.forbidden ? " Forbidden" : " Allowed") }
        Console.line { $0.write("Histogram ("); $0.dec(a.distinct); $0.write(" states)") }
        for i in 0..<a.distinct {
            let o = LitmusOutcome(key: a.histogramKeys[i])
            Console.line { l in
                l.dec(a.histogramCounts[i], width: 9); l.write(test.condition(o) ? " *>" : "  :>")
                for (role, reg) in test.shown {
                    l.dec(UInt64(role)); l.write(":r"); l.dec(UInt64(reg)); l.write("="); l.dec(o.r(role, reg)); l.write("; ")
                }
                if test.showX { l.write("x="); l.dec(o.x); l.write("; ") }
                if test.showY { l.write("y="); l.dec(o.y); l.write("; ") }
            }
        }
        let never = a.relaxed == 0, always = a.relaxed == a.runs
        Console.line { l in
            l.write("Observation "); l.write(test.name)
            l.write(never ? " Never " : always ? " Always " : " Sometimes ")
            l.dec(a.relaxed); l.write(" "); l.dec(a.runs - a.relaxed)
        }
        if test.forbidden {
            t.check(a.runs > 0 && never) { l in
                l.write(test.name); l.write(": forbidden outcome "); l.dec(a.relaxed); l.write(" times in "); l.dec(a.runs); l.write(" runs")
            }
        } else {
            var total: UInt64 = 0
            for i in 0..<a.distinct { total += a.histogramCounts[i] }
            t.check(a.runs > 0 && total == a.runs) { l in
                l.write(test.name); l.write(": "); l.dec(a.runs); l.write(" runs, relaxed outcome (allowed) seen "); l.dec(a.relaxed); l.write(" times")
            }
        }
    }
}
