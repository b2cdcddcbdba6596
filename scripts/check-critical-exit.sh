#!/usr/bin/env bash
# C3 in the image (docs/critical-sections.md): in critical_exit the store of 0
# to critnest (the window opens) must come before the load of owepreempt. Both
# are relaxed atomics kept in order by an acquire-release fence, which by the
# language's rules does not order a store before a later load: this checks what
# LLVM actually emitted, in EVERY copy of critical_exit (the outlined function
# and the ones inlined through SpinLock.unlock into other functions).
#
#   check-critical-exit.sh KERNEL.elf          disassembles with $OBJDUMP (llvm-objdump)
#   check-critical-exit.sh --listing FILE      checks a saved disassembly instead
#
# 1. The outlined CriticalSection.exit(_:inSpinlockSection:) gives the field
#    offsets: critnest is OFF, the offset of a `movq $0, OFF(%reg)` whose
#    OFF+8 (owepreempt, the next field of Thread) the function reads.
# 2. A copy is any function with such a store and a byte READ of OFF+8 (through
#    any base register but the stack's: a mov/movz whose memory operand is the
#    source, a test/cmp, or a read-modify-write; a store to OFF+8, such as
#    preemptOwed's `owepreempt = false`, is not a read).
# 3. In each copy, no read of OFF+8 may be reachable from the function's entry
#    without passing through a store of 0 to OFF (the store dominates every
#    read), following jumps and fall-through, not address order.
set -euo pipefail
if [[ "${1:-}" == "--listing" ]]; then
    listing=$(cat "$2")
else
    elf=$1
    objdump=${OBJDUMP:-llvm-objdump}
    listing=$("$objdump" -d --no-show-raw-insn "$elf")
fi
python3 -c '
import re, sys
funcs, order, cur = {}, [], None
for l in sys.stdin.read().splitlines():
    m = re.match(r"^([0-9a-f]+) <(.+)>:$", l)
    if m:
        cur = m.group(2); funcs[cur] = []; order.append(cur); continue
    m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", l)
    if m and cur is not None:
        funcs[cur].append((int(m.group(1), 16), m.group(2), m.group(3).split("#")[0].strip()))
def fail(msg): sys.exit("check-critical-exit: " + msg)
mem = re.compile(r"(-?0x[0-9a-f]+|-?\d+)?\((%\w+)(,[^)]*)?\)")
def operands(o):
    # AT&T operands split at top-level commas (not inside parentheses).
    out, depth, cur = [], 0, ""
    for ch in o:
        if ch == "(": depth += 1
        if ch == ")": depth -= 1
        if ch == "," and depth == 0: out.append(cur.strip()); cur = ""
        else: cur += ch
    if cur.strip(): out.append(cur.strip())
    return out
def field(opnd):
    m = mem.fullmatch(opnd)
    if not m or m.group(2) in ("%rsp", "%rbp", "%rip") or m.group(3): return None
    return int(m.group(1) or "0", 0)
def zero_store(op, o, off):
    ops = operands(o)
    return op == "movq" and len(ops) == 2 and ops[0] in ("$0x0", "$0") and field(ops[1]) == off
def reads(op, o, off):
    # owepreempt is a Bool: byte accesses only (movb, movzb*, testb, cmpb, ...).
    if not (op.endswith("b") or op.startswith("movzb") or op.startswith("movsb")): return False
    ops = operands(o)
    idx = [i for i, x in enumerate(ops) if field(x) == off]
    if not idx: return False
    if op.startswith("mov") or op.startswith("lea"):
        return idx[0] != len(ops) - 1 and not op.startswith("lea")
    return True          # test, cmp, or a read-modify-write
def wide(r):
    r = r.lstrip("%")
    if re.fullmatch(r"r\d+[dwb]?", r): return "%" + re.sub(r"[dwb]$", "", r)
    return "%r" + r[1:] if r[0] == "e" else "%" + r
def zero_register_store(insns, i, off):
    # `movq %reg, OFF(...)` where the last write of reg before it is `xor reg, reg`.
    a, op, o = insns[i]
    ops = operands(o)
    if op != "movq" or len(ops) != 2 or not ops[0].startswith("%") or field(ops[1]) != off: return False
    reg = wide(ops[0])
    for (_, op2, o2) in reversed(insns[:i]):
        ops2 = operands(o2)
        if ops2 and ops2[-1].startswith("%") and wide(ops2[-1]) == reg:
            return op2.startswith("xor") and len(ops2) == 2 and ops2[0] == ops2[1]
    return False
name = [f for f in order if "15CriticalSectionO4exit" in f and "inSpinlock" in f]
if not name: fail("CriticalSection.exit(_:inSpinlockSection:) not found")
outlined = funcs[name[0]]
offs = set()
for (_, op, o) in outlined:
    ops = operands(o)
    if op == "movq" and len(ops) == 2 and ops[0] in ("$0x0", "$0") and field(ops[1]) is not None:
        off = field(ops[1])
        if any(reads(op2, o2, off + 8) for (_, op2, o2) in outlined): offs.add(off)
if not offs:
    fail("no read of owepreempt after a store of 0 in critical_exit: did Thread'"'"'s layout change?")
if len(offs) != 1:
    fail("expected one critnest offset in critical_exit (a store of 0 whose next field is read), found %d: did Thread'"'"'s layout change?" % len(offs))
off = offs.pop()
owe = "%#x(%%reg)" % (off + 8)
def check(fname, insns):
    addrs = [a for (a, _, _) in insns]
    at = {a: i for i, a in enumerate(addrs)}
    stores = {i for i, (a, op, o) in enumerate(insns) if zero_store(op, o, off)}
    loads = {i for i, (a, op, o) in enumerate(insns) if reads(op, o, off + 8)}
    stores |= {i for i in range(len(insns)) if zero_register_store(insns, i, off)}
    if not stores or not loads: return None
    # Every path from the entry: stop at a store of 0 to critnest.
    seen, todo = set(), [0]
    while todo:
        i = todo.pop()
        if i in seen or i >= len(insns) or i in stores: continue
        seen.add(i)
        a, op, o = insns[i]
        if op.startswith("j"):
            t = re.match(r"(0x[0-9a-f]+)", o)
            if op.startswith("jmp") and t is None:
                fail("%s: an indirect jump at %#x; the order check cannot follow it" % (fname, a))
            if t and int(t.group(1), 16) in at: todo.append(at[int(t.group(1), 16)])
            if op.startswith("jmp"): continue
        if op.startswith("ret") or op == "ud2": continue
        todo.append(i + 1)
    early = sorted(loads & seen)
    if early:
        fail("C3: %s loads owepreempt (%s at %#x) on a path that has not stored critnest = 0 (stores at %s)"
             % (fname, owe, insns[early[0]][0], ", ".join("%#x" % insns[s][0] for s in sorted(stores))))
    return (min(insns[s][0] for s in stores), min(insns[l][0] for l in loads))
first = check(name[0], outlined)
if first is None: fail("no read of owepreempt (%s) in critical_exit: did Thread'"'"'s layout change?" % owe)
copies = [f for f in order if f != name[0] and check(f, funcs[f]) is not None]
print("check-critical-exit: critnest = 0 at %#x, then owepreempt (%s) at %#x; %d inlined copies checked too%s"
      % (first[0], owe, first[1], len(copies), (": " + ", ".join(copies)) if copies else ""))
' <<<"$listing"
