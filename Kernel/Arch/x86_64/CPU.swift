import Synchronization

// Typed wrappers over Boot/cpu.asm. Every NASM helper the kernel calls is declared
// here, once (docs/architecture.md, "Source layout"). The rest of the kernel uses the wrappers.
//
// A call into assembly is opaque to the Swift optimizer, so each of these is also a
// compiler barrier: no memory access is moved across it.

@_silgen_name("cpu_outb") private func _outb(_ port: UInt16, _ value: UInt8)
@_silgen_name("cpu_inb") private func _inb(_ port: UInt16) -> UInt8
@_silgen_name("cpu_outw") private func _outw(_ port: UInt16, _ value: UInt16)
@_silgen_name("cpu_inw") private func _inw(_ port: UInt16) -> UInt16
@_silgen_name("cpu_outl") private func _outl(_ port: UInt16, _ value: UInt32)
@_silgen_name("cpu_inl") private func _inl(_ port: UInt16) -> UInt32
@_silgen_name("cpu_rdmsr") private func _rdmsr(_ msr: UInt32) -> UInt64
@_silgen_name("cpu_wrmsr") private func _wrmsr(_ msr: UInt32, _ value: UInt64)
@_silgen_name("cpu_read_cr0") private func _readCR0() -> UInt64
@_silgen_name("cpu_write_cr0") private func _writeCR0(_ v: UInt64)
@_silgen_name("cpu_read_cr2") private func _readCR2() -> UInt64
@_silgen_name("cpu_read_cr3") private func _readCR3() -> UInt64
@_silgen_name("cpu_write_cr3") private func _writeCR3(_ v: UInt64)
@_silgen_name("cpu_read_cr4") private func _readCR4() -> UInt64
@_silgen_name("cpu_write_cr4") private func _writeCR4(_ v: UInt64)
@_silgen_name("cpu_invlpg") private func _invlpg(_ address: UInt64)
@_silgen_name("cpu_mfence") private func _mfence()
@_silgen_name("cpu_lfence") private func _lfence()
@_silgen_name("cpu_sfence") private func _sfence()
@_silgen_name("cpu_pause") private func _pause()
@_silgen_name("cpu_hlt") private func _hlt()
@_silgen_name("cpu_cli") private func _cli()
@_silgen_name("cpu_sti") private func _sti()
@_silgen_name("cpu_sti_hlt") private func _stiHlt()
@_silgen_name("cpu_read_flags") private func _readFlags() -> UInt64
@_silgen_name("cpu_write_flags") private func _writeFlags(_ v: UInt64)
@_silgen_name("cpu_save_flags_cli") private func _saveFlagsCli() -> UInt64
@_silgen_name("cpu_rdtsc") private func _rdtsc() -> UInt64
@_silgen_name("cpu_cpuid") private func _cpuid(_ leaf: UInt32, _ subleaf: UInt32,
                                               _ out: UnsafeMutablePointer<UInt32>)
@_silgen_name("cpu_lgdt") private func _lgdt(_ descriptor: UnsafeRawPointer)
@_silgen_name("cpu_lidt") private func _lidt(_ descriptor: UnsafeRawPointer)
@_silgen_name("cpu_ltr") private func _ltr(_ selector: UInt16)
@_silgen_name("cpu_reload_segments") private func _reloadSegments(_ code: UInt64, _ data: UInt64)
@_silgen_name("cpu_read_rbp") private func _readRBP() -> UInt64
@_silgen_name("cpu_read_rsp") private func _readRSP() -> UInt64
@_silgen_name("cpu_halt_forever") private func _haltForever() -> Never
@_silgen_name("cpu_call_on_stack") private func _callOnStack(
    _ fn: @convention(c) (UInt64) -> Void, _ arg: UInt64, _ stackTop: UInt64)
