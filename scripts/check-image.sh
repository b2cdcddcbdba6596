#!/usr/bin/env bash
# Checks the invariant QEMU's multiboot loader relies on (Linker/kernel.ld): every
# loadable segment sits in the file at the same distance from its physical address
# as the first one, and the multiboot header is within the first 8 KiB.
set -euo pipefail
python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
if data[:4] != b'\x7fELF' or data[4] != 2:
    sys.exit("check-image: not an ELF64 file")
phoff, = struct.unpack_from('<Q', data, 0x20)
phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
loads = []
for i in range(phnum):
    p_type, _, off, vaddr, paddr, filesz, memsz, _ = struct.unpack_from('<IIQQQQQQ', data, phoff + i * phentsize)
    if p_type == 1:
        loads.append((off, paddr, filesz))
if not loads:
    sys.exit("check-image: no LOAD segments")
delta = loads[0][0] - loads[0][1]
bad = [f"segment at paddr {p:#x} is at file offset {o:#x}, expected {p + delta:#x}"
       for o, p, fs in loads[1:] if fs and o - p != delta]
if loads[0][0] >= 8192:
    bad.append(f"multiboot header at file offset {loads[0][0]:#x}, beyond 8 KiB")
if bad:
    sys.exit("check-image: " + "; ".join(bad))
PY
