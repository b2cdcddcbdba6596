// How a CPU comes to designate an lwp, and what that does to its own fields
// (docs/bsd4-scheduler.md, "Entry points"; A6). The kernel glue
// (Bsd4Scheduler.designateLocked) and the host simulator both take the new
// rrcount from here.

enum Bsd4Designation: Equatable {
    /// acquire_curproc found no uschedcp and took the CPU.
    case take
    /// acquire_curproc displaced a uschedcp with a worse upri.
    case steal
    /// chooseproc's pick made uschedcp: select_curproc (at a release) or the
    /// helper (fill or challenge).
    case install

    /// The CPU's rrcount after the designation. A6: an install starts a fresh
    /// round-robin interval (DragonFly sets rrcount to 0 in select_curproc and
    /// in both helper installs), or a carried-over count would cut the new
    /// lwp's first slice short; take and steal carry it on (DragonFly's
    /// acquire does not touch it).
    func rrcount(carried: Int) -> Int {
        self == .install ? 0 : carried
    }

    /// The CPU's fields after designating lwp `id` of priority `priority`:
    /// uschedcp, upri (the lwp's priority) and rrcount.
    func apply(to s: Bsd4PerCPU, lwp id: Int, priority: Int) -> Bsd4PerCPU {
        Bsd4PerCPU(uschedcp: id, upri: priority, rrcount: rrcount(carried: s.rrcount))
    }
}

extension Bsd4PerCPU {
    /// release_curproc's undesignation: no uschedcp, upri PRIBASE_NULL; the
    /// round-robin count is left to whoever designates next.
    func released() -> Bsd4PerCPU {
        Bsd4PerCPU(uschedcp: nil, upri: Bsd4.priBaseNull, rrcount: rrcount)
    }
}