@_silgen_name("cpu_divide_by_zero") private func _divideByZero(_ dividend: UInt64) -> UInt64
@_silgen_name("cpu_touch") private func _touch(_ address: UInt64) -> UInt64
@_silgen_name("cpu_probe_read") private func _probeRead(_ address: UInt64, _ value: UnsafeMutablePointer<UInt64>) -> UInt64
@_silgen_name("addr_probe_read_insn") private func _addrProbeReadInsn() -> UInt64
@_silgen_name("addr_probe_read_resume") private func _addrProbeReadResume() -> UInt64
@_silgen_name("cpu_flush_tlb") private func _flushTLB()
@_silgen_name("cpu_capture") private func _capture(_ frame: UnsafeMutablePointer<TrapFrame>)
@_silgen_name("cpu_reset") private func _reset() -> Never
@_silgen_name("copy_from_physical_zero") private func _copyFromPhysicalZero(_ dst: UnsafeMutableRawPointer, _ count: Int)
@_silgen_name("mmio_read32") private func _mmioRead32(_ address: UInt64) -> UInt32
@_silgen_name("mmio_write32") private func _mmioWrite32(_ address: UInt64, _ value: UInt32)
@_silgen_name("gs_read64") private func _gsRead64(_ offset: Int) -> UInt64
@_silgen_name("gs_write64") private func _gsWrite64(_ offset: Int, _ value: UInt64)
@_silgen_name("addr_trampoline_start") private func _addrTrampolineStart() -> UnsafeRawPointer
@_silgen_name("addr_trampoline_data") private func _addrTrampolineData() -> UnsafeRawPointer
@_silgen_name("addr_trampoline_end") private func _addrTrampolineEnd() -> UnsafeRawPointer
@_silgen_name("addr_thread_bootstrap") private func _addrThreadBootstrap() -> UInt64
@_silgen_name("cpu_switch") private func _cpuSwitch(_ saveRSP: UnsafeMutablePointer<UInt64>, _ newRSP: UInt64,
                                                   _ oldRunning: UnsafeMutablePointer<UInt32>)
@_silgen_name("cpu_switch_early_clear") private func _cpuSwitchEarlyClear(_ saveRSP: UnsafeMutablePointer<UInt64>, _ newRSP: UInt64,
                                                   _ oldRunning: UnsafeMutablePointer<UInt32>)
@_silgen_name("addr_bsp_arch_area") private func _addrBSPArchArea() -> UnsafeMutableRawPointer
@_silgen_name("addr_isr_stub_table") private func _addrISRStubTable() -> UnsafeRawPointer
@_silgen_name("addr_page_zero_copy") private func _addrPageZeroCopy() -> UnsafeMutableRawPointer
@_silgen_name("addr_kernel_start") private func _addrKernelStart() -> UInt64
@_silgen_name("addr_debug_threads") private func _addrDebugThreads() -> UnsafeMutablePointer<UInt64>
@_silgen_name("addr_kernel_end") private func _addrKernelEnd() -> UInt64
@_silgen_name("addr_ksymtab_start") private func _addrKsymtabStart() -> UnsafeRawPointer
@_silgen_name("addr_ksymtab_end") private func _addrKsymtabEnd() -> UnsafeRawPointer

/// Addresses of symbols defined by the assembly and the linker script.
enum LinkerSymbols {
    static var bspArchArea: UnsafeMutableRawPointer { _addrBSPArchArea() }
    static var isrStubTable: UnsafeRawPointer { _addrISRStubTable() }
    static var pageZeroCopy: UnsafeMutableRawPointer { _addrPageZeroCopy() }
    static var trampolineStart: UnsafeRawPointer { _addrTrampolineStart() }
    static var trampolineData: UnsafeRawPointer { _addrTrampolineData() }
    static var trampolineEnd: UnsafeRawPointer { _addrTrampolineEnd() }
    static var kernelStart: UInt64 { _addrKernelStart() }
    /// quartet_debug_threads (Boot/bootdata.asm): the debugger's thread list.
    static var debugThreads: UnsafeMutablePointer<UInt64> { _addrDebugThreads() }
    static var threadBootstrap: UInt64 { _addrThreadBootstrap() }
    static var kernelEnd: UInt64 { _addrKernelEnd() }
    /// The .ksymtab section: the symbol table scripts/symbols.sh wrote, or zeros.
    static var symbolTable: UnsafeRawBufferPointer {
        let start = _addrKsymtabStart()
        return UnsafeRawBufferPointer(start: start, count: _addrKsymtabEnd() - start)
    }
}

