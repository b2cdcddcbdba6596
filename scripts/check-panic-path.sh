#!/usr/bin/env bash
# Checks, over the built kernel's machine code, that nothing on the way from a
# panic call to the panic claim can reach the heap allocator, the heap's free
# path or any spin lock (docs/panic.md, E7): a CPU that died holding the heap
# lock (or any lock) must not turn every later panic into a spin on that lock.
#
# "The way" is, for every direct call or tail jump to a panic entry
# (Panic.begin, or an out-of-line panic()): the straight-line code before it in
# its caller (back to the start of its basic block: where a jump lands or the
# previous block ends; a retain or release on the way is part of it); the whole
# body of each panic() entry that has callers (with the closure the compiler
# specialized into it); and Panic.begin up to its first locked
# compare-and-swap (the claim). Every function those call or tail-jump to is
# followed, whole, transitively. The check fails if any forbidden entry point
# is among them (it prints the path), if any of that code makes an indirect
# call (it cannot be followed), or if the generic panic(_:_:) entry (the one
# that calls its detail closure indirectly) has any caller.
#
# It also checks the panic() entry symbols take their detail as a non-escaping
# closure (an escaping one makes each call site heap-allocate the closure's
# context). It fails loudly without swift-demangle, without Panic.begin, or
# with fewer than two panic entries.
#
# Usage: check-panic-path.sh build/kernel.elf     (exit 0: clean, 1: found)
#        check-panic-path.sh --disassembly FILE   (objdump -d text; tests)
set -euo pipefail
OBJDUMP=${OBJDUMP:-$(command -v objdump || command -v llvm-objdump || true)}
DEMANGLE=${DEMANGLE:-$(command -v swift-demangle || true)}
if [ -z "$DEMANGLE" ]; then
    echo "check-panic-path: FAIL: swift-demangle not found (set DEMANGLE): the escaping-closure check cannot run"
    exit 1
fi
if [ "${1:-}" = "--disassembly" ]; then
    disassemble() { cat "${2:?usage: check-panic-path.sh --disassembly FILE}"; }
else
    KERNEL=${1:?usage: check-panic-path.sh KERNEL.elf}
    disassemble() { "$OBJDUMP" -d --no-show-raw-insn "$KERNEL"; }
fi
disassemble "$@" | python3 -c '
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
        mn, ops = m.group(2), m.group(3)
        if mn in ("lock", "notrack", "rep", "bnd") and ops:     # LLVM/GNU prefixes: the instruction follows
            parts = ops.split(None, 1); mn = parts[0]; ops = parts[1] if len(parts) > 1 else ""
        funcs[cur].append((int(m.group(1), 16), mn, ops))

# Allocation, the free path (the same heap lock) and any spin lock.
FORBIDDEN = re.compile(r"^(swift_allocObject|swift_slowAlloc|swift_allocBox|swift_allocEmptyBox|posix_memalign|malloc|calloc|realloc"
                       r"|swift_release|swift_deallocClassInstance|swift_deallocObject|swift_deallocUninitializedObject"
                       r"|swift_deallocPartialClassInstance|swift_slowDealloc|free|kfree)$"
                       r"|HeapO8allocate|SlabHeapV8allocate|SlabHeapV13allocate|HeapO4free|SlabHeapV4free|SlabHeapV9freeLarge|5kfree"
                       r"|SpinLockV4lock|SpinLockV7tryLock|SpinLockV10lockInTurn|SpinLockV8lockSlow|TicketLockV4lock|TicketLockV11waitForTurn")
# Reference counting that a call site may do around its arguments: part of the block.
REFCOUNT = re.compile(r"^(swift_retain|swift_release|swift_bridgeObjectRetain|swift_bridgeObjectRelease)$")
CLAIM = [n for n in funcs if n.startswith("$e7Quartet5PanicO5begin")]
ENTRIES = [n for n in funcs if n.startswith("$e7Quartet5panic")]
if len(CLAIM) != 1:
    sys.exit("check-panic-path: FAIL: Panic.begin not found (or more than one): %r" % CLAIM)
if len(ENTRIES) < 2:
    sys.exit("check-panic-path: FAIL: %d panic() entries found (want the plain one and the detail one): %r" % (len(ENTRIES), ENTRIES))
claim = CLAIM[0]
problems = []

def demangled(n):
    return subprocess.run([demangle, "-compact", n], capture_output=True, text=True).stdout.strip()
