import Synchronization

// Kernel threads (DragonFly's LWKT threads): each has its own guarded kernel stack,
// belongs to exactly one CPU at a time (`cpu`), and runs only there until it hands
// itself to another CPU (Scheduler.migrate). Scheduling: Kern/Sched/LWKTScheduler.swift.

/// The part of a thread the assembly touches (Boot/switch.asm): raw memory with
/// a stable address, never moved by Swift.
struct ThreadContext {
    /// Saved stack pointer while the thread is switched out.
    var rsp: UInt64
    /// 1 while a CPU runs on this thread's stack. Set by the CPU switching in,
    /// cleared by the CPU switching out after its last write (D6,
    /// docs/ipi-queues.md).
    var running: UInt32
    /// Switch-outs so far: bumped by the switch after it saved rsp and before it
    /// clears `running`. A CPU pulling the thread checks it after its fence (D6).
    var switchOuts: UInt32
    // For the debugger (scripts/gdbinit), kept current by Thread: plain
    // fields at fixed offsets, readable without knowing Swift's layouts.
    var id: UInt64 = 0               // +16
    var cpu: UInt64 = 0              // +24
    var state: UInt64 = 0            // +32  Thread.State raw value
    var name: UInt64 = 0             // +40  StaticString bytes
    var nameLength: UInt64 = 0       // +48
    var object: UInt64 = 0           // +56  the Thread (gs:16 holds the same pointer)
}

final class Thread: RunQueueNode {
    enum State: UInt8 { case embryo, runnable, running, sleeping, migrating, exited }

    static let idlePriority = 0
    /// The bsd4 helper threads (DragonFly's TDPRI_USER_SCHEDULER): below every
    /// lwp, so a request is normally handled by the lwp's own acquire.
    static let userSchedulerPriority = 1
    static let normalPriority = 10
    static let highPriority = 20

    let id: Int
    let name: StaticString
    var priority: Int
    /// Owning CPU. Written by the owner only, by the thread itself when it gives
    /// itself away (Scheduler.migrate), or, for an lwp thread parked on the bsd4
    /// run queue (owned by nobody then), by the CPU that pulls it, under bsd4_spin.
    /// B5's publication order: a move stores the state (.migrating) first and
    /// the new owner second. The store here is a release and the load an
    /// acquire, so a CPU that reads itself as the owner and then the state
    /// sees .migrating (or what came after it), never the .runnable of before
    /// the move: a wake there must not queue a thread still running on its old
    /// CPU. Under x86-TSO both are plain MOVs (stores are not reordered with
    /// stores, loads not with loads); the orderings pin the compiler.
    var cpu: Int {
        get { cpuWord.load(ordering: .acquiring) }
        set {
            cpuWord.store(newValue, ordering: .releasing)
            context.pointee.cpu = UInt64(newValue)
        }
    }
    let cpuWord: Atomic<Int>
    let stateWord = Atomic<UInt8>(State.embryo.rawValue)
    let context: UnsafeMutablePointer<ThreadContext>
    let stack: KernelStacks.Stack?
    var entry: (() -> Void)?

    // Critical sections (docs/critical-sections.md): written only by the thread
    // itself (and by an interrupt handler running on top of it, with its own
    // balanced raw section). Atomics because an interrupt handler on this CPU
    // writes them between the thread's accesses; relaxed, so every access is
    // one plain MOV (CriticalSection.swift keeps their order with fences, and
    // scripts/check-critical-exit.sh checks it in the image).
    let critnestWord = Atomic<Int>(0)
    let owepreemptWord = Atomic<Bool>(false)
    var critnest: Int {
        get { critnestWord.load(ordering: .relaxed) }
        set { critnestWord.store(newValue, ordering: .relaxed) }
    }
    var owepreempt: Bool {
        get { owepreemptWord.load(ordering: .relaxed) }
        set { owepreemptWord.store(newValue, ordering: .relaxed) }
    }
    /// Test hooks, 0 for every other thread: TSC cycles to hold a race window
    /// open on this thread - the outermost critical_exit with critnest 0 before
    /// it looks at owepreempt (rendezvous-preempt), and a hand-off between its
    /// send and its switch-out (migrate; until the target took the message).
    var criticalWindowCycles: UInt64 = 0
    var handoffWindowCycles: UInt64 = 0
    /// Preemptions this thread took at its outermost critical_exit (deferred).
    var deferredPreemptions: UInt64 = 0
    /// Set by preemptOwed around that switch when its caller had interrupts
    /// on: the switch may move the thread (its critical section is over).
    var switchAtCriticalExit = false
    /// Set by preemptOnInterruptReturn around its switch: the interrupted code
    /// had interrupts on (InterruptReturn.mayPreempt), so it may move.
    var switchAtInterruptReturn = false
    /// cpusyncs this thread is running as the caller (Kern/SMP/CPUSync.swift).
    var cpusyncDepth = 0
    /// Hand-offs of this thread whose puller found the switch-out stamp behind
    /// after RUNNING was clear (D6 violations; only the negative control).
    let handoffStampBehind = Atomic<UInt64>(0)
    /// Hand-offs of this thread whose puller arrived while it was still RUNNING
    /// on the old CPU (the D6 window) and had to spin.
    let handoffSpins = Atomic<UInt64>(0)
    /// spinlock_enter state while switched out (the CPU's gs:24/gs:32 while in).
    var spinCount: UInt64 = 0
    var spinFlags: UInt64 = 0

