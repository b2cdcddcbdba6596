#!/usr/bin/env bash
# Adds source file and line to the frames of a serial log's backtraces:
#   scripts/symbolize.sh [build/kernel.elf] < serial.log
# The kernel names its frames itself ("#1  0x...  static Boot.main() + 0x17a",
# Kernel/Kern/Debug/KernelSymbols.swift); this adds " at FILE:LINE:COLUMN" from the
# ELF's debug info. A frame the kernel left bare (no table, or an address no
# symbol covers) gets the mangled function name as well.
set -euo pipefail
elf=${1:-build/kernel.elf}
SYM=$(dirname "$(readlink -f "$(command -v swiftc)")")/llvm-symbolizer
while IFS= read -r line; do
  if [[ $line =~ ^\ +#([0-9]+)\ +(0x[0-9a-f]+)(.*)$ ]]; then
    frame=${BASH_REMATCH[1]} addr=${BASH_REMATCH[2]} named=${BASH_REMATCH[3]}
    # Frames above #0 hold return addresses, which point after the call:
    # look up addr-1 to name the call site.
    [ "$frame" != 0 ] && addr=$(printf '0x%x' $((addr - 1)))
    if [ -n "$named" ]; then
      where=$("$SYM" --obj="$elf" --functions=none -p "$addr" 2>/dev/null | head -1)
      printf '%s  at %s\n' "$line" "$where"
    else
      where=$("$SYM" --obj="$elf" --functions=linkage --demangle -p "$addr" 2>/dev/null | head -1)
      printf '%s  %s\n' "$line" "$where"
    fi
  else
    printf '%s\n' "$line"
  fi
done
