import Synchronization

// Waits that halt instead of spinning (docs/benchmarks.md, "Halting waits").
// A CPU that waits for another CPU's progress with its interrupts on may HLT
// until an interrupt instead of spinning with `pause`:
//   - under a nested KVM that emulates every instruction, an IPI reaches a
//     spinning vCPU only when it next exits (about 1.5 M cycles), a halted one in
//     about 0.2 M;
//   - under TCG on fewer host cores than vCPUs, a halted vCPU gives its host
//     core to the CPUs it waits for (a spinning one steals it).
// Who writes what: each CPU its own slot (the channel it is halted on, 0 when
// not halted); the wake-up IPI is sent by whoever made a halted waiter's
// condition true.
// W1 (no lost wake-up): the waiter stores its slot (a locked exchange: a full
// fence), re-checks its condition, and only then STI;HLT; the waker stores the
// condition, fences (MFENCE or a locked instruction), then loads the slot. In
// this store-buffering shape at least one side sees the other's store: either
// the waiter's re-check sees the condition, or the waker sees the slot and
// sends the IPI, which STI;HLT takes even if it arrives between the STI and the
// HLT (the idle loop's rule).
// W2 (pinned): a waiter stays on its CPU from its slot store until it has
// cleared the slot (a critical section around the pass), so it only ever
// clears its own announcement.
// Waits with interrupts off (a rendezvous participant, the initiator holding
// the rendezvous mutex, the switch path's hand-off) cannot halt: nothing but an
// NMI would wake them. They spin as before.

enum WaitKind: Int, CaseIterable {
    case ipiq = 0            // wait_ipiq: until the target ran our message
    case cpusync             // the cpusync caller: until every remote acknowledged
    case rendezvousMutex     // an initiator waiting for its ticket on the rendezvous mutex
    case torture             // wait-wakeup's own waits (the suite turns it on while it runs)
    var name: StaticString {
        switch self {
        case .ipiq: return "ipiq"
        case .cpusync: return "cpusync"
        case .rendezvousMutex: return "rendezvous"
        case .torture: return "torture"
        }
    }
}

/// What one pass of a wait loop did (wait-wakeup counts them).
enum WaitPass {
    case paused     // spun once (this kind does not halt, or interrupts are off)
    case caught     // the W1 re-check found the condition already true: no HLT
    case halted     // HLT until an interrupt
}

enum HaltingWait {
    nonisolated(unsafe) static var slots: UnsafeMutablePointer<Atomic<UInt>>? = nil
    /// Which kinds halt: `wait.halt=` at boot; the benchmarks switch it to
    /// measure both ways.
    nonisolated(unsafe) static var halting = InlineArray<4, Bool>(repeating: false)
    static let halts = Atomic<UInt64>(0)         // HLTs taken in waits
    static let wakeIPIs = Atomic<UInt64>(0)      // wake-up IPIs sent

    static func initialize(cpuCount: Int) {
        let s = UnsafeMutablePointer<Atomic<UInt>>.allocate(capacity: cpuCount)
        for i in 0..<cpuCount { (s + i).initialize(to: Atomic(0)) }
        slots = s
        Traps.register(vector: Vectors.waitWakeup) { _ in LocalAPIC.eoi() }   // the HLT's end is its whole purpose
        configure(KernelOptions.value("wait.halt") ?? defaultPolicy)
        refuseEvery = UInt64(max(0, KernelOptions.int("wait.refuse_wakes", default: 0)))
    }

    /// Chosen per wait from `run=bench`'s .spin/.halt figures (bench/README.md):
    /// the cpusync caller and the rendezvous mutex waiters halt (TCG at
    /// -smp 4 on 2 host cores: cpusync about 2-3x faster, 1.7-2.4x more
    /// contended rendezvous per second; nested KVM: cpusync 1.2-1.4x, rendezvous
    /// even); wait_ipiq spins (a halted vCPU's wake-up made the round trip about
    /// 16x slower under TCG and 1.1-1.3x under KVM). Without overcommit (-smp 2)
    /// halting cpusync is slower: `wait.halt=none`.
    static let defaultPolicy = "cpusync,rendezvous"

    /// `all`, `none`, or a comma-separated list of kinds.
    static func configure(_ policy: String) {
        for k in WaitKind.allCases {
            let name = k.name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            halting[k.rawValue] = policy == "all" || policy.split(separator: ",").contains { $0 == name }
        }
    }

