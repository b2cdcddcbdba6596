// bench/results.md: every `make bench` / `make bench-compare` appends its
// sections (`benchreport ... --append FILE`); a file that does not exist yet, or
// is empty, starts with a heading that says what it is, written once.

import Foundation

public enum BenchResultsFile {
    public static let heading = """
    # Benchmark results

    Appended by `make bench` and `make bench-compare` (docs/benchmarks.md). Cycles
    are TSC cycles; under TCG they are emulation artefacts and under a nested KVM
    every guest instruction is emulated, so read the ratios (to the floor measured
    in the same boot, and to Linux on the same QEMU), not the absolute figures.

    """

    /// The file's new text: `existing` (nil: no file), or the heading when there
    /// is nothing yet, then a blank line and `section`, newline-terminated.
    public static func appending(_ section: String, to existing: String?) -> String {
        var out = existing ?? ""
        if out.allSatisfy(\.isWhitespace) { out = heading }
        if !out.hasSuffix("\n") { out += "\n" }
        return out + "\n" + section + (section.hasSuffix("\n") ? "" : "\n")
    }

    /// Appends `section` to the file at `path`, creating it with the heading.
    public static func append(_ section: String, toFile path: String) throws {
        let url = URL(fileURLWithPath: path)
        let existing: String?
        if FileManager.default.fileExists(atPath: path) {
            existing = try String(contentsOf: url, encoding: .utf8)
        } else {
            existing = nil
        }
        try appending(section, to: existing).write(to: url, atomically: true, encoding: .utf8)
    }
}
