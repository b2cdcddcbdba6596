#!/usr/bin/env bash
# Writes the kernel's symbol table into its reserved .ksymtab section, so that
# fault and panic backtraces name their frames without host tools:
#   scripts/symbols.sh build/kernel.linked.elf build/kernel.elf
#
# 1. llvm-nm -n -S --defined-only lists the text symbols (nm types t T w W inside
#    an executable section), Swift and NASM alike; NASM labels are kept as they are.
# 2. swift-demangle --simplified --compact names the Swift ones ($e... in Embedded
#    Swift, $s... from the standard library).
# 3. A symbol's size is its ELF size when it has one, else the distance to the
#    next symbol or the end of its section; never past the next symbol. Where
#    several names share an address, one with a size wins, then one without a
#    leading underscore (linker-script markers such as _text_start).
# 4. The blob (format: Kernel/Core/SymbolTable.swift), zero-padded to exactly the
#    section's size, goes in with llvm-objcopy --update-section.
# 5. The result is checked: same program headers, every loaded byte outside
#    .ksymtab unchanged, _ksymtab_start/_ksymtab_end still bound the section, and
#    scripts/check-image.sh passes. Only then does OUT appear.
#
# Tools: NM, DEMANGLE, OBJCOPY from the environment (the Makefile passes them),
# else the ones next to swiftc.
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 LINKED.elf OUT.elf" >&2; exit 64; }
in=$1 out=$2
bin=
if swiftc=$(command -v swiftc); then bin=$(dirname "$(readlink -f "$swiftc")"); fi
NM=${NM:-$bin/llvm-nm}
DEMANGLE=${DEMANGLE:-$bin/swift-demangle}
OBJCOPY=${OBJCOPY:-$bin/llvm-objcopy}
tmp="$out.tmp"
rm -f "$tmp" "$out"          # a failed run leaves no kernel behind, not a stale one
trap 'rm -f "$tmp" "$tmp.blob"' EXIT

python3 - "$in" "$tmp" "$NM" "$DEMANGLE" "$OBJCOPY" <<'PY'
import struct, subprocess, sys

src, dst, nm, demangle, objcopy = sys.argv[1:6]

def fail(msg):
    sys.exit("symbols.sh: " + msg)

