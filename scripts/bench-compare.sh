#!/usr/bin/env bash
# make bench-compare (docs/benchmarks.md): per accelerator (TCG, and KVM when
# /dev/kvm is usable), boots Quartet's run=bench and then Debian's kernel with
# bench/linux/qbench.c on the same QEMU, -smp and accelerator, back to back, and
# prints one table: Quartet, Linux, ratio per shared measurement. The tables are
# appended to bench/results.md. Never fails on a timing.
#   scripts/bench-compare.sh [--accel tcg|kvm|auto] [--smp N] [--no-append]
set -uo pipefail
cd "$(dirname "$0")/.."
accel=auto smp=4 append=1 out=build/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --accel) accel=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --no-append) append=0; shift ;;
    *) echo "bench-compare.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
case "$accel" in
  auto) accels=(tcg); if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accels+=(kvm); else echo "bench-compare.sh: /dev/kvm not usable: TCG only"; fi ;;
  tcg|kvm) accels=("$accel") ;;
  *) echo "bench-compare.sh: --accel must be tcg, kvm or auto" >&2; exit 2 ;;
esac
swift build -q --product benchreport >&2 || { echo "bench-compare.sh: could not build benchreport" >&2; exit 1; }
report="$(swift build --show-bin-path)/benchreport"
source scripts/lib/hostinfo.sh
status=0
for a in "${accels[@]}"; do
  bash scripts/bench.sh --accel "$a" --smp "$smp" --no-scale --no-append --out "$out" || { status=1; continue; }
  bash scripts/bench-linux.sh --accel "$a" --smp "$smp" --out "$out" || { status=1; continue; }
  echo "== Quartet and Linux, -smp $smp, $a"
  "$report" compare --accel "$a" --host-cpu "$host_cpu" --quartet "$out/quartet-$a.log" --linux "$out/linux-$a.log"
  if [ $append = 1 ]; then
    "$report" compare --markdown --accel "$a" --host-cpu "$host_cpu" --append bench/results.md \
      --quartet "$out/quartet-$a.log" --linux "$out/linux-$a.log" > /dev/null
  fi
done
[ $append = 1 ] && echo "bench-compare.sh: tables appended to bench/results.md"
exit $status