GENERIC = []
for n in ENTRIES:
    text = demangled(n)
    if not text or text == n:
        problems.append("cannot demangle panic entry %s" % n)
    # The demangler prints no "@escaping": read the mangling of the entry
    # itself (a specialization starts with it): a non-escaping function
    # parameter is "XE", an escaping one "c" (and an optional one is escaping).
    head = n[:n.index("tF") + 2] if "tF" in n else n
    if "FixedLineBuffer" in head and ("FixedLineBufferVzXE" not in head or ") -> ())?" in text):
        problems.append("panic entry %s takes an escaping detail closure: every call site heap-allocates its context" % text)
    # The unspecialized detail entry calls its closure indirectly: its
    # callers cannot be checked (a debug build, a closure in a variable).
    if "->" in text and "specialization" not in text and "FixedLineBuffer" in text:
        GENERIC.append(n)

def target(ops):
    m = target_re.match(ops.strip())
    return (int(m.group(1), 16), m.group(2)) if m else (None, None)

def is_call(mn): return mn.startswith("call")
def is_jump(mn): return mn.startswith("j")
def indirect(ops): return ops.strip().startswith("*")
def edge(fn, mn, ops):
    """The function a call or a tail jump goes to, "indirect" or None."""
    if not (is_call(mn) or is_jump(mn)): return None
    if indirect(ops): return "indirect" if is_call(mn) or mn == "jmp" else None
    t, tn = target(ops)
    if tn is None: return None
    if is_jump(mn) and tn == fn: return None          # a jump inside the function
    return tn
NORETURN = set([claim] + ENTRIES)

PROLOGUE = re.compile(r"^(cpu_cli|cpu_capture)$")
def block_before(name, idx):
    """The straight-line instructions before funcs[name][idx] (a call): the
    argument set-up, back to the previous call of anything but the own
    first steps of panic (interrupts off, register capture), reference
    counting or a forbidden entry."""
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
            if t in NORETURN or not (t and (PROLOGUE.search(t) or REFCOUNT.search(t) or FORBIDDEN.search(t))):
                break
        out.append(insns[i])
        if a in landing:
            break
        i -= 1
    return out

def edges_in(fn, insns):
    for a, mn, ops in insns:
        t = edge(fn, mn, ops)
        if t: yield (a, t)

# Roots: (where, list of instructions, followed transitively)
roots = []
called = set()
for name in order:
    for idx, (a, mn, ops) in enumerate(funcs[name]):
        t = edge(name, mn, ops)
        if t in NORETURN and name != t:
            called.add(t)
            roots.append(("%s before the %s at %x" % (name, "call" if is_call(mn) else "tail jump", a), block_before(name, idx), False))
            if t in GENERIC:
                problems.append("the generic panic(_:_:) entry (indirect detail call) is called from %s at %x: its closure cannot be checked" % (name, a))
for n in ENTRIES:
    if n in called:
        roots.append(("panic entry %s" % n, funcs[n], True))
prefix = []
for ins in funcs[claim]:
    if "cmpxchg" in ins[1]:
        break
    prefix.append(ins)
else:
    problems.append("no locked compare-and-swap (the claim) found in %s" % claim)
roots.append(("Panic.begin up to the claim", prefix, True))

def bad_path(fn):
    """A call chain from fn to a forbidden entry or an indirect call, or None."""
    stack = [(fn, [fn])]
    seen = set()
    while stack:
        f, via = stack.pop()
        if f in seen or f in NORETURN: continue
        seen.add(f)
        reached.add(f)
        if FORBIDDEN.search(f): return via
        for a, t in edges_in(f, funcs.get(f, [])):
            if t == "indirect": return via + ["an indirect call at %x" % a]
            stack.append((t, via + [t]))
    return None
reached = set()
for where, insns, transitive in roots:
    for a, t in edges_in(None, insns):
        if t == "indirect":
            if transitive: problems.append("indirect call before the panic claim (cannot be followed): %s at %x" % (where, a))
            continue
        if t in NORETURN: continue
        if not transitive:
            # A call site: argument set-up only. A boxed closure context shows
            # as a direct call of the allocator in the block before the call.
            if FORBIDDEN.search(t):
                problems.append("forbidden call before the panic claim: %s calls %s" % (where, t))
            continue
        path = bad_path(t)
        if path:
            problems.append("reachable before the panic claim: " + " -> ".join([where] + path))
sites = sum(1 for w, _, _ in roots if " before the " in w)
if problems:
    for p in problems[:60]: print("check-panic-path: " + p)
    print("check-panic-path: FAIL: %d problem(s) over %d panic call sites" % (len(problems), sites))
    sys.exit(1)
print("check-panic-path: OK: %d panic call sites, %d panic entries (%d called), %d functions reachable before the claim; none allocates, frees, locks or calls indirectly" % (sites, len(ENTRIES), len(called & set(ENTRIES)), len(reached)))
' "$DEMANGLE"
