// The one call the kernel makes at boot: find the RSDP, pick the root table, find
// and parse the MADT, and say what went wrong along the way.

struct ACPIDiscovery {
    var rsdp: ACPIRSDP?
    var root: ACPIRootTable?
    var madtAddress: UInt64?
    var madt: MADTInfo?
    /// The problem that stopped discovery; nil when the MADT was parsed.
    var failure: ACPIProblem?
    /// Every problem met, the stopping one included, in order.
    var problems = ACPIProblemList()

    var rsdpAddress: UInt64? { rsdp?.address }
    var rsdpRevision: UInt8? { rsdp?.revision }
    var oemID: ACPIOEMID? { rsdp?.oemID }
    var rootKind: ACPIRootKind? { root?.kind }

    fileprivate mutating func fail(_ problem: ACPIProblem) -> ACPIDiscovery {
        failure = problem
        problems.record(problem)
        return self
    }
}

extension ACPI {
    /// Never traps on bad firmware data: each defect lands in `problems`, and the
    /// result holds as much as could be trusted. Uses no heap, so it can run before
    /// the kernel's allocator exists.
    static func discover<R: PhysicalMemoryReader>(_ reader: R) -> ACPIDiscovery {
        var result = ACPIDiscovery()
        guard let rsdp = findRSDP(reader, problems: &result.problems) else {
            return result.fail(ACPIProblem(.rsdpNotFound))
        }
        result.rsdp = rsdp

        let root: ACPIRootTable
        do throws(ACPIProblem) {
            root = try rootTable(for: rsdp, reader: reader, problems: &result.problems)
        } catch {
            return result.fail(error)
        }
        result.root = root

        guard let madtTable = findTable(.madt, in: root, reader: reader, problems: &result.problems) else {
            return result.fail(ACPIProblem(.madtNotFound, at: root.address))
        }
        result.madtAddress = madtTable.address

        guard let madt = MADTInfo.parse(madtTable.bytes, address: madtTable.address,
                                        problems: &result.problems) else {
            // parse already recorded why; surface that as the failure.
            result.failure = ACPIProblem(.madtTooShort, at: madtTable.address, value: UInt64(madtTable.length))
            return result
        }
        result.madt = madt
        return result
    }
}
