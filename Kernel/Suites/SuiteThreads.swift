// Running suite code on every CPU: one kernel thread pinned to each online CPU.

enum SuiteThreads {
    /// Runs `body` once on every online CPU, each in a thread of its own pinned
    /// there, and returns how many ran once all have finished. All threads are
    /// created before any is started, ours last: a started thread of higher
    /// priority on this CPU would otherwise delay the creation of the others.
    @discardableResult
    static func runOnEveryCPU(_ name: StaticString, priority: Int = Thread.normalPriority,
                              _ body: @escaping () -> Void) -> Int {
        var threads: [Thread] = []
        SMP.online.forEach { cpu in
            if let td = Thread.create(name, priority: priority, cpu: cpu, body) { threads.append(td) }
        }
        let me = PerCPU.currentNumber
        for td in threads where td.cpu != me { Scheduler.schedule(td) }
        for td in threads where td.cpu == me { Scheduler.schedule(td) }
        for td in threads { td.join() }
        return threads.count
    }
}