/// An x86 I/O port.
struct IOPort {
    let number: UInt16
    init(_ number: UInt16) { self.number = number }
    func write8(_ v: UInt8) { _outb(number, v) }
    func read8() -> UInt8 { _inb(number) }
    func write16(_ v: UInt16) { _outw(number, v) }
    func read16() -> UInt16 { _inw(number) }
    func write32(_ v: UInt32) { _outl(number, v) }
    func read32() -> UInt32 { _inl(number) }
    func offset(_ by: UInt16) -> IOPort { IOPort(number &+ by) }
}

/// A 32-bit memory-mapped register (uncached mapping required).
struct MMIORegister32 {
    let address: UInt64
    func read() -> UInt32 { _mmioRead32(address) }
    func write(_ v: UInt32) { _mmioWrite32(address, v) }
}

/// Quadwords at fixed offsets from the GS base: the per-CPU header.
enum GSBase {
    static func read(_ offset: Int) -> UInt64 { _gsRead64(offset) }
    static func write(_ offset: Int, _ value: UInt64) { _gsWrite64(offset, value) }
    static func set(_ base: UInt64) { MSR.gsBase.write(base) }
}

/// Model-specific registers by name.
enum MSR: UInt32 {
    case apicBase = 0x1B
    case efer = 0xC000_0080
    case star = 0xC000_0081
    case lstar = 0xC000_0082
    case fmask = 0xC000_0084
    case fsBase = 0xC000_0100
    case gsBase = 0xC000_0101
    case kernelGSBase = 0xC000_0102
    case tscDeadline = 0x6E0

    func read() -> UInt64 { _rdmsr(rawValue) }
    func write(_ v: UInt64) { _wrmsr(rawValue, v) }
}

enum MSRAccess {
    static func read(_ n: UInt32) -> UInt64 { _rdmsr(n) }
    static func write(_ n: UInt32, _ v: UInt64) { _wrmsr(n, v) }
}

struct CPUIDResult { var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32 }

/// Plain CPU instructions and registers.
enum CPU {
    static var cr0: UInt64 { get { _readCR0() } set { _writeCR0(newValue) } }
    static var cr2: UInt64 { _readCR2() }
    static var cr3: UInt64 { get { _readCR3() } set { _writeCR3(newValue) } }
    static var cr4: UInt64 { get { _readCR4() } set { _writeCR4(newValue) } }
    static func invalidatePage(_ va: UInt64) { _invlpg(va) }

