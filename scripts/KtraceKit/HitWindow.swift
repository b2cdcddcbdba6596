// The seed-002 picture: the trace cut around one critical_exit window in which
// a rendezvous action ran on the same CPU (a hit), not the whole ring, whose
// first windows usually have no action in them. `ktrace --hit`.

extension KtraceDump {
    /// The last crit.window (start tsc, length b cycles) on a CPU that holds an
    /// rdv.action of that CPU, with the events of one window length either
    /// side; nil when no window holds an action.
    public func cutAtHit() -> KtraceDump? {
        let actions = events.filter { $0.name == "rdv.action" }
        let windows = events.filter { $0.name == "crit.window" }
        let hit = windows.filter { w in
            actions.contains { $0.cpu == w.cpu && $0.tsc >= w.tsc && $0.tsc <= w.tsc &+ w.b }
        }.max { $0.tsc < $1.tsc }
        guard let w = hit else { return nil }
        let from = w.tsc &- min(w.tsc, w.b), to = w.tsc &+ w.b &* 2
        var cut = self
        cut.events = events.filter { $0.tsc >= from && $0.tsc <= to }
        return cut
    }
}
