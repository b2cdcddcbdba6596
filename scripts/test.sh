#!/usr/bin/env bash
# Runs the whole test suite (host XCTest over Kernel/Core and the QEMU integration
# tests) and ends with one plain summary line of test cases:
#   tests: N passed, N failed, N skipped, N unfinished (exit status S)
# "unfinished" counts test cases that started and never ended (an XCTest process
# that crashed or was killed in the middle of one); any of them fails the run.
set -uo pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
started=$(grep -cE "^Test Case '.*' started" "$log" || true)
passed=$(grep -cE "^Test Case '.*' passed" "$log" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$log" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$log" || true)
rm -f "$log"
unfinished=$((started - passed - failed - skipped))
[ "$unfinished" -lt 0 ] && unfinished=0
echo
echo "tests: $passed passed, $failed failed, $skipped skipped, $unfinished unfinished (exit status $status)"
if [ $((passed + failed + skipped + unfinished)) = 0 ]; then echo "test.sh: no test ran" >&2; exit 1; fi
if [ "$unfinished" -gt 0 ] && [ "$status" = 0 ]; then
  echo "test.sh: $unfinished test case(s) started and never finished" >&2; exit 1
fi
exit "$status"
