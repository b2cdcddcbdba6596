// The debugger's list of threads (scripts/gdbinit: qthreads, qbt): a count and
// up to 1024 pointers to ThreadContext records in `quartet_debug_threads`, a
// plain symbol in Boot/bootdata.asm, so gdb needs no knowledge of Swift's
// layouts. Each record carries the saved rsp, id, CPU, state and name at
// fixed offsets (Kern/Sched/Thread.swift). Changed under the thread table's lock.

enum DebugThreads {
    static let capacity = 1024

    static func add(_ c: UnsafeMutablePointer<ThreadContext>) {
        ThreadTable.lock.lock()
        let t = LinkerSymbols.debugThreads
        let n = Int(t[0])
        if n < capacity {
            t[1 + n] = UInt64(UInt(bitPattern: c))
            t[0] = UInt64(n + 1)
        }
        ThreadTable.lock.unlock()
    }

    static func remove(_ c: UnsafeMutablePointer<ThreadContext>) {
        ThreadTable.lock.lock()
        let t = LinkerSymbols.debugThreads
        let n = Int(t[0]), p = UInt64(UInt(bitPattern: c))
        for i in 0..<n where t[1 + i] == p {
            t[1 + i] = t[n]                    // the last one fills the hole
            t[0] = UInt64(n - 1)
            break
        }
        ThreadTable.lock.unlock()
    }
}
