#!/usr/bin/env bash
# Runs libFuzzer harnesses one after another and prints one table row each; called by `make fuzz`.
#   fuzz/run-fuzzers.sh BUILD_DIR SECONDS NAME...
# Harness NAME is BUILD_DIR/fuzz_NAME; its seeds fuzz/seeds/NAME/ are copied into the working
# corpus BUILD_DIR/corpus/NAME/ (kept between runs, so the corpus grows), its dictionary is
# fuzz/NAME.dict when there is one, its log BUILD_DIR/logs/NAME.log, and what it finds (crash-*,
# leak-*, timeout-*, oom-*) goes to BUILD_DIR/findings/NAME/. Exits 1 when any harness found
# something, naming the files. FUZZ_RUNS=N in the environment also stops each harness after N
# executions (libFuzzer's -runs), whichever limit comes first.
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD_DIR SECONDS NAME..." >&2
  exit 2
fi
dir=$1 seconds=$2
shift 2
runs=()
if [ -n "${FUZZ_RUNS:-}" ]; then runs=(-runs="$FUZZ_RUNS"); fi

# Sanitizer reports abort with a stack; leaks are checked per input by libFuzzer.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rows=()
found=()
for name in "$@"; do
  bin=$dir/fuzz_$name
  corpus=$dir/corpus/$name
  findings=$dir/findings/$name
  log=$dir/logs/$name.log
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  if [ -d "fuzz/seeds/$name" ]; then cp -f fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null || true; fi
  # Past findings, fixed since, stay in the corpus so that a regression shows at once.
  for old in fuzz/findings/"$name"-*; do [ -f "$old" ] && cp -f "$old" "$corpus"/; done
  dict=()
  if [ -f "fuzz/$name.dict" ]; then dict=(-dict="fuzz/$name.dict"); fi
  printf 'fuzz: %-12s %ss ...\n' "$name" "$seconds"
  # The harness's temporary files, here rather than in /tmp: a crashing process cannot remove them.
  tmp=$(cd "$dir" && pwd)/tmp/$name
  rm -rf "$tmp" && mkdir -p "$tmp"
  start=$(date +%s)
  TMPDIR=$tmp "$bin" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$findings/" "${runs[@]}" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  rm -rf "$tmp"
  elapsed=$(( $(date +%s) - start ))
  [ "$elapsed" -gt 0 ] || elapsed=1

  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  status=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  if [ -z "$execs" ]; then execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status"); fi
  execs=${execs:-0}
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  # libFuzzer's average; over the wall time when it printed none (a run stopped by a finding).
  rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ "${rate:-0}" -eq 0 ]; then rate=$(( execs / elapsed )); fi
  files=$(find "$corpus" -type f | wc -l)
  kib=$(( ($(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') + 1023) / 1024 ))
  new=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -E '/(crash|leak|timeout|oom)-' || true)
  n_new=$(grep -c . <<<"$new" || true)
  if [ "$rc" -ne 0 ] && [ "$n_new" -eq 0 ]; then
    new="(exit status $rc without a test unit; see $log)"
    n_new=1
  fi
  rows+=("$(printf '| %-12s | %10s | %7s | %6s | %7s | %5s files, %5s KiB | %8s |' \
    "$name" "$execs" "$rate" "${cov:-?}" "${ft:-?}" "$files" "$kib" "$n_new")")
  if [ "$n_new" -gt 0 ]; then
    while IFS= read -r f; do [ -n "$f" ] && found+=("$name: $f"); done <<<"$new"
    head=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==fuzz== FINDING|deadly signal' "$log" || true)
    [ -n "$head" ] && found+=("  $head")
  fi
done

printf '\n| harness      | executions |  exec/s |    cov |      ft | corpus                 | findings |\n'
printf '| ------------ | ---------: | ------: | -----: | ------: | ---------------------- | -------: |\n'
printf '%s\n' "${rows[@]}"
if [ ${#found[@]} -gt 0 ]; then
  printf '\nfuzz: FAILED: findings (inputs saved; logs in %s/logs/):\n' "$dir" >&2
  printf '  %s\n' "${found[@]}" >&2
  exit 1
fi
printf '\nfuzz: no findings (%s harnesses, %ss each%s)\n' "$#" "$seconds" "${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
