#!/usr/bin/env bash
# Boots a Quartet kernel in QEMU with the serial console on this terminal.
#   run-qemu.sh [--smp N] [--accel auto|kvm|tcg] [--timeout SECONDS] [--memory MiB]
#               [--cmdline 'ARGS'] [--gdb] [--log FILE] kernel.elf
# Exit status: 0 when the kernel reported success through isa-debug-exit (QEMU
# status 1); 1 when it reported a failure; 2 when it never reached the exit device
# (hang, reset, triple fault, or QEMU quit by hand); 124 on timeout.
set -uo pipefail
smp=4 accel=auto timeout=0 memory=256 cmdline="" gdb=0 log="" kernel=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smp) smp=$2; shift 2;;
    --accel) accel=$2; shift 2;;
    --timeout) timeout=$2; shift 2;;
    --memory) memory=$2; shift 2;;
    --cmdline) cmdline=$2; shift 2;;
    --gdb) gdb=1; shift;;
    --log) log=$2; shift 2;;
    -h|--help) sed -n '2,8p' "$0"; exit 0;;
    -*) echo "run-qemu.sh: unknown option $1" >&2; exit 64;;
    *) kernel=$1; shift;;
  esac
done
[ -n "$kernel" ] || { echo "run-qemu.sh: no kernel given" >&2; exit 64; }
[ -f "$kernel" ] || { echo "run-qemu.sh: $kernel not found (run make)" >&2; exit 64; }
command -v qemu-system-x86_64 >/dev/null || { echo "run-qemu.sh: qemu-system-x86_64 missing (scripts/setup.sh installs it)" >&2; exit 64; }

kvm_usable() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
case "$accel" in
  auto) if kvm_usable; then accel=kvm; else accel=tcg; fi;;
  kvm) kvm_usable || { echo "run-qemu.sh: /dev/kvm is not usable; use ACCEL=tcg" >&2; exit 64; };;
  tcg) ;;
  *) echo "run-qemu.sh: accel must be auto, kvm or tcg" >&2; exit 64;;
esac
# Under (nested) KVM, `-cpu host` makes QEMU 7.2 abort setting IA32_ARCH_CAPABILITIES
# ("failed to set MSR 0x10a"); dropping that one feature keeps everything else.
if [ "$accel" = kvm ]; then accel_args=(-accel kvm -cpu host,-arch-capabilities)
else accel_args=(-accel tcg,thread=multi -cpu max); fi

serial=(-serial stdio)
[ -t 0 ] && serial=(-serial mon:stdio)          # Ctrl-A X quits, Ctrl-A C for the monitor
args=(-no-reboot -nodefaults -display none "${serial[@]}"
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -m "$memory" -smp "$smp" "${accel_args[@]}"
      -kernel "$kernel" -append "$cmdline")
if [ "$gdb" = 1 ]; then
  args+=(-s -S)
  echo "QEMU is stopped with a gdb stub on :1234. In another terminal:" >&2
  echo "    gdb -x scripts/gdbinit        (breaks in kmain; 'continue' to boot)" >&2
fi
echo "qemu: -smp $smp, $accel, cmdline '$cmdline'" >&2

if [ "$timeout" != 0 ]; then runner=(timeout --foreground -k 5 "$timeout"); else runner=(); fi
if [ -n "$log" ]; then
  "${runner[@]}" qemu-system-x86_64 "${args[@]}" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
else
  "${runner[@]}" qemu-system-x86_64 "${args[@]}"
  status=$?
fi
case "$status" in
  1) exit 0;;
  124|137) echo "run-qemu.sh: timeout after ${timeout}s" >&2; exit 124;;
  0) echo "run-qemu.sh: the kernel did not report a result (hang, reset, triple fault, or QEMU quit)" >&2; exit 2;;
  *) if [ $((status & 1)) = 1 ]; then
       echo "run-qemu.sh: the kernel reported failure (code $((status >> 1)))" >&2; exit 1
     fi
     echo "run-qemu.sh: QEMU failed with status $status" >&2; exit 2;;
esac
