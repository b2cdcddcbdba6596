# gdb commands for Quartet (sourced by scripts/gdbinit; also usable alone:
# gdb -ex 'source scripts/quartet-gdb.py'). They read raw memory only: the
# per-CPU header through GS (Kern/SMP/PerCPU.swift) and the thread records listed
# in quartet_debug_threads (Boot/bootdata.asm, Kern/Debug/DebugThreads.swift).
import gdb

STATES = ["embryo", "runnable", "running", "sleeping", "migrating", "exited"]

def u64(addr):
    return int(gdb.parse_and_eval("*(unsigned long long *)%d" % addr)) & 0xFFFFFFFFFFFFFFFF

def name_at(ptr, length):
    if ptr == 0 or length == 0 or length > 64:
        return "?"
    mem = gdb.selected_inferior().read_memory(ptr, length)
    return bytes(mem).decode("ascii", "replace")

def records():
    base = int(gdb.parse_and_eval("(unsigned long long)&quartet_debug_threads"))
    n = u64(base)
    out = []
    for i in range(min(n, 1024)):
        c = u64(base + 8 + 8 * i)
        out.append({"ctx": c, "rsp": u64(c), "running": u64(c + 8) & 0xFFFFFFFF, "id": u64(c + 16),
                    "cpu": u64(c + 24), "state": u64(c + 32), "name": name_at(u64(c + 40), u64(c + 48)),
                    "object": u64(c + 56)})
    return sorted(out, key=lambda r: r["id"])

import shutil, subprocess

_demangler = shutil.which("swift-demangle")

def demangle(name):
    """Swift names through swift-demangle when the toolchain is on PATH."""
    if not _demangler or not name.startswith("$e"):
        return name
    try:
        out = subprocess.run([_demangler, "--simplified", name], capture_output=True, text=True, timeout=5)
        text = out.stdout.strip()
        return text.split("---> ", 1)[1] if "---> " in text else (text or name)
    except Exception:
        return name

def symbol(addr, return_address=False):
    """'name + off' for addr; a return address is looked up one byte earlier
    (a call that ends a function returns into the next one)."""
    look = addr - 1 if return_address else addr
    s = gdb.execute("info symbol 0x%x" % look, to_string=True).strip()
    if s.startswith("No symbol"):
        return ""
    s = s.split(" in section")[0]
    name, _, off = s.partition(" + ")
    off = int(off) + (1 if return_address else 0) if off else (1 if return_address else 0)
    return "%s + %d" % (demangle(name), off)

class QCpus(gdb.Command):
    """qcpus: every vCPU with its CPU number, running thread and rip (per-CPU header via GS)."""
    def __init__(self):
        super().__init__("qcpus", gdb.COMMAND_DATA)
    def invoke(self, arg, from_tty):
        by_object = {r["object"]: r for r in records()}
        selected = gdb.selected_thread()
        for t in gdb.selected_inferior().threads():
            t.switch()
            gs = int(gdb.parse_and_eval("$gs_base")) & 0xFFFFFFFFFFFFFFFF
            rip = int(gdb.parse_and_eval("$rip")) & 0xFFFFFFFFFFFFFFFF
            if gs == 0:
                print("vCPU %d: no per-CPU header yet (gs_base 0), rip 0x%x" % (t.num, rip)); continue
            cpu, cur = u64(gs + 8), u64(gs + 16)
            r = by_object.get(cur)
            who = "#%d %s" % (r["id"], r["name"]) if r else "0x%x" % cur
            print("CPU %d (vCPU %d): thread %s, spinlock depth %d, locks held %d, interrupt depth %d, rip 0x%x %s"
                  % (cpu, t.num, who, u64(gs + 24), u64(gs + 48), u64(gs + 40), rip, symbol(rip)))
        selected.switch()
QCpus()

class QThreads(gdb.Command):
    """qthreads: every thread: id, name, state, CPU, saved rsp, RUNNING flag."""
    def __init__(self):
        super().__init__("qthreads", gdb.COMMAND_DATA)
    def invoke(self, arg, from_tty):
        print("   id  name             state      cpu  saved rsp           RUNNING")
        for r in records():
            st = STATES[r["state"]] if r["state"] < len(STATES) else str(r["state"])
            print("%5d  %-15s  %-9s  %3d  0x%016x  %d" % (r["id"], r["name"], st, r["cpu"], r["rsp"], r["running"]))
QThreads()

class QBt(gdb.Command):
    """qbt ID: backtrace of thread ID (switched out: from its saved switch frame; running: use 'bt' on its vCPU)."""
    def __init__(self):
        super().__init__("qbt", gdb.COMMAND_STACK)
    def invoke(self, arg, from_tty):
        try:
            want = int(arg)
        except ValueError:
            print("usage: qbt ID (qthreads lists them)"); return
        r = next((x for x in records() if x["id"] == want), None)
        if r is None:
            print("qbt: no thread #%d" % want); return
        if r["running"]:
            print("qbt: #%d is running on CPU %d: select its vCPU and use 'bt'" % (want, r["cpu"])); return
        rsp = r["rsp"]
        # Boot/switch.asm: r15 r14 r13 r12 rbx rbp, then the return address.
        rbp, ret = u64(rsp + 40), u64(rsp + 48)
        print("#%d %s (%s), saved rsp 0x%x" % (want, r["name"], STATES[r["state"]] if r["state"] < 6 else "?", rsp))
        depth = 0
        while ret != 0 and depth < 32:
            print("  #%-2d 0x%016x  %s" % (depth, ret, symbol(ret, return_address=True)))
            if rbp == 0:
                break
            nxt, ret = u64(rbp), u64(rbp + 8)
            if nxt != 0 and nxt <= rbp:
                break
            rbp = nxt
            depth += 1
QBt()