    // Run queue links (owner CPU only).
    var rqNext: Thread? = nil
    var rqPrev: Thread? = nil
    var rqLevel = -1
    /// Link in a waker's private list of threads it just woke (Sleep.swift).
    var wakeNext: Thread? = nil

    // Sleep state (under the sleep-queue bucket lock, Kern/Sync/Sleep.swift).
    var wchan: UInt = 0
    var sleepNext: Thread? = nil
    var sleepPrev: Thread? = nil
    var sleepTimedOut = false
    /// Tick deadline of a timed sleep (owner CPU's tick scans it), 0 = none.
    var sleepDeadline: UInt64 = 0
    var timeoutNext: Thread? = nil
    var onTimeoutList = false
    /// Negative control of the sleep suite: this thread's sleeps drop the interlock.
    var dropsSleepInterlock = false

    let exited = Atomic<Bool>(false)
    let joinLock = SpinLock("thread join")
    /// Times a CPU switched to this thread.
    var switchesIn: UInt64 = 0
    /// The user-class lwp this thread carries (Kern/Sched/Bsd4/Lwp.swift), as an identity,
    /// or 0: the scheduler clock charges it. Cleared before the lwp goes.
    var lwpIdentity: UInt = 0

    // Binding and balancing (Kern/Sched/Binding.swift, Kern/Sched/Balancer.swift,
    // docs/binding-and-psref.md).
    /// BOUND: written only by the thread itself (bind/unbind); other CPUs read
    /// it as a hint, only the thread's own switch may trust it.
    let boundWord = Atomic<Bool>(false)
    /// The balancer may choose this thread for migration (set at creation: the
    /// kernel's own per-CPU threads are never moved behind their back).
    let balanced: Bool
    /// Target CPU chosen by the statistics pass, or -1. Written by the pass (any
    /// CPU), taken and cleared by the thread's own switch.
    let migrateTarget = Atomic<Int>(-1)
    /// When the pass chose that target (Clock.uptimeMilliseconds, at least 1),
    /// or 0 for a target set another way (never expires). The switch drops a
    /// target older than Balancer.targetExpiryTicks: it was chosen from load
    /// figures of an earlier pass (a thread pinned by sections for that long).
    let migrateTargetMarkedMs = Atomic<UInt64>(0)
    /// Balancer targets the switch dropped as expired.
    let expiredTargets = Atomic<UInt64>(0)
    /// Sleeps so far (the thread itself) and ticks it was charged while running
    /// (its CPU's tick): the pass reads both as hints.
    let sleeps = Atomic<UInt64>(0)
    let ticksRun = Atomic<UInt64>(0)
    /// The statistics pass's own memory of this thread (only the pass writes it,
    /// under the balancer lock).
    var statSleeps: UInt64 = 0, statTicks: UInt64 = 0, hogPasses = 0
    /// Switches that moved this thread to its target, and switches that found
    /// it bound with a target and kept it here (B2: the fix at work).
    let switchMigrations = Atomic<UInt64>(0)
    let keptBound = Atomic<UInt64>(0)
    /// Preemptions of this thread, with a target, that kept it here because
    /// the code it returns to had interrupts off (B6).
    let keptInterruptsOff = Atomic<UInt64>(0)
    /// Switches of this thread, bound, that resumed on another CPU (B1).
    let b1Violations = Atomic<UInt64>(0)

    var isBound: Bool { boundWord.load(ordering: .relaxed) }
    /// Passive references this thread holds (only it changes the count, in
    /// PassiveRef acquire/release); checked at its exit: a reference left
    /// behind would keep every destroy of its target waiting for good.
    var psrefsHeld = 0

    // Wake-ups racing with moves (Scheduler.acquire).
    /// Switches of this thread into a sleep that a waker had already undone
    /// (the switch queued it itself; the waker's message is redundant).
    let wokenInSwitch = Atomic<UInt64>(0)
    /// Wake messages that found this thread owned by another CPU (forwarded),
    /// and forwards refused by a full ring (dropped: redundant by then).
    let staleWakes = Atomic<UInt64>(0)
    let wakeForwardsDropped = Atomic<UInt64>(0)
    /// Test hook (wake-migrate), 0 for every other thread: TSC cycles a waker
    /// of this thread waits between reading its CPU and sending the message.
    var wakeSendDelayCycles: UInt64 = 0
    /// Test hook (wake-migrate): cycles this thread's untimed-interlock sleep
    /// spins between queueing itself and switching away.
    var sleepSwitchDelayCycles: UInt64 = 0

