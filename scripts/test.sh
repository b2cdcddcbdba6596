#!/usr/bin/env bash
# Runs the whole test suite (host XCTest over Kernel/Core and the QEMU integration
# tests) and ends with one plain summary line: "N passed, N failed".
set -uo pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
total=$(grep -E "^\s*Executed [0-9]+ tests" "$log" | tail -1 | sed -E 's/.*Executed ([0-9]+) tests, with ([0-9]+) failures.*/\1 \2/')
read -r executed failed <<<"${total:-0 0}"
skipped=$(grep -cE "^Test Case .* skipped" "$log" || true)
rm -f "$log"
echo
echo "tests: $((executed - failed - skipped)) passed, $failed failed, $skipped skipped"
if [ "$executed" = 0 ]; then echo "test.sh: no test ran" >&2; exit 1; fi
exit "$status"