    /// One pass of a wait loop: HLT if `kind` halts and interrupts are on (not
    /// in an interrupt handler), re-checking `done` after announcing the wait
    /// (W1); otherwise one `pause`.
    @discardableResult
    static func pass(_ kind: WaitKind, channel: UInt, _ done: () -> Bool) -> WaitPass {
        guard halting[kind.rawValue], let slots, CPU.interruptsEnabled, !PerCPU.inInterrupt else {
            CPU.pause()
            return .paused
        }
        // W2 (the waiter is pinned): from the slot store to its clearing this
        // thread stays on this CPU. The interrupt that ends the HLT returns into
        // thread context with interrupts on, a preemption point: switched out and
        // moved there, the thread would clear `me`'s slot from another CPU, where
        // by then another waiter may have announced itself; that waiter would
        // halt with an empty slot and no waker would send it an IPI. The critical
        // section defers such a preemption to its exit, after the slot is clear
        // (bug.wait_unpinned leaves it out).
        let pinned = !BugKnobs.waitUnpinned
        if pinned { CriticalSection.enter() }
        CPU.disableInterrupts()
        let me = PerCPU.currentNumber
        slots[me].store(channel, ordering: .sequentiallyConsistent)    // W1: a full fence
        // W1: the re-check after the slot is visible. A waker that stored the
        // condition before our slot store saw 0 and sent nothing; only this
        // re-check sees its store (bug.wait_norecheck leaves it out).
        if !BugKnobs.waitNoRecheck && done() {
            slots[me].store(0, ordering: .relaxed)
            CPU.enableInterrupts()
            if pinned { CriticalSection.exit() }
            return .caught
        }
        halts.wrappingAdd(1, ordering: .relaxed)
        CPU.enableInterruptsAndHalt()             // the wake-up IPI, the tick, or any interrupt
        if PerCPU.currentNumber != me {
            panic("W2: a halting wait resumed on another CPU than the slot it announced")
        }
        slots[me].store(0, ordering: .relaxed)
        if pinned { CriticalSection.exit() }      // an owed preemption is taken here
        return .halted
    }

    /// After making a condition true and a full fence (W1): wakes `cpu` if it
    /// is halted waiting on `channel`. Returns whether it sent the IPI.
    @inline(__always) @discardableResult
    static func wake(_ cpu: Int, channel: UInt) -> Bool {
        guard let slots, slots[cpu].load(ordering: .relaxed) == channel else { return false }
        let n = wakeIPIs.wrappingAdd(1, ordering: .relaxed).newValue
        sendWakeup(to: cpu, number: n)
        return true
    }

    /// Test hook (`wait.refuse_wakes=N`): the first try of every Nth wake-up
    /// IPI is reported refused without being sent (0: never).
    nonisolated(unsafe) static var refuseEvery: UInt64 = 0
    /// Wake-up sends refused (by the local APIC or the hook), each retried.
    static let refusedWakes = Atomic<UInt64>(0)

    /// W1's other half: the waiter halted because it saw no condition, so only
    /// this IPI ends its HLT (with tick=0 nothing else ever does). An xAPIC
    /// whose previous IPI stays pending refuses the send (LocalAPIC.sendIPI is
    /// false): sent again, and a named panic if it keeps refusing rather than
    /// a waiter halted for good. A duplicate wake-up only ends a HLT early: the
    /// waiter re-checks its condition.
    @inline(never)
    static func sendWakeup(to cpu: Int, number: UInt64) {
        var refuse = refuseEvery != 0 && number % refuseEvery == 0
        for _ in 0..<8 {
            if refuse {
                refuse = false
                refusedWakes.wrappingAdd(1, ordering: .relaxed)      // test hook: refused, not sent
                if BugKnobs.waitIgnoreRefused { return }             // BUG: the wake-up is lost
                continue
            }
            if LocalAPIC.sendIPI(to: PerCPU.cpus[cpu].apicID, vector: UInt8(Vectors.waitWakeup)) { return }
            refusedWakes.wrappingAdd(1, ordering: .relaxed)
            if BugKnobs.waitIgnoreRefused { return }
        }
        panic("halting wait: the local APIC refused the wake-up IPI to CPU") { $0.dec(cpu); $0.write(" 8 times") }
    }

    /// Whether `cpu` announced a halting wait on `channel` (a hint, for the suites).
    static func isHalted(_ cpu: Int, channel: UInt) -> Bool {
        guard let slots else { return false }
        return slots[cpu].load(ordering: .relaxed) == channel
    }

    /// The same for every CPU halted on `channel`.
    static func wakeAll(channel: UInt) {
        for cpu in 0..<PerCPU.count { wake(cpu, channel: channel) }
    }
}
