// The kernel's own symbol table (Core/SymbolTable.swift), so that fault and panic
// backtraces name their frames on the serial console without host tools.
//
// The table is checked once, on the boot CPU, before anything else can fault or
// any AP runs; afterwards `table` is read-only, so a report on any CPU reads it
// without a lock or an allocation. A missing or malformed table only costs the
// names: the reports print bare addresses and the boot goes on.

enum KernelSymbols {
    nonisolated(unsafe) private static var table: SymbolTable? = nil
    /// Why there is no table (when `table` is nil).
    nonisolated(unsafe) private static var problem: StaticString = "not loaded"

    /// Boot CPU, early in kmain: validates the .ksymtab section.
    static func load() {
        let bytes = LinkerSymbols.symbolTable
        table = SymbolTable(bytes: bytes)
        if table == nil, case .invalid(let why) = SymbolTable.check(bytes) { problem = why }
    }

    /// The boot line: "symbols: N functions (K KiB table)", or why there are none.
    static func report() {
        Console.line { l in
            if let t = table {
                l.write("symbols: "); l.dec(t.count); l.write(" functions (")
                l.bytes(UInt64(t.usedBytes)); l.write(" table)")
            } else {
                l.write("symbols: no table ("); l.write(problem); l.write(")")
            }
        }
    }

    /// Appends "  NAME + 0xOFFSET" for `address`, or nothing when no symbol
    /// covers it. A return address points after its call, possibly past the
    /// end of a function that ends in a call that does not return: it is
    /// looked up one byte earlier, and the printed offset is still its own.
    static func write(_ address: UInt64, into line: inout FixedLineBuffer, returnAddress: Bool = false) {
        if PanicTestHooks.symbolizerFault && Panic.inProgress { _ = CPU.touch(8) }   // test hook
        guard let t = table else { return }
        let key = returnAddress && address > 0 ? address - 1 : address
        guard let hit = t.lookup(key) else { return }
        line.writeSymbol(name: hit.name, offset: hit.offset + (address - key))
    }
}
