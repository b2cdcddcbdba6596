#!/usr/bin/env bash
# Annotates the addresses in a serial log's backtraces with function and line:
#   scripts/symbolize.sh [build/kernel.elf] < serial.log
set -euo pipefail
elf=${1:-build/kernel.elf}
SYM=$(dirname "$(readlink -f "$(command -v swiftc)")")/llvm-symbolizer
while IFS= read -r line; do
  if [[ $line =~ ^\ +#([0-9]+)\ +(0x[0-9a-f]+) ]]; then
    addr=${BASH_REMATCH[2]}
    # Frames above #0 hold return addresses, which point after the call:
    # look up addr-1 to name the call site.
    [ "${BASH_REMATCH[1]}" != 0 ] && addr=$(printf '0x%x' $((addr - 1)))
    where=$("$SYM" --obj="$elf" --functions=linkage --demangle -p "$addr" 2>/dev/null | head -1)
    printf '%s  %s\n' "$line" "$where"
  else
    printf '%s\n' "$line"
  fi
done
