#!/usr/bin/env bash
# make bench (docs/benchmarks.md): boots run=bench with 4 CPUs under TCG and,
# when /dev/kvm is usable, under KVM; then the scale runs (bench-scale at 1 to 64
# CPUs under TCG). Prints one table per run with medians, p99, samples and the
# ratio of each measurement to its floor, appends them to bench/results.md and
# draws bench/latest.svg. Never fails on a timing: it exits 1 only if a boot did
# not complete.
#   scripts/bench.sh [--accel tcg|kvm|auto] [--smp N] [--ms N] [--no-scale] [--no-append] [--out DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
kernel=build/kernel.elf
accel=auto smp=4 ms=400 scale=1 append=1 out=build/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --accel) accel=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --ms) ms=$2; shift 2 ;;
    --no-scale) scale=0; shift ;;
    --no-append) append=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
kvm_usable() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
case "$accel" in
  auto) accels=(tcg); if kvm_usable; then accels+=(kvm); else echo "bench.sh: /dev/kvm not usable: TCG only"; fi ;;
  tcg|kvm) accels=("$accel") ;;
  *) echo "bench.sh: --accel must be tcg, kvm or auto" >&2; exit 2 ;;
esac
mkdir -p "$out" bench
source scripts/lib/hostinfo.sh

swift build -q --product benchreport >&2 || { echo "bench.sh: could not build benchreport" >&2; exit 1; }
report="$(swift build --show-bin-path)/benchreport"

status=0
logs=()
for a in "${accels[@]}"; do
  log="$out/quartet-$a.log"
  echo "== Quartet run=bench, -smp $smp, $a"
  bash scripts/run-qemu.sh --accel "$a" --smp "$smp" --timeout 600 --cmdline "run=bench bench.ms=$ms" "$kernel" \
    < /dev/null > "$log" 2>&1
  rc=$?
  if [ $rc != 0 ]; then
    echo "bench.sh: the $a run did not complete (status $rc); its log: $log"
    grep -aE '^(FAIL|panic)' "$log" | head -20
    status=1
    continue
  fi
  "$report" table --accel "$a" --host-cpu "$host_cpu" "$log"
  [ $append = 1 ] && "$report" markdown --accel "$a" --host-cpu "$host_cpu" --append bench/results.md "$log" > /dev/null
  logs+=("$log")
done
if [ ${#logs[@]} -gt 0 ]; then
  "$report" svg --out bench/latest.svg "${logs[@]}" && echo "bench.sh: ratios drawn in bench/latest.svg"
fi

if [ $scale = 1 ]; then
  scale_logs=()
  for n in 1 2 4 8 16 32 64; do
    log="$out/scale-$n.log"
    echo "== Quartet run=bench-scale, -smp $n, tcg"
    bash scripts/run-qemu.sh --accel tcg --smp "$n" --timeout 600 --cmdline "run=bench-scale bench.ms=200" "$kernel" \
      < /dev/null > "$log" 2>&1
    rc=$?
    if [ $rc != 0 ]; then
      echo "bench.sh: the scale run at $n CPUs did not complete (status $rc); its log: $log"
      status=1
      continue
    fi
    scale_logs+=("$log")
  done
  if [ ${#scale_logs[@]} -gt 0 ]; then
    "$report" scale --accel tcg --host-cpu "$host_cpu" "${scale_logs[@]}"
    [ $append = 1 ] && "$report" scale --accel tcg --host-cpu "$host_cpu" --markdown --append bench/results.md "${scale_logs[@]}" > /dev/null
  fi
fi
[ $append = 1 ] && echo "bench.sh: tables appended to bench/results.md"
exit $status
