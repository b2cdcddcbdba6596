// A sleeping mutex built on sleep/wakeup: contenders sleep instead of spinning,
// so it may be held across long operations (never from interrupt context). The
// state lives under a spinlock interlock, which makes "owner busy -> sleep" and
// "release -> wake one" atomic with respect to each other (no lost wakeup).

final class Mutex {
    let name: StaticString
    private let interlock = SpinLock("mutex interlock")
    private var owner: Thread? = nil
    private var waiters = 0
    /// Times lock() had to sleep.
    private(set) var contended = 0

    init(_ name: StaticString) { self.name = name }

    func lock() {
        let me = Thread.current
        interlock.lock()
        if owner === me { let n = name; interlock.unlock(); panic("recursive mutex acquisition") { $0.write(n) } }
        while owner != nil {
            if Panic.schedulerStopped { break }   // E4: the owner was stopped; take it over
            waiters += 1
            contended += 1
            _ = Sleep.sleep(on: Sleep.channel(self), releasing: interlock)
            waiters -= 1
        }
        owner = me
        interlock.unlock()
    }

    func unlock() {
        interlock.lock()
        if owner !== Thread.current {
            if Panic.schedulerStopped { interlock.unlock(); return }    // taken over after a panic: no-op
            let n = name; interlock.unlock(); panic("mutex unlocked by a thread that does not own it") { $0.write(n) }
        }
        owner = nil
        if waiters > 0 { Sleep.wakeupOne(Sleep.channel(self)) }
        interlock.unlock()
    }

    func withLock<R>(_ body: () -> R) -> R {
        lock()
        let r = body()
        unlock()
        return r
    }
}
