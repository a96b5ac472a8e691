#!/usr/bin/env bash
# End-to-end checks of `make report` (issue 13) on the tiny config's results that tests/e2e.sh
# left in build/e2e/out, then the page in a real browser (tests/report_browser.js, headless
# Chromium). Prints one "ok - …", "not ok - …" or "ok - … # SKIP …" line per check.
set -uo pipefail
: "${MINITX:?path to build/minitx}"
E2E=build/e2e
OUT="$E2E/out"
REPORT="$OUT/report.html"
MK=(make --no-print-directory CONFIG=configs/tiny.toml OUT="$OUT" DIST_DIR="$E2E/dist" MINITX="$MINITX")
TGZ="$E2E/dist/minitx-$(cat VERSION)-tiny.tar.gz"
log="$E2E/report.log"
mkdir -p "$E2E"

source tests/checks.sh

check "make all wrote the report" test -s "$REPORT"
check "make report has nothing left to do after make all" "${MK[@]}" --question report
check "the release tarball's manifest lists report.html" bash -c \
  "tar -xzOf '$TGZ' --wildcards '*/MANIFEST.sha256' | grep -q ' $REPORT\$'"
check "the same files give the same report, byte for byte" bash -c \
  "'$MINITX' report --config configs/tiny.toml --out '$OUT' --output '$E2E/report.again.html' && cmp '$REPORT' '$E2E/report.again.html'"
check "the report holds no path of this machine" bash -c "! grep -qF -e '$(pwd)' -e '$OUT' '$REPORT'"

# A malformed CSV: a named error and no page, not even a partial one.
bad="$E2E/report-bad"
rm -rf "$bad" && mkdir -p "$bad" && cp "$OUT"/*.csv "$OUT"/*.json "$bad"/
sed -i '3s/^\([a-z]*,[0-9]*\),[^,]*,/\1,fast,/' "$bad/bench.csv"
check_fails "a malformed bench.csv is an error naming its file, line and column" "$bad/bench.csv:3: column 3 (cached_ms_per_token): expected a number, got 'fast'" \
  "$MINITX" report --config configs/tiny.toml --out "$bad" --output "$bad/report.html"
check "a failed report leaves no file behind" bash -c "[ -z \"\$(ls -A '$bad' | grep -v '\.csv\$\|\.json\$')\" ]"
check "with only the config and eval.json, the report has just those sections" bash -c "
  mkdir -p '$bad/min' && cp '$OUT/eval.json' '$bad/min/' &&
  '$MINITX' report --config configs/tiny.toml --out '$bad/min' --output '$bad/min/report.html' | grep -q 'sections: experiment, evaluation)'"

# ---- the page in a browser -------------------------------------------------------------------
# The sections the page must show: one per group of files present in OUT.
sections=(experiment)
[ -f "$OUT/tokenizer.json" ] && sections+=(tokenizer)
[ -f "$OUT/train_log.csv" ] && sections+=(training)
[ -f "$OUT/eval.json" ] && sections+=(evaluation)
[ -f "$OUT/bench.csv" ] && sections+=(kv-cache)
{ [ -f "$OUT/bench_quant.csv" ] || [ -f "$OUT/bench_quant_times.csv" ]; } && sections+=(quantization)
[ -f "$OUT/bench_sparse.csv" ] && sections+=(sparse)

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  # Missing only counts as skipped where Debian has no chromium to install (install-deps said so).
  if [ -z "$(apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
    echo "ok - browser: the report in headless Chromium # SKIP no chromium package for this system"
  else
    echo "not ok - browser: chromium is not installed; scripts/install-deps.sh installs it"
  fi
elif ! command -v node >/dev/null; then
  echo "not ok - browser: node is not installed; scripts/install-deps.sh installs it"
else
  node tests/report_browser.js "$chromium" "$REPORT" "$E2E/report.png" "${sections[@]}"
fi
