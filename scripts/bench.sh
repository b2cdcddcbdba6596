#!/usr/bin/env bash
# make bench: boots the kernel with run=bench under TCG and, when /dev/kvm is
# usable, under KVM, and prints the figures (cycles, ns, ratios to a raw IPI
# round trip measured in the same boot). Never fails on a timing.
set -uo pipefail
cd "$(dirname "$0")/.."
kernel=build/kernel.elf
accels=(tcg)
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accels+=(kvm); fi
status=0
for accel in "${accels[@]}"; do
  echo "== run=bench, -smp 4, $accel"
  out=$(bash scripts/run-qemu.sh --accel "$accel" --smp 4 --timeout 300 --cmdline "run=bench" "$kernel" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(PASS|FAIL|SKIP): bench|^clock:|^smp: [0-9]+ of|^SUMMARY'
  [ $rc = 0 ] || { echo "bench.sh: the $accel run did not complete (status $rc)"; status=1; }
done
exit $status
