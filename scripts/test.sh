#!/usr/bin/env bash
# Runs the whole test suite (host XCTest over Kernel/Core and the QEMU integration
# tests) and ends with one plain summary line of test cases:
#   tests: N passed, N failed, N skipped
set -uo pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -cE "^Test Case '.*' passed" "$log" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$log" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$log" || true)
rm -f "$log"
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ $((passed + failed + skipped)) = 0 ]; then echo "test.sh: no test ran" >&2; exit 1; fi
exit "$status"
