#!/usr/bin/env bash
# make bench-linux: the Linux side of the benchmark comparison (docs/benchmarks.md).
# Boots Debian's kernel on the same QEMU, accelerator, virtual CPU and -smp as
# Quartet's run=bench, with a minimal initramfs whose /init runs qbench
# (bench/linux/qbench.c), and prints its BENCHENV/BENCH/SKIP lines.
#   bench-linux.sh [--accel auto|tcg|kvm] [--smp N] [--out DIR] [--ms N]
#     --accel  auto (default): TCG, then KVM too when /dev/kvm is usable (and
#              is not the nested kvm_pvm backend, which cannot boot Linux: there
#              the KVM run is a SKIP line)
#     --smp    virtual CPUs (default 4)
#     --out    where the serial logs go, as linux-<accel>.log (default build/bench)
#     --ms     time budget of each measurement in ms (default 300)
# The kernel and busybox are downloaded once (apt-get download) into build/linux/.
# Exit status: non-zero only when a boot did not complete (no "End of test:
# SUCCESS") or the setup failed; never because of a figure.
set -euo pipefail
cd "$(dirname "$0")/.."

accel=auto smp=4 out=build/bench ms=300
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --accel) accel=${2:?--accel needs a value}; shift 2;;
    --smp) smp=${2:?--smp needs a value}; shift 2;;
    --out) out=${2:?--out needs a value}; shift 2;;
    --ms) ms=${2:?--ms needs a value}; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "bench-linux.sh: unknown argument $1" >&2; usage >&2; exit 64;;
  esac
done
[[ $smp =~ ^[1-9][0-9]*$ ]] || { echo "bench-linux.sh: --smp wants a positive number" >&2; exit 64; }
[[ $ms =~ ^[1-9][0-9]*$ ]] || { echo "bench-linux.sh: --ms wants a positive number" >&2; exit 64; }

kvm_usable() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
# The development machine's /dev/kvm is the nested kvm_pvm backend. It runs guest
# kernel code through KVM's instruction emulator (~1000 times slower than TCG),
# which cannot execute what a stock Linux kernel does while booting: CMPXCHG16B
# (SLUB), XRSTOR (FPU init) and INT3 (the unconditional int3 self-test of the
# alternatives code, no boot option avoids it); and the bzImage did not even get
# through its real-mode setup and decompressor in 4 minutes. Quartet, which avoids
# those, runs there; Linux cannot. So on that backend the KVM run is a skip, not a
# failure: `auto` leaves it out, and an explicit `--accel kvm` writes a SKIP line
# as linux-kvm.log (replacing any older log) and succeeds without booting.
kvm_pvm() { [ -d /sys/module/kvm_pvm ]; }
pvm_skip="SKIP: linux: /dev/kvm is the nested kvm_pvm backend, whose instruction emulator cannot boot a stock Linux kernel (no CMPXCHG16B, XRSTOR or INT3)"
case "$accel" in
  auto) accels=(tcg)
        if kvm_usable; then
          if kvm_pvm; then echo "$pvm_skip"; else accels+=(kvm); fi
        fi;;
  tcg) accels=(tcg);;
  kvm) kvm_usable || { echo "bench-linux.sh: /dev/kvm is not usable; use --accel tcg" >&2; exit 64; }
       if kvm_pvm; then
         mkdir -p "$out"
         printf '%s\n' "$pvm_skip" | tee "$out/linux-kvm.log"
         exit 0
       fi
       accels=(kvm);;
  *) echo "bench-linux.sh: --accel must be auto, tcg or kvm" >&2; exit 64;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq >&2; apt_updated=1; fi
}

# ---- tools (installed the way scripts/setup.sh does) ----
have_static_libc() { [ -f "$(gcc -print-file-name=libc.a 2>/dev/null)" ]; }
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v gcc >/dev/null 2>&1 && have_static_libc || need+=(libc6-dev)   # libc.a for -static
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-linux: installing ${need[*]}" >&2
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
for tool in qemu-system-x86_64 gcc cpio gzip dpkg-deb apt-get apt-cache timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-linux.sh: $tool still missing" >&2; exit 1; }
done

# ---- Debian's kernel and busybox, fetched once ----
lin=build/linux
mkdir -p "$lin" "$out"

