// Kernel threads. (Issue "kernel threads" grows this into the full LWKT thread:
// stacks, context, run queues. For now: the per-thread critical-section state.)

final class Thread {
    /// Critical-section nesting depth. Written only by the thread itself.
    var critnest = 0
    /// A preemption was requested while critnest > 0; the outermost exit takes it.
    var owepreempt = false

    /// The thread running on this CPU (gs:16), or nil before threads exist here.
    static var currentIfAny: Thread? {
        let raw = GSBase.read(PerCPUHeader.currentThread)
        guard raw != 0 else { return nil }
        return Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(raw))!).takeUnretainedValue()
    }
}

enum Scheduler {
    /// Takes a deferred preemption (called by critical_exit with critnest == 1).
    static func preemptOwed(_ td: Thread) {
        td.owepreempt = false
        td.critnest = 0
    }
}