    // The monitor (ps, kill, bind).
    /// TSC at creation: a thread's CPU share is its ticks over its lifetime.
    let createdTSC = TSC.now
    /// A workload that checks `killRequested` (spawned from the monitor or a
    /// demo); `kill` refuses every other thread.
    var killable = false
    let killRequested = Atomic<Bool>(false)
    /// Placed by the monitor's `bind`: the balancer leaves it alone, and the
    /// switch moves it to `affinity` (retried at every preemption until it
    /// is there; the tick forces one).
    let pinned = Atomic<Bool>(false)
    let affinity = Atomic<Int>(-1)

    private static let nextID = Atomic<Int>(1)

    init(name: StaticString, priority: Int, cpu: Int, stack: KernelStacks.Stack?, balanced: Bool = false) {
        id = Thread.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.balanced = balanced
        self.name = name
        self.priority = priority
        self.cpuWord = Atomic<Int>(cpu)
        self.stack = stack
        context = .allocate(capacity: 1)
        context.initialize(to: ThreadContext(rsp: 0, running: 0, switchOuts: 0))
        context.pointee.id = UInt64(id)
        context.pointee.cpu = UInt64(cpu)
        context.pointee.name = UInt64(UInt(bitPattern: name.utf8Start))
        context.pointee.nameLength = UInt64(name.utf8CodeUnitCount)
        context.pointee.object = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
        ThreadTable.add(self)
        DebugThreads.add(context)
    }

    deinit {
        DebugThreads.remove(context)
        context.deallocate()
    }

    var state: State {
        get { State(rawValue: stateWord.load(ordering: .acquiring))! }
        set {
            stateWord.store(newValue.rawValue, ordering: .releasing)
            context.pointee.state = UInt64(newValue.rawValue)
        }
    }

    /// The thread running on this CPU (gs:16), or nil before threads exist here.
    static var currentIfAny: Thread? {
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return nil }
        return Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
    }

    static var current: Thread {
        guard let td = currentIfAny else { panic("no current thread on this CPU") }
        return td
    }

    /// Creates a thread on `cpu` (default: the caller's, a hint) and makes it
    /// runnable there. `balanced`: the balancer may move it (Kern/Sched/Balancer.swift).
    @discardableResult
    static func spawn(_ name: StaticString, priority: Int = normalPriority, cpu: Int? = nil, balanced: Bool = false,
                      _ body: @escaping () -> Void) -> Thread? {
        guard let td = create(name, priority: priority, cpu: cpu ?? PerCPU.currentNumber, balanced: balanced, body) else {
            return nil
        }
        if balanced { Balancer.register(td) }
        Scheduler.schedule(td)
        return td
    }

    /// Creates a thread without scheduling it.
    static func create(_ name: StaticString, priority: Int, cpu: Int, balanced: Bool = false,
                       _ body: @escaping () -> Void) -> Thread? {
        guard let stack = KernelStacks.allocate() else { return nil }
        let td = Thread(name: name, priority: priority, cpu: cpu, stack: stack, balanced: balanced)
        td.entry = body
        // The first switch into the thread "returns" into thread_bootstrap with
        // rbx = the thread (Boot/switch.asm). Six callee-saved slots, then the
        // return address at top-8 so that rsp is 16-byte aligned after `ret`.
        let top = stack.top
        let frame = UnsafeMutablePointer<UInt64>(bitPattern: UInt(top - 56))!
        for i in 0..<6 { frame[i] = 0 }
        frame[4] = UInt64(UInt(bitPattern: Unmanaged.passUnretained(td).toOpaque()))   // rbx
        frame[6] = LinkerSymbols.threadBootstrap
        td.context.pointee.rsp = top - 56
        td.spinCount = 0
        td.spinFlags = 0
        return td
    }

    /// Waits until the thread has exited.
    func join() {
        joinLock.lock()
        while !exited.load(ordering: .acquiring) {
            _ = Sleep.sleep(on: Sleep.channel(self), releasing: joinLock)
        }
        joinLock.unlock()
    }
}

/// First Swift code of every new thread (called by thread_bootstrap), on its own
/// stack, interrupts still disabled from the switch.
@_cdecl("thread_start")
func threadStart(_ raw: UnsafeMutableRawPointer) {
    runThreadBody(raw)
    Scheduler.exitCurrent()
}

/// Everything that touches the Thread object, in a frame that returns (and so
/// releases what it retained) before the thread's last switch.
@inline(never)
private func runThreadBody(_ raw: UnsafeMutableRawPointer) {
    let td = Unmanaged<Thread>.fromOpaque(raw).takeUnretainedValue()
    let zombie = Scheduler.afterSwitch()
    CPU.enableInterrupts()
    Scheduler.reap(zombie)
    let body = td.entry
    td.entry = nil
    body?()
    if td.psrefsHeld != 0 && !BugKnobs.misuseUnchecked {
        let (n, id, name) = (td.psrefsHeld, td.id, td.name)   // E7: plain values only
        panic("thread exited holding passive references") { l in
            l.write("thread #"); l.dec(id); l.write(" ("); l.write(name); l.write(") still holds "); l.dec(n)
        }
    }
    if td.balanced { Balancer.unregister(td) }
    ThreadTable.remove(td)
}
