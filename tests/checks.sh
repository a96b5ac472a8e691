# The check helpers of the end-to-end scripts (sourced): each prints one "ok - …" or
# "not ok - …" line, with the tail of the command's output under a failure. The caller sets
# `log`, the file each command's output goes to.
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; sed 's/^/    /' "$log" | tail -n 20; }
# A sanitizer's report in a command's output fails its check whatever the command's status
# (make test-asan). AddressSanitizer writes its reports to files as well, but GCC's UBSan runtime
# ignores log_path beside ASan's, so its reports are found here, on standard error.
reported() { grep -qE ': runtime error: |ERROR: (Address|Leak)Sanitizer' "$log"; }
# check NAME CMD...: the command must succeed.
check() {
  local name=$1; shift
  if ! "$@" >"$log" 2>&1; then not_ok "$name"; elif reported; then not_ok "$name (a sanitizer report)"; else ok "$name"; fi
}
# check_fails NAME PATTERN CMD...: the command must fail with PATTERN in its output.
check_fails() {
  local name=$1 pattern=$2; shift 2
  if "$@" >"$log" 2>&1; then not_ok "$name (it succeeded)"; elif reported; then not_ok "$name (a sanitizer report)"
  elif grep -qF -- "$pattern" "$log"; then ok "$name"; else not_ok "$name (no '$pattern')"; fi
}
