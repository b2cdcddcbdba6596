// A sleeping mutex built on sleep/wakeup: contenders sleep instead of spinning,
// so it may be held across long operations (never from interrupt context). The
// state lives under a spinlock interlock, which makes "owner busy -> sleep" and
// "release -> wake one" atomic with respect to each other (no lost wakeup).
//
// After a panic (docs/panic.md, E3, E4) the panic thread never asserts, sleeps
// or wakes anyone here: a busy mutex is passed through without being taken
// (counted, and the matching unlock is a no-op), a free one is taken and
// released for real. Its holder keeps it, so a holder that did not stop (a
// laggard) still releases it normally.

final class Mutex {
    let name: StaticString
    private let interlock = SpinLock("mutex interlock")
    private var owner: Thread? = nil
    private var waiters = 0
    /// Passes of the panic thread through this mutex while it was busy, not
    /// yet matched by its unlocks (only the panic thread changes it).
    private var panicPasses = 0
    /// Times lock() had to sleep.
    private(set) var contended = 0

    init(_ name: StaticString) { self.name = name }

    /// The holder and the number of sleeping waiters, for reports and suites
    /// (read without the interlock: a snapshot).
    var holder: Thread? { owner }
    var sleepers: Int { waiters }

    func lock() {
        let me = Thread.current
        interlock.lock()
        if owner != nil {
            // Busy. After a panic: through at once, before the recursion check
            // (the panic may have come while this thread held it) and without
            // sleeping (E3, E4). The holder keeps it.
            if Panic.schedulerStopped { panicPasses += 1; interlock.unlock(); return }
            if owner === me { let n = name; interlock.unlock(); panic("recursive mutex acquisition") { $0.write(n) } }
            while owner != nil {
                waiters += 1
                contended += 1
                _ = Sleep.sleep(on: Sleep.channel(self), releasing: interlock)
                waiters -= 1
            }
        }
        owner = me
        interlock.unlock()
    }

    func unlock() {
        interlock.lock()
        if panicPasses > 0 && Panic.schedulerStopped {
            // The panic thread's unlock of a pass: a no-op (E4), for that thread
            // only; anyone else's unlock below is real.
            panicPasses -= 1
            interlock.unlock()
            return
        }
        if owner !== Thread.current {
            if Panic.schedulerStopped { interlock.unlock(); return }    // E4: no assertion after a panic
            let n = name; interlock.unlock(); panic("mutex unlocked by a thread that does not own it") { $0.write(n) }
        }
        owner = nil
        // After a panic the panic thread wakes nobody: the sleepers' CPUs are
        // stopped, and it changes no scheduler state (E3).
        if waiters > 0 && !Panic.schedulerStopped { Sleep.wakeupOne(Sleep.channel(self)) }
        interlock.unlock()
    }

    func withLock<R>(_ body: () -> R) -> R {
        lock()
        let r = body()
        unlock()
        return r
    }
}
