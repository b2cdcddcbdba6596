#!/usr/bin/env bash
# Idempotent setup: installs the outside tools Quartet needs (QEMU, NASM,
# python3 for Tests/CoreTests/Fixtures/acpi/capture.py, and gdb for GDBTests and
# make debug) with apt-get when they are missing. Swift comes with the machine.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v gdb >/dev/null 2>&1 || need+=(gdb)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "setup: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
command -v qemu-system-x86_64 >/dev/null && command -v nasm >/dev/null && command -v python3 >/dev/null \
  && command -v gdb >/dev/null || {
  echo "setup: qemu-system-x86_64, nasm, python3 or gdb still missing after apt-get" >&2; exit 1; }
