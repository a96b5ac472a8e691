#!/usr/bin/env bash
# `make test`: the unit tests, then the end-to-end checks of tests/e2e.sh; one summary line at the end.
set -uo pipefail
: "${MINITX:?set by make}" "${TEST_BIN:?set by make}"

echo "== unit tests ($TEST_BIN)"
unit_log=$(mktemp)
"$TEST_BIN" --no-intro 2>&1 | tee "$unit_log"
unit_rc=${PIPESTATUS[0]}
summary=$(grep -E '^\[doctest\] test cases:' "$unit_log" | tail -n 1)
rm -f "$unit_log"
unit_passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
unit_failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
unit_skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$summary")
if [[ ! "$unit_passed" =~ ^[0-9]+$ ]]; then unit_passed=0; unit_failed=1; unit_skipped=0; fi
[ "$unit_rc" -ne 0 ] && [ "$unit_failed" -eq 0 ] && unit_failed=1

echo
echo "== end-to-end (configs/tiny.toml)"
e2e_log=$(mktemp)
MINITX="$MINITX" tests/e2e.sh 2>&1 | tee "$e2e_log"
e2e_passed=$(grep -c '^ok ' "$e2e_log")
e2e_failed=$(grep -c '^not ok ' "$e2e_log")
rm -f "$e2e_log"

passed=$((unit_passed + e2e_passed))
failed=$((unit_failed + e2e_failed))
echo
echo "unit: $unit_passed passed, $unit_failed failed, $unit_skipped skipped; end-to-end: $e2e_passed passed, $e2e_failed failed"
echo "tests: $passed passed, $failed failed, $unit_skipped skipped"
[ "$failed" -eq 0 ]
