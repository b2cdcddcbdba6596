import XCTest

/// `make races` (scripts/races.sh): every seed race's torture suite with the fix
/// and with its negative control, in one table. The script writes its logs into a
/// temporary directory and is not given --update-readme: a test writes nothing
/// into the tree (only `make races` rewrites the README's gallery).
final class RacesTests: XCTestCase {
    func testTheGalleryTableHasEverySeedWithHitsSuccessAndFailure() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("quartet-races-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        // Standard error too (its progress and any complaint), printed with the table.
        let (status, text) = try QEMU.runScript(["scripts/races.sh", "--kernel", QEMU.kernelPath, "--out", out.path, "--no-trace"])
        print("[races]\n" + text)
        XCTAssertEqual(status, 0, "races.sh exits 0 only when every row is right")
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| 00") }.map(String.init)
        XCTAssertEqual(rows.map { String($0.dropFirst(2).prefix(3)) }, ["000", "001", "002", "003", "004"], "one row per seed")
        for row in rows {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            // Seed 000's cell is "N natural + M held": the hits are the sum.
            let hits = cells[4].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +)
            XCTAssertGreaterThan(hits, 0, "race-window hits: \(row)")
            XCTAssertTrue(cells[5].hasPrefix("SUCCESS"), "with the fix: \(row)")
            XCTAssertTrue(cells[6].contains(": FAILURE: "), "with the control: \(row)")
        }
    }
}
