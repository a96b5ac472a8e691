#!/usr/bin/env bash
# `make test`: the unit tests, then the end-to-end checks of tests/e2e.sh; one summary line at the end.
# On a CPU with AVX-512 the unit tests run twice: with the kernels chosen for this CPU, and with
# MINITX_GEMM_ISA=avx2, so the AVX2 kernels (all a CPU without AVX-512 runs) pass everything too
# (AVX2_PASS=0: once). E2E_SCRIPTS names the end-to-end scripts to run (default: all of them).
set -uo pipefail
: "${MINITX:?set by make}" "${TEST_BIN:?set by make}"

unit_passed=0 unit_failed=0 unit_skipped=0
run_unit() {  # run_unit LABEL [ENV=VALUE...]
  local label=$1; shift
  echo "== unit tests ($TEST_BIN, $label)"
  local log summary passed failed skipped rc
  log=$(mktemp)
  env "$@" "$TEST_BIN" --no-intro 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
  rm -f "$log"
  passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
  failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
  skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$summary")
  if [[ ! "$passed" =~ ^[0-9]+$ ]]; then passed=0; failed=1; skipped=0; fi
  [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
  unit_passed=$((unit_passed + passed)) unit_failed=$((unit_failed + failed)) unit_skipped=$((unit_skipped + skipped))
  echo
}

run_unit "kernels for this CPU"
if [ "${AVX2_PASS:-1}" = 1 ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  run_unit "AVX2 kernels" MINITX_GEMM_ISA=avx2
fi

# The end-to-end scripts, in this order (make test-asan runs fewer; mk/test.mk says which):
#   e2e               every stage of the pipeline on configs/tiny.toml, and the CLI's errors
#   e2e_report        the report and its browser test, on the results e2e.sh left in build/e2e
#   e2e_interrupt     training killed at every named point, with and without Make: never taken for finished
#   e2e_bench_sparse  make bench-sparse on the CPU at tiny sizes: the CSV's columns against their formulas, the plots
echo "== end-to-end (configs/tiny.toml)"
e2e_log=$(mktemp)
for script in ${E2E_SCRIPTS:-e2e e2e_report e2e_interrupt e2e_bench_sparse}; do
  # A misspelt name must not pass by printing nothing.
  if [ ! -x "tests/$script.sh" ]; then echo "not ok - tests/$script.sh: no such script" | tee -a "$e2e_log"; continue; fi
  MINITX="$MINITX" "tests/$script.sh" 2>&1 | tee -a "$e2e_log"
done
e2e_skipped=$(grep -c '^ok .*# SKIP' "$e2e_log")
e2e_passed=$(( $(grep -c '^ok ' "$e2e_log") - e2e_skipped ))
e2e_failed=$(grep -c '^not ok ' "$e2e_log")
rm -f "$e2e_log"

passed=$((unit_passed + e2e_passed))
failed=$((unit_failed + e2e_failed))
echo
echo "unit: $unit_passed passed, $unit_failed failed, $unit_skipped skipped; end-to-end: $e2e_passed passed, $e2e_failed failed, $e2e_skipped skipped"
echo "tests: $passed passed, $failed failed, $((unit_skipped + e2e_skipped)) skipped"
[ "$failed" -eq 0 ]