# Downloads package $1 into $lin (apt-get download writes into the current
# directory) and prints the .deb's path. Updates the package lists once when the
# first try fails (a machine whose lists are missing or stale).
download() {
  local pkg=$1 deb
  rm -f "$lin/${pkg}"_*.deb
  if ! (cd "$lin" && apt-get download -q "$pkg" >&2); then
    apt_update
    (cd "$lin" && apt-get download -q "$pkg" >&2) || {
      echo "bench-linux.sh: apt-get download $pkg failed" >&2; return 1; }
  fi
  deb=$(ls "$lin/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
  [ -n "$deb" ] || { echo "bench-linux.sh: apt-get download $pkg left no .deb in $lin" >&2; return 1; }
  printf '%s\n' "$deb"
}

# Extracts the members matching the pattern $2 (e.g. './boot/vmlinuz-*') of the
# .deb $1 into the directory $3: the kernel package's modules (hundreds of MB
# unpacked) are never written out, which `dpkg-deb -x` would do.
extract() {
  mkdir -p "$3"
  dpkg-deb --fsys-tarfile "$1" | tar -x -C "$3" --wildcards "$2"
}

# linux-image-amd64 is a meta package: the kernel is in the package it depends on,
# linux-image-<version>-amd64.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

if [ ! -s "$lin/vmlinuz" ]; then
  pkg=$(kernel_package || true)
  if [ -z "$pkg" ]; then apt_update; pkg=$(kernel_package || true); fi
  [ -n "$pkg" ] || { echo "bench-linux.sh: cannot resolve linux-image-amd64 to a kernel package (apt-cache depends)" >&2; exit 1; }
  echo "bench-linux: downloading $pkg" >&2
  deb=$(download "$pkg")
  rm -rf "$lin/kernel.tmp"
  extract "$deb" './boot/vmlinuz-*' "$lin/kernel.tmp"
  vmlinuz=$(ls "$lin"/kernel.tmp/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
  [ -n "$vmlinuz" ] || { echo "bench-linux.sh: $deb holds no boot/vmlinuz-*" >&2; exit 1; }
  basename "$vmlinuz" | sed 's/^vmlinuz-//' > "$lin/vmlinuz.version"
  mv "$vmlinuz" "$lin/vmlinuz"   # a rename: the cached kernel is complete or absent
  rm -rf "$lin/kernel.tmp" "$deb"
fi
if [ ! -s "$lin/busybox" ]; then
  echo "bench-linux: downloading busybox-static" >&2
  deb=$(download busybox-static)
  rm -rf "$lin/busybox.tmp"
  extract "$deb" './bin/busybox' "$lin/busybox.tmp"
  [ -x "$lin/busybox.tmp/bin/busybox" ] || { echo "bench-linux.sh: $deb holds no bin/busybox" >&2; exit 1; }
  mv "$lin/busybox.tmp/bin/busybox" "$lin/busybox"
  rm -rf "$lin/busybox.tmp" "$deb"
fi

# ---- the initramfs: busybox, /init and the static qbench ----
gcc -O2 -static -pthread -Wall -Wextra -o "$lin/qbench" bench/linux/qbench.c
root=$lin/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys}
cp "$lin/busybox" "$root/bin/busybox"
for applet in sh mount poweroff; do ln -s busybox "$root/bin/$applet"; done
cp "$lin/qbench" "$root/qbench"
# The kernel turns an unknown `name=value` on its command line into an environment
# variable of init: qbench_ms carries --ms, so the image does not depend on it.
cat > "$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the benchmark initramfs (scripts/bench-linux.sh writes it).
export PATH=/bin
mount -t proc proc /proc || echo "init: mounting /proc failed"
mount -t sysfs sysfs /sys || echo "init: mounting /sys failed"
mount -t devtmpfs devtmpfs /dev || echo "init: mounting /dev failed"
# The kernel's built-in initramfs provides /dev/console; reopening it on the
# devtmpfs keeps init's output on the serial console in any case.
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
/qbench --poweroff --ms "${qbench_ms:-300}"
# qbench powers the machine off itself; reaching here means it failed.
echo "init: qbench exited with status $?"
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
   cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 > "$lin/initramfs.cpio.gz"

# ---- the boots ----
kver=$(cat "$lin/vmlinuz.version" 2>/dev/null || echo unknown)
status=0
for a in "${accels[@]}"; do
  # The virtual CPU of scripts/run-qemu.sh, so both systems run on the same one:
  # -cpu max under TCG; under (nested) KVM -cpu host without arch-capabilities,
  # whose MSR QEMU 7.2 fails to set there.
  if [ "$a" = kvm ]; then accel_args=(-accel kvm -cpu host,-arch-capabilities); limit=300
  else accel_args=(-accel tcg,thread=multi -cpu max); limit=600; fi
  log=$out/linux-$a.log
  echo "== linux $kver, -smp $smp, $a (log: $log)"
  start=$SECONDS
  rc=0
  timeout --foreground -k 5 "$limit" qemu-system-x86_64 \
    "${accel_args[@]}" -smp "$smp" -m 512M \
    -nodefaults -no-reboot -display none -monitor none -serial stdio \
    -kernel "$lin/vmlinuz" -initrd "$lin/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 qbench_ms=$ms" \
    </dev/null >"$log" 2>&1 || rc=$?
  # The console ends its lines with CR LF.
  tr -d '\r' < "$log" | grep -E '^(BENCHENV|BENCH|SKIP):' || true
  if tr -d '\r' < "$log" | grep -qx 'End of test: SUCCESS'; then
    echo "bench-linux: $a run done in $((SECONDS - start)) s"
  else
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then why="timed out after ${limit}s"; else why="QEMU status $rc"; fi
    echo "bench-linux: the $a run did not complete ($why); the end of $log:" >&2
    tail -n 20 "$log" | tr -d '\r' >&2
    status=1
  fi
done
exit $status
