import Synchronization

// Sleep and wake-up on a channel (tsleep/wakeup), with timeouts from the tick.
//
// Sleeping threads hang on one of 64 hashed sleep queues, each with a spinlock.
// The lost-wakeup rule: a thread that checked its condition under a lock L must
// be ON the sleep queue before L is released, and a waker changes the condition
// and calls wakeup under L. `sleep(on:releasing:)` enqueues under the bucket lock
// while L is still held, then releases L (msleep). The negative control
// `bug.sleep_nointerlock=1` makes the `sleep` suite's sleeper threads release L
// first and wait a moment: a wakeup in that window finds nobody and is lost (the
// suite counts those). It is per thread so that join() and the mutex of the rest
// of the kernel keep working while the control runs.

enum Sleep {
    static let bucketCount = 64
    struct Bucket: ~Copyable {
        let lock = SpinLock("sleepq")
        var head: Thread? = nil
    }
    nonisolated(unsafe) static var buckets: UnsafeMutablePointer<Bucket>? = nil

    enum Result { case woken, timedOut }

    static func initialize() {
        let b = UnsafeMutablePointer<Bucket>.allocate(capacity: bucketCount)
        for i in 0..<bucketCount { (b + i).initialize(to: Bucket()) }
        buckets = b
    }

    /// A channel is any address; objects use their own.
    static func channel(_ object: AnyObject) -> UInt { UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque()) }

    private static func bucket(_ chan: UInt) -> UnsafeMutablePointer<Bucket> {
        buckets! + Int((chan >> 4 ^ chan >> 12) % UInt(bucketCount))
    }

    /// Sleeps on `chan` until woken or `timeoutTicks` ticks pass (0 = no timeout).
    /// `interlock` is held on entry, released once the thread is on the sleep
    /// queue, and held again on return.
    static func sleep(on chan: UInt, releasing interlock: borrowing SpinLock, timeoutTicks: UInt64 = 0) -> Result {
        if Panic.schedulerStopped { return .woken }   // E3: the panic thread never sleeps
        SpinlockSection.enter()                  // interrupts stay off into the switch
        let td = Thread.current
        let bug = td.dropsSleepInterlock
        if bug {
            // BUG (negative control): the condition may change from here on and
            // its wakeup finds an empty queue.
            interlock.unlock()
            TSC.delay(microseconds: 200)
        }
        enqueue(td, chan, timeoutTicks)
        if !bug { interlock.unlock() }
        Scheduler.switchAway()                   // returns once woken (or timed out)
        SpinlockSection.exit()
        interlock.lock()
        return td.sleepTimedOut ? .timedOut : .woken
    }

    /// Sleeps without an interlock (the caller's condition needs none).
    static func sleep(on chan: UInt, timeoutTicks: UInt64 = 0) -> Result {
        if Panic.schedulerStopped { return .woken }   // E3
        SpinlockSection.enter()
        let td = Thread.current
        enqueue(td, chan, timeoutTicks)
        // Test hook (wake-migrate): hold open the window in which a waker
        // makes this thread runnable before its own switch has run.
        if td.sleepSwitchDelayCycles != 0 { TSC.spin(cycles: td.sleepSwitchDelayCycles) }
        Scheduler.switchAway()
        SpinlockSection.exit()
        return td.sleepTimedOut ? .timedOut : .woken
    }

    private static func enqueue(_ td: Thread, _ chan: UInt, _ timeoutTicks: UInt64) {
        let b = bucket(chan)
        b.pointee.lock.lock()
        td.wchan = chan
        td.sleepTimedOut = false
        td.sleepPrev = nil
        td.sleepNext = b.pointee.head
        b.pointee.head?.sleepPrev = td
        b.pointee.head = td
        td.state = .sleeping
        b.pointee.lock.unlock()
        td.sleeps.wrappingAdd(1, ordering: .relaxed)      // the balancer's "never slept"
        if timeoutTicks > 0 {
            // Only this CPU's tick scans its timed sleepers; we are on it with
            // interrupts off.
            let s = Scheduler.mine
            td.sleepDeadline = PerCPU.current.ticks.load(ordering: .relaxed) &+ timeoutTicks
            if !td.onTimeoutList {        // an entry left from an earlier sleep is reused
                td.onTimeoutList = true
                td.timeoutNext = s.timedSleepers
                s.timedSleepers = td
            }
        } else {
            td.sleepDeadline = 0
        }
    }

    /// Removes `td` from its bucket; caller holds the bucket lock.
    private static func unlink(_ td: Thread, _ b: UnsafeMutablePointer<Bucket>) {
        if let p = td.sleepPrev { p.sleepNext = td.sleepNext } else { b.pointee.head = td.sleepNext }
        td.sleepNext?.sleepPrev = td.sleepPrev
        td.sleepNext = nil
        td.sleepPrev = nil
        td.wchan = 0
    }

    /// Wakes every thread sleeping on `chan`; returns how many.
    @discardableResult
    static func wakeup(_ chan: UInt) -> Int { wake(chan, all: true) }

    /// Wakes one thread sleeping on `chan`; returns whether there was one.
    @discardableResult
    static func wakeupOne(_ chan: UInt) -> Bool { wake(chan, all: false) > 0 }

    private static func wake(_ chan: UInt, all: Bool) -> Int {
        let b = bucket(chan)
        var woken: Thread? = nil
        var n = 0
        b.pointee.lock.lock()
        var td = b.pointee.head
        while let t = td {
            td = t.sleepNext
            guard t.wchan == chan, t.state == .sleeping else { continue }
            unlink(t, b)
            t.state = .runnable
            t.wakeNext = woken      // a private list until the bucket lock is dropped
            woken = t
            n += 1
            if !all { break }
        }
        b.pointee.lock.unlock()
        while let t = woken {
            woken = t.wakeNext
            t.wakeNext = nil
            Scheduler.makeRunnableAfterWakeup(t)
        }
        return n
    }

    /// Removes the running thread from this CPU's timed list before it moves to
    /// another CPU (owner CPU, interrupts off).
    static func forgetTimeout(_ td: Thread, _ s: CPUScheduler) {
        guard td.onTimeoutList else { return }
        var prev: Thread? = nil
        var n = s.timedSleepers
        while let t = n {
            if t === td {
                if let p = prev { p.timeoutNext = t.timeoutNext } else { s.timedSleepers = t.timeoutNext }
                break
            }
            prev = t
            n = t.timeoutNext
        }
        td.timeoutNext = nil
        td.onTimeoutList = false
        td.sleepDeadline = 0
    }

    /// The tick (interrupt context, owner CPU): times out expired timed sleeps and
    /// forgets entries of threads no longer asleep.
    static func expireTimeouts(_ s: CPUScheduler) {
        let now = PerCPU.current.ticks.load(ordering: .relaxed)
        var prev: Thread? = nil
        var td = s.timedSleepers
        while let t = td {
            td = t.timeoutNext
            var drop = t.state != .sleeping || t.sleepDeadline == 0
            if !drop && now >= t.sleepDeadline {
                let b = bucket(t.wchan)
                b.pointee.lock.lock()
                if t.state == .sleeping && t.wchan != 0 {
                    unlink(t, b)
                    t.sleepTimedOut = true
                    t.state = .runnable
                }
                b.pointee.lock.unlock()
                if t.state == .runnable { Scheduler.enqueueLocal(t) }
                drop = true
            }
            if drop {
                if let p = prev { p.timeoutNext = td } else { s.timedSleepers = td }
                t.timeoutNext = nil
                t.sleepDeadline = 0
                t.onTimeoutList = false
            } else {
                prev = t
            }
        }
    }
}
