#!/usr/bin/env python3
"""Re-capture the ACPI fixtures in this directory from QEMU.

Boots QEMU with no disk so SeaBIOS finishes POST (building the ACPI tables from QEMU's
fw_cfg blobs) and then idles at "No bootable device"; dumps guest RAM through the
monitor; finds the RSDP the way the kernel does; and writes, per configuration, the
raw RSDP, every table the RSDT/XSDT lists (<SIG>.bin) and index.json with addresses.
Run: python3 capture.py   (needs qemu-system-x86_64; takes ~20 s)
"""
import json, os, struct, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [  # name, machine, -smp, maxcpus
    ("pc-smp1", "pc", 1, None),
    ("pc-smp4", "pc", 4, None),
    ("pc-smp8", "pc", 8, None),
    ("q35-smp4", "q35", 4, None),
    # Hot-pluggable CPU slots beyond the boot set appear as MADT entries with enabled=0.
    ("pc-smp2-max4", "pc", 2, 4),
]
MEM_MB = 128


def checksum(b):
    return sum(b) & 0xFF


def dump_ram(machine, smp, maxcpus):
    smp_arg = str(smp) + (f",maxcpus={maxcpus}" if maxcpus else "")
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "ram.bin")
        p = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", machine, "-smp", smp_arg, "-m", f"{MEM_MB}M",
             "-display", "none", "-nodefaults", "-serial", "none", "-monitor", "stdio",
             "-accel", "tcg"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        time.sleep(3)  # SeaBIOS POST
        # The file name must be quoted: unquoted, the monitor parses '/' as division.
        p.stdin.write(f'stop\npmemsave 0 {MEM_MB << 20:#x} "{dump}"\nquit\n')
        p.stdin.flush()
        p.wait(timeout=60)
        with open(dump, "rb") as f:
            return f.read()


def capture(name, machine, smp, maxcpus):
    ram = dump_ram(machine, smp, maxcpus)
    ebda_seg = struct.unpack_from("<H", ram, 0x40E)[0]
    ebda = ebda_seg << 4
    rsdp = next(a for base, end in ((ebda, ebda + 1024), (0xE0000, 0x100000))
                for a in range(base, end, 16)
                if ram[a:a + 8] == b"RSD PTR " and checksum(ram[a:a + 20]) == 0)
    rev = ram[rsdp + 15]
    rsdp_len = struct.unpack_from("<I", ram, rsdp + 20)[0] if rev >= 2 else 20
    rsdt = struct.unpack_from("<I", ram, rsdp + 16)[0]
    xsdt = struct.unpack_from("<Q", ram, rsdp + 24)[0] if rev >= 2 else 0

    outdir = os.path.join(HERE, name)
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        os.remove(os.path.join(outdir, f))
    with open(os.path.join(outdir, "RSDP.bin"), "wb") as f:
        f.write(ram[rsdp:rsdp + rsdp_len])

    tables = []

    def add(addr):
        length = struct.unpack_from("<I", ram, addr + 4)[0]
        t = ram[addr:addr + length]
        sig = t[:4].decode()
        assert checksum(t) == 0, f"bad checksum in {sig}"
        with open(os.path.join(outdir, f"{sig}.bin"), "wb") as f:
            f.write(t)
        tables.append({"signature": sig, "address": addr, "file": f"{sig}.bin"})
        return t

    seen = set()
    for root, width in ((rsdt, 4), (xsdt, 8)):
        if not root:
            continue
        t = add(root)
        for off in range(36, len(t), width):
            entry = int.from_bytes(t[off:off + width], "little")
            if entry not in seen:
                seen.add(entry)
                add(entry)

    qemu = subprocess.check_output(["qemu-system-x86_64", "--version"], text=True).splitlines()[0]
    index = {"machine": machine, "smp": smp, "maxcpus": maxcpus or smp, "memoryMiB": MEM_MB,
             "qemu": qemu, "ebdaSegment": ebda_seg, "rsdpAddress": rsdp, "rsdpRevision": rev,
             "rsdtAddress": rsdt, "xsdtAddress": xsdt, "tables": tables}
    with open(os.path.join(outdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(name, f"RSDP@{rsdp:#x} rev {rev}", [(t["signature"], hex(t["address"])) for t in tables])


if __name__ == "__main__":
    for config in CONFIGS:
        capture(*config)
