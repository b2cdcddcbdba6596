// The table schedsim prints: one row per lwp (CPU use, final priority, queue,
// estcpu, batch) and a line of counters. Integers only: shares come from the
// simulator in thousandths and are printed with one decimal.

import QuartetCore

public enum Report {
    /// 1234 thousandths -> "123.4".
    static func tenths(_ permille: Int) -> String {
        "\(permille / 10).\(permille % 10)"
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    static func className(_ c: Bsd4Class) -> String {
        switch c {
        case .realtime: return "realtime"
        case .normal: return "normal"
        case .idle: return "idle"
        case .thread: return "thread"
        }
    }

    /// The whole report, ending with a newline.
    public static func table(_ w: SchedSimWorkload, _ r: Bsd4SimResult) -> String {
        let sim = w.sim
        let duration = sim.durationMs % 1000 == 0 ? "\(sim.durationMs / 1000) s" : "\(sim.durationMs) ms"
        var out = "schedsim: \(sim.cpus) CPU\(sim.cpus == 1 ? "" : "s"), \(duration) simulated, decay \(sim.decay), "
            + "\(sim.lwps.count) lwp\(sim.lwps.count == 1 ? "" : "s")\n"
        let nameWidth = max(4, w.names.map { $0.count }.max() ?? 0)
        let patternWidth = max(7, w.patterns.map { $0.count }.max() ?? 0)
        out += pad("lwp", nameWidth) + "  " + pad("class", 8) + "  " + pad("nice", 4, right: true) + "  "
            + pad("pattern", patternWidth) + "  " + pad("%CPU", 6, right: true) + "  " + pad("share", 6, right: true)
            + "  " + pad("priority", 8, right: true) + "  " + pad("queue", 5, right: true)
            + "  " + pad("estcpu", 6, right: true) + "  " + pad("batch", 5, right: true) + "\n"
        for i in 0..<sim.lwps.count {
            let spec = sim.lwps[i], l = r.lwps[i]
            let nice = spec.cls == .normal ? "\(spec.niceOrRtprio)" : "-"
            out += pad(w.names[i], nameWidth) + "  " + pad(className(spec.cls), 8) + "  " + pad(nice, 4, right: true)
                + "  " + pad(w.patterns[i], patternWidth)
                + "  " + pad(tenths(r.cpuPermille(i)), 6, right: true)
                + "  " + pad(tenths(r.machinePermille(i)) + "%", 6, right: true)
                + "  " + pad("\(l.priority)", 8, right: true) + "  " + pad("\(l.rqIndex)", 5, right: true)
                + "  " + pad("\(l.estcpu)", 6, right: true) + "  " + pad("\(l.batch)", 5, right: true) + "\n"
        }
        let c = r.counters
        out += "%CPU is of one CPU, share of all \(sim.cpus); priority: lower is better (normal class 128..255)\n"
        out += "counters: \(c.installs) installs, \(c.steals) steals, \(c.roundRobin) round-robin, "
            + "pokes \(c.pokesLocal) local / \(c.pokesRemote) remote, setrunqueue IPIs \(c.remoteResched), "
            + "helper wake-ups \(c.remoteWakeHelper), helper passes \(c.helperPasses), chains \(c.chains), "
            + "spurious IPIs \(c.spuriousIPIs), slept-long wake-ups \(c.sleptLong)\n"
        if let v = r.violation { out += "INVARIANT VIOLATED: \(v)\n" }
        return out
    }
}
