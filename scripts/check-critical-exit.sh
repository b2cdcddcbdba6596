#!/usr/bin/env bash
# C3 in the image (docs/critical-sections.md): in critical_exit the store of 0
# to critnest (the window opens) must come before the load of owepreempt. Both
# are relaxed atomics kept in order by an acquire-release fence, which by the
# language's rules does not order a store before a later load: this checks what
# LLVM actually emitted.
#
#   check-critical-exit.sh KERNEL.elf          disassembles with $OBJDUMP (llvm-objdump)
#   check-critical-exit.sh --listing FILE      checks a saved disassembly instead
#
# In the function CriticalSection.exit(_:inSpinlockSection:) it finds the one
# `movq $0, OFF(%reg)` (critnest = 0) and requires that every byte access to
# OFF+8(%reg) (owepreempt, the next field of Thread) comes after it, and that
# there is at least one.
set -euo pipefail
if [[ "${1:-}" == "--listing" ]]; then
    listing=$(cat "$2")
else
    elf=$1
    objdump=${OBJDUMP:-llvm-objdump}
    nm=${NM:-llvm-nm}
    sym=$("$nm" "$elf" | awk '$3 ~ /15CriticalSectionO4exit/ && $3 ~ /inSpinlock/ { print $3 }' | head -n 1)
    [[ -n "$sym" ]] || { echo "check-critical-exit: CriticalSection.exit(_:inSpinlockSection:) not found in $elf" >&2; exit 1; }
    listing=$("$objdump" -d --no-show-raw-insn --disassemble-symbols="$sym" "$elf")
fi
python3 -c '
import re, sys
lines = sys.stdin.read().splitlines()
insns = []
for l in lines:
    m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", l)
    if m: insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
# Operands as llvm-objdump prints them: immediates and offsets in decimal or hex.
mem = re.compile(r"(0x[0-9a-f]+|\d+)\((%\w+)\)")
def access(o):
    m = mem.search(o)
    return (int(m.group(1), 0), m.group(2)) if m else None
stores = [(a, access(o)) for (a, op, o) in insns if op == "movq" and re.match(r"\$(0x0|0), ", o) and access(o)]
if len(stores) != 1:
    sys.exit("check-critical-exit: expected one store of 0 (critnest = 0) in critical_exit, found %d" % len(stores))
at, (off, reg) = stores[0]
owe = "%#x(%s)" % (off + 8, reg)
loads = [(a, op) for (a, op, o) in insns if access(o) == (off + 8, reg) and (op.endswith("b") or op.startswith("movzb"))]
if not loads:
    sys.exit("check-critical-exit: no byte access to %s (owepreempt) in critical_exit: did Thread'"'"'s layout change?" % owe)
early = [a for (a, op) in loads if a < at]
if early:
    sys.exit("check-critical-exit: C3: critical_exit loads owepreempt (%s at %#x) before it stores critnest = 0 (at %#x)" % (owe, early[0], at))
print("check-critical-exit: critnest = 0 at %#x, then owepreempt (%s) at %#x" % (at, owe, loads[0][0]))
' <<<"$listing"
