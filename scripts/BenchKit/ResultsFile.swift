// bench/results.md: every `make bench` / `make bench-compare` appends its tables;
// the file starts with a heading that says what it is, written once.

public enum BenchResultsFile {
    public static let heading = """
    # Benchmark results

    Appended by `make bench` and `make bench-compare` (docs/benchmarks.md). Cycles
    are TSC cycles; under TCG they are emulation artefacts and under a nested KVM
    every guest instruction is emulated, so read the ratios (to the floor measured
    in the same boot, and to Linux on the same QEMU), not the absolute figures.

    """

    public static func appending(_ text: String, to existing: String?) -> String {
        var out = existing ?? ""
        if out.isEmpty { out = heading }
        if !out.hasSuffix("\n") { out += "\n" }
        return out + "\n" + text + (text.hasSuffix("\n") ? "" : "\n")
    }
}