def sections(data):
    """name -> (addr, offset, size, flags) from the ELF64 section headers."""
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)
    raw = [struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = raw[shstrndx][4]
    out = {}
    for name, _, flags, addr, off, size, *_ in raw:
        end = data.index(b'\0', strtab_off + name)
        out[data[strtab_off + name:end].decode()] = (addr, off, size, flags)
    return out

def loads(data):
    """The PT_LOAD program headers: (offset, vaddr, paddr, filesz, memsz, flags)."""
    phoff, = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    out = []
    for i in range(phnum):
        p_type, flags, off, vaddr, paddr, filesz, memsz, _ = struct.unpack_from('<IIQQQQQQ', data, phoff + i * phentsize)
        if p_type == 1:
            out.append((off, vaddr, paddr, filesz, memsz, flags))
    return out

def nm_symbols(path):
    """(address, size, type, name) in address order."""
    text = subprocess.run([nm, '-n', '-S', '--defined-only', path], check=True,
                          capture_output=True, text=True).stdout
    out = []
    for line in text.splitlines():
        t = line.split()
        if len(t) == 4:
            out.append((int(t[0], 16), int(t[1], 16), t[2], t[3]))
        elif len(t) == 3:
            out.append((int(t[0], 16), 0, t[1], t[2]))
    return out

data = open(src, 'rb').read()
secs = sections(data)
if '.ksymtab' not in secs:
    fail(f"{src} has no .ksymtab section (Boot/symtab.asm reserves it, Linker/kernel.ld places it)")
ks_addr, ks_off, reserved, _ = secs['.ksymtab']
code = sorted((a, a + s) for a, _, s, f in secs.values() if f & 0x2 and f & 0x4 and s)   # ALLOC + EXECINSTR

def section_end(addr):
    for lo, hi in code:
        if lo <= addr < hi:
            return hi
    return None

# One name per address (nm -n lists them in address order).
best = {}
for addr, size, kind, name in nm_symbols(src):
    if kind not in 'tTwW' or section_end(addr) is None:
        continue
    rank = (size > 0, not name.startswith('_'))
    if addr not in best or rank > best[addr][0]:
        best[addr] = (rank, size, name)
addrs = sorted(best)

mangled = sorted({n for _, _, n in best.values() if n.startswith('$')})
result = subprocess.run([demangle, '--simplified', '--compact'], input='\n'.join(mangled) + '\n',
                        check=True, capture_output=True, text=True).stdout.split('\n')
if len(result) < len(mangled):
    fail(f"swift-demangle returned {len(result)} lines for {len(mangled)} names")
readable = dict(zip(mangled, result))

def encode(name):
    b = readable.get(name, name).encode()
    if not b:
        b = name.encode()
    if len(b) > 255:                      # the format's limit; cut on a UTF-8 boundary
        b = b[:252].decode('utf-8', 'ignore').encode() + b'...'
    return b

entries, strings, offsets = [], bytearray(), {}
for i, addr in enumerate(addrs):
    _, size, name = best[addr]
    limit = min(section_end(addr), addrs[i + 1] if i + 1 < len(addrs) else 1 << 64)
    end = min(addr + size, limit) if size else limit
    if end <= addr:
        continue
    if end - addr >= 1 << 32:
        fail(f"{name} at {addr:#x} spans {end - addr} bytes, more than the format's 32-bit size")
    b = encode(name)
    if b not in offsets:
        offsets[b] = len(strings)
        strings += bytes([len(b)]) + b
    entries.append(struct.pack('<QII', addr, end - addr, offsets[b]))

blob = struct.pack('<4sIII', b'QSYM', 1, len(entries), len(strings)) + b''.join(entries) + strings
if len(blob) > reserved:
    fail(f"the symbol table needs {len(blob)} bytes but .ksymtab has {reserved}; "
         "raise SYMTAB_BYTES in Boot/symtab.asm")
blob += bytes(reserved - len(blob))
open(dst + '.blob', 'wb').write(blob)
subprocess.run([objcopy, '--update-section', '.ksymtab=' + dst + '.blob', src, dst], check=True)

# Nothing but the table may have changed.
new = open(dst, 'rb').read()
nsecs = sections(new)
after = nsecs.get('.ksymtab')
if after is None or after[0] != ks_addr or after[2] != reserved:
    fail(f"after llvm-objcopy .ksymtab is {after}, was address {ks_addr:#x} size {reserved}")
if loads(new) != loads(data):
    fail("llvm-objcopy changed the program headers")
n_off = nsecs['.ksymtab'][1]
if new[n_off:n_off + reserved] != blob:
    fail("the table in the output is not the one written")
for off, vaddr, _, filesz, _, _ in loads(data):
    old_seg, new_seg = bytearray(data[off:off + filesz]), bytearray(new[off:off + filesz])
    if vaddr <= ks_addr < vaddr + filesz:
        at = ks_addr - vaddr
        old_seg[at:at + reserved] = new_seg[at:at + reserved] = bytes(reserved)
    if old_seg != new_seg:
        fail(f"llvm-objcopy changed loaded bytes outside .ksymtab (segment at {vaddr:#x})")
marks = {n: a for a, _, _, n in nm_symbols(dst) if n in ('_ksymtab_start', '_ksymtab_end')}
if marks != {'_ksymtab_start': ks_addr, '_ksymtab_end': ks_addr + reserved}:
    fail(f"_ksymtab_start/_ksymtab_end are {marks}, the section is {ks_addr:#x}+{reserved:#x}")
used = 16 + 16 * len(entries) + len(strings)
print(f"symbols: {len(entries)} functions, {used} bytes of the {reserved} reserved in .ksymtab")
PY

bash "$(dirname "$0")/check-image.sh" "$tmp"
mv "$tmp" "$out"
