// Every thread of the kernel, for the monitor (`ps`, `cpus`, `trace`, `kill`).
// A thread enters at creation and leaves when its body returns; the table's
// strong references keep each Thread object alive while a reader looks at it
// under the lock. Fields of threads running elsewhere are read as hints.

enum ThreadTable {
    static let lock = SpinLock("thread table")
    nonisolated(unsafe) private static var threads: [Thread] = []

    static func add(_ td: Thread) {
        lock.lock()
        threads.append(td)
        lock.unlock()
    }

    static func remove(_ td: Thread) {
        var removed: Thread? = nil
        lock.lock()
        if let i = threads.firstIndex(where: { $0 === td }) { removed = threads.remove(at: i) }
        lock.unlock()
        // Released here, after the unlock: were it the last reference, the
        // Thread's deinit (DebugThreads.remove) takes this lock.
        withExtendedLifetime(removed) {}
    }

    /// A copy of the table, in creation order (the copy holds references:
    /// threads that exit meanwhile stay readable).
    static func snapshot() -> [Thread] {
        lock.lock()
        let copy = threads
        lock.unlock()
        return copy
    }

    /// After a panic only (the other CPUs are stopped): no lock, no copy.
    static func forEachStopped(_ body: (Thread) -> Void) {
        for td in threads { body(td) }
    }

    static func find(id: Int) -> Thread? {
        lock.lock()
        let td = threads.first { $0.id == id }
        lock.unlock()
        return td
    }
}
