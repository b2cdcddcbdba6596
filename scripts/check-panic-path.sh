#!/usr/bin/env bash
# Checks, over the built kernel's machine code, that nothing on the way from a
# panic call to the panic claim can reach the heap allocator (docs/panic.md, the
# claim before anything else): a CPU that died holding the heap lock must not
# turn every later panic into a spin on that lock.
#
# "The way" is, for every direct call to a panic entry (Panic.begin, or an
# out-of-line panic() if the compiler kept one): the straight-line code before
# that call in its caller (back to the start of its basic block: where a jump
# lands or the previous block ends); the whole body of an out-of-line panic();
# and Panic.begin up to its first locked compare-and-swap (the claim). Every
# function those call directly is followed, whole, transitively. The check
# fails if any allocation entry point is among them, and prints the path.
#
# It also checks the panic() entry symbols, if any, take their detail as a
# non-escaping closure (an escaping one makes each call site heap-allocate the
# closure's context).
#
# Usage: check-panic-path.sh build/kernel.elf     (exit 0: clean, 1: found)
set -euo pipefail
KERNEL=${1:?usage: check-panic-path.sh KERNEL.elf}
OBJDUMP=${OBJDUMP:-$(command -v objdump || command -v llvm-objdump)}
DEMANGLE=${DEMANGLE:-$(command -v swift-demangle || true)}
"$OBJDUMP" -d --no-show-raw-insn "$KERNEL" | python3 -c '
import re, subprocess, sys
demangle = sys.argv[1]
func_re = re.compile(r"^([0-9a-f]+) <(.+)>:$")
insn_re = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
target_re = re.compile(r"^(?:0x)?([0-9a-f]+) <([^>+]+)(\+0x[0-9a-f]+)?>")
funcs = {}            # name -> list of (addr, mnemonic, operands)
order = []
cur = None
for line in sys.stdin:
    line = line.rstrip("\n")
    m = func_re.match(line)
    if m:
        cur = m.group(2); funcs[cur] = []; order.append(cur); continue
    m = insn_re.match(line)
    if m and cur is not None:
        funcs[cur].append((int(m.group(1), 16), m.group(2), m.group(3)))

ALLOC = re.compile(r"^(swift_allocObject|swift_slowAlloc|swift_allocBox|swift_allocEmptyBox|posix_memalign|malloc|calloc|realloc)$|HeapO8allocate|SlabHeapV8allocate|SlabHeapV13allocate")
CLAIM = [n for n in funcs if n.startswith("$e7Quartet5PanicO5begin")]
ENTRIES = [n for n in funcs if n.startswith("$e7Quartet5panic")]
if len(CLAIM) != 1:
    sys.exit("check-panic-path: Panic.begin not found (or more than one): %r" % CLAIM)
claim = CLAIM[0]
problems = []

# The panic() entries must take a non-escaping closure.
for n in ENTRIES:
    text = subprocess.run([demangle, "-compact", n], capture_output=True, text=True).stdout.strip() if demangle else n
    if "@escaping" in text or ") -> ())?" in text:
        problems.append("panic entry %s takes an escaping detail closure: every call site heap-allocates its context" % text)

def target(ops):
    m = target_re.match(ops.strip())
    return (int(m.group(1), 16), m.group(2)) if m else (None, None)

def is_call(mn): return mn.startswith("call")
def is_jump(mn): return mn.startswith("j")
NORETURN = set([claim] + ENTRIES)

PROLOGUE = re.compile(r"^(cpu_cli|cpu_capture)$")
def block_before(name, idx):
    """The straight-line instructions before funcs[name][idx] (a call): the
    argument set-up, back to the previous call of anything but the own
    first steps of panic (interrupts off, register capture) or an allocator."""
    insns = funcs[name]
    landing = set()
    for a, mn, ops in insns:
        if is_jump(mn):
            t, tn = target(ops)
            if t is not None: landing.add(t)
    out = []
    i = idx - 1
    while i >= 0:
        a, mn, ops = insns[i]
        if mn.startswith("ret") or mn == "ud2" or is_jump(mn) or mn == "int3":
            break
        if is_call(mn):
            t = target(ops)[1]
            if t in NORETURN or not (t and (PROLOGUE.search(t) or ALLOC.search(t))):
                break
        out.append(insns[i])
        if a in landing:
            break
        i -= 1
    return out

def calls_in(insns):
    for a, mn, ops in insns:
        if is_call(mn):
            t, tn = target(ops)
            yield (a, tn if tn else "indirect " + ops.strip())

# Roots: (where, list of instructions)
roots = []
for name in order:
    for idx, (a, mn, ops) in enumerate(funcs[name]):
        if is_call(mn) and target(ops)[1] in NORETURN:
            roots.append(("%s before the call at %x" % (name, a), block_before(name, idx), False))
for n in ENTRIES:
    roots.append(("panic entry %s" % n, funcs[n], True))
prefix = []
for ins in funcs[claim]:
    if "cmpxchg" in ins[1] or "cmpxchg" in ins[2]:     # "lock cmpxchg" (GNU) or "lock" then "cmpxchgl" (LLVM)
        break
    prefix.append(ins)
else:
    problems.append("no locked compare-and-swap (the claim) found in %s" % claim)
roots.append(("Panic.begin up to the claim", prefix, True))

# Transitive closure of direct callees (whole functions), memoized.
memo = {}
def alloc_path(fn):
    """A call chain from fn to an allocation entry point, or None."""
    stack = [(fn, [fn])]
    seen = set()
    while stack:
        f, via = stack.pop()
        if f in seen or f in NORETURN: continue
        seen.add(f)
        if ALLOC.search(f): return via
        for a, t in calls_in(funcs.get(f, [])):
            if not t.startswith("indirect"):
                stack.append((t, via + [t]))
    return None
reached = set()
indirect = 0
for where, insns, transitive in roots:
    for a, t in calls_in(insns):
        if t.startswith("indirect"): indirect += 1; continue
        if not transitive:
            # A call site: argument set-up only. A boxed closure context shows
            # as a direct call of the allocator in the block before the call.
            if ALLOC.search(t):
                problems.append("allocation before the panic claim: %s calls %s" % (where, t))
            continue
        reached.add(t)
        path = alloc_path(t)
        if path:
            problems.append("allocation reachable before the panic claim: " + " -> ".join([where] + path))
sites = sum(1 for w, _, _ in roots if "before the call" in w)
if problems:
    for p in problems[:60]: print("check-panic-path: " + p)
    print("check-panic-path: FAIL: %d problem(s) over %d panic call sites" % (len(problems), sites))
    sys.exit(1)
print("check-panic-path: OK: %d panic call sites, %d panic entries, %d functions reachable before the claim, none allocates (%d indirect calls not followed)" % (sites, len(ENTRIES), len(reached), indirect))
' "$DEMANGLE"
