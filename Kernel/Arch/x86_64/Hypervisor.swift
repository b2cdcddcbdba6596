// Which machine we run on, from CPUID: the hypervisor bit (leaf 1, ECX bit 31)
// and the vendor signature at leaf 0x40000000. Only used to report, and to
// decide what a suite may require: the development machine's nested KVM
// serializes vCPUs so thoroughly that some relaxed behaviours never show there.

enum Hypervisor: Equatable {
    case none                 // no hypervisor bit: bare metal
    case kvm                  // "KVMKVMKVM\0\0\0"
    case other(UInt32)        // another signature (first four bytes), e.g. QEMU's TCG

    static var current: Hypervisor {
        guard CPU.cpuid(1).ecx & (1 << 31) != 0 else { return .none }
        let r = CPU.cpuid(0x4000_0000)
        // "KVMK" "VMKV" "M\0\0\0" in ebx, ecx, edx.
        if r.ebx == 0x4B4D_564B && r.ecx == 0x564B_4D56 && r.edx == 0x4D { return .kvm }
        return .other(r.ebx)
    }

    /// A short name for boot lines and suite notes.
    var name: StaticString {
        switch self {
        case .none: return "none (bare metal)"
        case .kvm: return "KVM"
        case .other(let sig): return sig == 0x5447_4354 ? "TCG" : sig == 0 ? "unnamed (QEMU TCG?)" : "other"
        }
    }
}
