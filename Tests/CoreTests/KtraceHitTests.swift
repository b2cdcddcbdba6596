import XCTest
import KtraceKit

/// `ktrace --hit` (the seed-002 picture): the trace is cut around the last
/// critical_exit window that holds a rendezvous action of the same CPU, not
/// drawn from the ring's first window.
final class KtraceHitTests: XCTestCase {
    private func dump(_ lines: [String]) throws -> KtraceDump {
        let log = "ktrace: begin cpus=2 tsc_mhz=1000 events=\(lines.count) dropped=0\n" + lines.joined(separator: "\n") + "\nktrace: end\n"
        return try XCTUnwrap(KtraceParser.parse(log).dump)
    }

    func testTheCutHoldsAWindowWithAnActionInIt() throws {
        let d = try dump([
            "K 1 0000000000001000 crit.window 7 1000",      // first window: no action in it
            "K 1 0000000000003000 rdv.action 1 0",          // between windows
            "K 1 0000000000005000 crit.window 7 1000",      // the hit
            "K 1 0000000000005100 rdv.action 2 0",
            "K 0 0000000000005200 rdv.action 2 0",          // another CPU's part: not the hit's evidence
            "K 1 0000000000009000 crit.window 7 1000",      // later window, no action
        ])
        let cut = try XCTUnwrap(d.cutAtHit())
        XCTAssertEqual(cut.events.map(\.tsc), [0x5000, 0x5100, 0x5200], "one window length either side of the hit")
        XCTAssertTrue(cut.events.contains { $0.name == "crit.window" && $0.tsc == 0x5000 })
    }

    func testNoHitNoCut() throws {
        let d = try dump([
            "K 1 0000000000001000 crit.window 7 1000",
            "K 0 0000000000001100 rdv.action 1 0",          // inside in time, but on another CPU
            "K 1 0000000000003000 rdv.action 2 0",
        ])
        XCTAssertNil(d.cutAtHit())
    }
}
