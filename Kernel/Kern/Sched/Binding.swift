import Synchronization

// Binding the current thread to its CPU (NetBSD curlwp_bind/curlwp_bindx;
// docs/binding-and-psref.md).
//
// Who writes what:
//   the thread itself   its BOUND flag (bind, unbind)
//   any CPU             reads BOUND as a hint (the statistics pass)
//   the thread's CPU    trusts BOUND only in the thread's own switch (B2)
//
// A bound thread may still be preempted, yield or sleep; it only never changes
// CPU (B1). Its CPU number, read after bind(), stays true until unbind().

enum Binding {
    /// Sets BOUND on the current thread and returns its previous value (B4).
    static func bind() -> Bool {
        let td = Thread.current
        let previous = td.boundWord.load(ordering: .relaxed)
        td.boundWord.store(true, ordering: .relaxed)
        // NetBSD's __insn_barrier: what follows (reading the CPU number, a
        // passive reference) is not moved above the store. The switch that
        // reads the flag runs on this CPU, so program order is all it needs.
        CPU.compilerBarrier()
        return previous
    }

    /// Restores the value bind() returned (B4): an inner pair leaves an outer
    /// bind in force.
    static func unbind(_ previous: Bool) {
        let td = Thread.current
        CPU.compilerBarrier()
        guard td.boundWord.load(ordering: .relaxed) else { panic("B4: unbind of a thread that is not bound") }
        td.boundWord.store(previous, ordering: .relaxed)
    }

    /// Runs `body` bound; returns its result.
    static func bound<R>(_ body: () -> R) -> R {
        let previous = bind()
        let r = body()
        unbind(previous)
        return r
    }
}
