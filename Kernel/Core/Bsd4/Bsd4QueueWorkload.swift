// The bsd4 run queues driven the way Suites/Bsd4Bench drives them, for the host
// microbenchmark (`swift run -c release corebench`): `count` lwps with random
// nice and estcpu on a private set of queues; one step is select (chooseproc:
// search and dequeue, as CPU 0) then setrunqueue of the same lwp at a new
// priority, so the queue keeps `count` lwps. Public for that tool only; the
// kernel never calls it.

public final class Bsd4QueueWorkload {
    final class Node: Bsd4Node {
        var rqNext: Node? = nil
        var rqPrev: Node? = nil
        var rqLevel = -1
        var onRunQ = false
        var rqType = Bsd4Class.normal
        var rqIndex = 0
        var priority = 0
        let nice: Int
        let cpuMask = CPUMask(bits: 0xF)
        let lastCPU: Int
        init(nice: Int, lastCPU: Int) { self.nice = nice; self.lastCPU = lastCPU }
    }

    var queues = Bsd4RunQueues<Node>()
    var nodes: [Node] = []
    var state: UInt64
    var taken: Node? = nil

    /// A value from the workload's own generator (xorshift64), 0..<n.
    public func random(below n: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(n))
    }

    public init(count: Int, seed: UInt64) {
        state = seed | 1
        for _ in 0..<count {
            let node = Node(nice: random(below: 41) - 20, lastCPU: random(below: 4))
            let p = Bsd4Priority.compute(.normal, niceOrRtprio: node.nice, estcpu: random(below: Bsd4.estcpuMax + 1), batch: 0)
            node.priority = p.priority; node.rqIndex = p.rqIndex; node.rqType = p.rqType
            nodes.append(node)
            queues.insert(node)
        }
    }

    /// chooseproc on CPU 0: the chosen lwp's priority (-1 if none).
    public func select() -> Int {
        taken = queues.chooseproc(cpu: 0, current: nil).lwp
        return taken?.priority ?? -1
    }

    /// setrunqueue of the lwp `select` took, at the priority of `estcpu`.
    public func reinsert(estcpu: Int) {
        guard let lp = taken else { return }
        _ = queues.reposition(lp, to: Bsd4Priority.compute(.normal, niceOrRtprio: lp.nice, estcpu: estcpu, batch: 0))
        queues.insert(lp)
        taken = nil
    }

    public static var estcpuMax: Int { Bsd4.estcpuMax }
}
