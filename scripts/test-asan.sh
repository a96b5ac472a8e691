#!/usr/bin/env bash
# `make test-asan`: scripts/run-tests.sh against the ASan + UBSan build (mk/test.mk says which
# end-to-end scripts and why). Any sanitizer report fails it:
#  - AddressSanitizer and LeakSanitizer write theirs under build/asan/reports/ (log_path), and a
#    file there fails the run even where the test around the process did not notice, say a check
#    that expects a command to fail and took the sanitizer's abort for the error it wanted;
#  - UBSan stops the process (-fno-sanitize-recover) and prints to standard error, where
#    tests/checks.sh looks for it: GCC's UBSan runtime ignores log_path when ASan's is loaded too.
# Two canaries, built with the same sanitizers, first show that both kinds of report are caught.
set -uo pipefail
: "${MINITX:?set by make}" "${TEST_BIN:?set by make}" "${CXX:?set by make}" "${SANITIZE:?set by make}"
reports=$PWD/build/asan/reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

canary=build/asan/canary
echo 'int main(int argc, char**) { int* p = new int[2]; int r = p[argc + 1]; delete[] p; return r; }' |
  $CXX -x c++ $SANITIZE -o "$canary-asan" - || exit 1
echo 'int main(int argc, char**) { int x = 2147483647 - 1 + argc; x += argc; return x & 1; }' |
  $CXX -x c++ -O0 $SANITIZE -o "$canary-ubsan" - || exit 1
# In braces, so that the shell's "Aborted" notes go where the canaries' own output goes.
{ "$canary-asan"; } 2>/dev/null
if [ -z "$(ls -A "$reports")" ]; then
  echo "test-asan: FAILED: a heap overflow in $canary-asan left no report in $reports" >&2
  exit 1
fi
rm -f "$reports"/*
log=$(mktemp)
{ "$canary-ubsan"; } >"$log" 2>&1
status=$?
source tests/checks.sh
if [ "$status" -eq 0 ] || ! reported; then
  echo "test-asan: FAILED: a signed overflow in $canary-ubsan (exit status $status) was not reported as tests/checks.sh expects:" >&2
  cat "$log" >&2
  exit 1
fi
rm -f "$log"

scripts/run-tests.sh
status=$?
if [ -n "$(ls -A "$reports")" ]; then
  echo "test-asan: FAILED: sanitizer reports in $reports:" >&2
  for report in "$reports"/*; do
    echo "== $report" >&2
    head -n 40 "$report" >&2
  done
  exit 1
fi
exit "$status"