    /// MFENCE: orders every earlier load and store before every later one. The one
    /// barrier that forbids x86's store→load reordering (the SB litmus shape).
    static func mfence() { _mfence() }
    static func lfence() { _lfence() }
    static func sfence() { _sfence() }
    /// Stops the compiler, not the CPU, from reordering memory accesses: an
    /// acquire-release fence, which x86-64 needs no instruction for (its loads and
    /// stores already have acquire and release order), so LLVM emits nothing but
    /// still treats it as touching all memory (FreeBSD's __compiler_membar()).
    /// Inline, unlike the opaque call it replaces, which cost a call and a return
    /// on every critical_enter/exit.
    @inline(__always)
    static func compilerBarrier() { atomicMemoryFence(ordering: .acquiringAndReleasing) }
    static func pause() { _pause() }
    static func halt() { _hlt() }
    static func disableInterrupts() { _cli() }
    static func enableInterrupts() { _sti() }
    /// STI;HLT back to back: an interrupt arriving between them still wakes the HLT.
    static func enableInterruptsAndHalt() { _stiHlt() }
    static var flags: UInt64 { _readFlags() }
    static func restoreFlags(_ f: UInt64) { _writeFlags(f) }
    /// Returns the previous RFLAGS and leaves interrupts disabled.
    static func saveFlagsAndDisableInterrupts() -> UInt64 { _saveFlagsCli() }
    /// RFLAGS.IF (bit 9), also for a saved frame's rflags.
    static let interruptFlag: UInt64 = 1 << 9
    static var interruptsEnabled: Bool { _readFlags() & interruptFlag != 0 }
    static func rdtsc() -> UInt64 { _rdtsc() }
    static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> CPUIDResult {
        var r: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        withUnsafeMutablePointer(to: &r) {
            $0.withMemoryRebound(to: UInt32.self, capacity: 4) { _cpuid(leaf, subleaf, $0) }
        }
        return CPUIDResult(eax: r.0, ebx: r.1, ecx: r.2, edx: r.3)
    }
    static func loadGDT(_ descriptor: UnsafeRawPointer) { _lgdt(descriptor) }
    static func loadIDT(_ descriptor: UnsafeRawPointer) { _lidt(descriptor) }
    static func loadTaskRegister(_ selector: UInt16) { _ltr(selector) }
    static func reloadSegments(code: UInt16, data: UInt16) {
        _reloadSegments(UInt64(code), UInt64(data))
    }
    static var framePointer: UInt64 { _readRBP() }
    static var stackPointer: UInt64 { _readRSP() }
    static func haltForever() -> Never { _haltForever() }
    /// Runs `fn(arg)` on the stack whose top is `stackTop`, then returns on ours.
    static func callOnStack(_ fn: @convention(c) (UInt64) -> Void, arg: UInt64, stackTop: UInt64) {
        _callOnStack(fn, arg, stackTop)
    }
    /// Saves callee-saved registers and rsp into `saveRSP`, bumps the switch-out
    /// stamp next to `*oldRunning`, clears `*oldRunning`, and continues on the
    /// stack `newRSP` (Boot/switch.asm). `clearEarly` is the negative control
    /// that clears it first.
    static func switchContext(save saveRSP: UnsafeMutablePointer<UInt64>, to newRSP: UInt64,
                              clearing oldRunning: UnsafeMutablePointer<UInt32>, clearEarly: Bool = false) {
        if clearEarly { _cpuSwitchEarlyClear(saveRSP, newRSP, oldRunning) } else { _cpuSwitch(saveRSP, newRSP, oldRunning) }
    }
    /// Copies `count` bytes from physical/virtual address 0 (the BIOS data area).
    static func copyFromAddressZero(to dst: UnsafeMutableRawPointer, count: Int) { _copyFromPhysicalZero(dst, count) }
    /// Deliberate faults for the fault suites (the faulting instruction is in cpu.asm).
    static func divideByZero(_ dividend: UInt64) -> UInt64 { _divideByZero(dividend) }
    static func touch(_ address: UInt64) -> UInt64 { _touch(address) }
    /// A load that reports a fault instead of ending the kernel (ExceptionFixup).
    static func probeRead(_ address: UInt64) -> UInt64? {
        var value: UInt64 = 0
        return _probeRead(address, &value) == 0 ? value : nil
    }
    /// Drops every non-global TLB entry of this CPU (CR3 reload).
    static func flushTLB() { _flushTLB() }
    /// The caller's registers as a trap frame (rip = where this was called from).
    static func capture(_ frame: UnsafeMutablePointer<TrapFrame>) { _capture(frame) }
    /// Resets the machine through the keyboard controller.
    static func reset() -> Never { _reset() }
}

/// Faults the kernel expects and recovers from: a #PF in `CPU.probeRead`
/// resumes after it with "faulted". Checked before a trap is reported as fatal.
enum ExceptionFixup {
    static func recover(_ frame: UnsafeMutablePointer<TrapFrame>) -> Bool {
        guard frame.pointee.vector == 14, frame.pointee.cs & 3 == 0,
              frame.pointee.rip == _addrProbeReadInsn() else { return false }
        frame.pointee.rip = _addrProbeReadResume()
        frame.pointee.rax = 1
        return true
    }
}
