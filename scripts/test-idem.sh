#!/usr/bin/env bash
# `make test-idem`: runs the whole pipeline of a config three times in fresh copies of the
# tree (runs A and B with one thread count and the default matrix-product kernel, C with
# another thread count and the AVX2 kernel) and compares the SHA-256 of every deterministic
# artifact and of the packed tarball. Prints a table; exits 1 on any difference.
set -euo pipefail
config=${1:?usage: test-idem.sh CONFIG}
: "${MINITX:?absolute path to build/minitx}"
root=$(pwd)
work=build/idem
threads_ab=${IDEM_THREADS:-2}
device=${IDEM_DEVICE:-auto}
threads_c=$([ "$threads_ab" -eq 1 ] && echo 2 || echo 1)

# One corpus fetch for all runs; each copy then finds it verified and fetches nothing.
make --no-print-directory CONFIG="$config" MINITX="$MINITX" corpus >/dev/null
corpus_file=$(make --no-print-directory -s CONFIG="$config" MINITX="$MINITX" print-corpus)

commit=$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
dirty=$([ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo 1 || echo 0)
export MINITX_SOURCE_COMMIT=$commit MINITX_SOURCE_DIRTY=$dirty
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

rm -rf "$work"
mkdir -p "$work"
# One snapshot of the sources for all runs, so an edit made meanwhile cannot split them.
git ls-files -co --exclude-standard -z | tar --null -T - -cf "$work/sources.tar"
# The copies live inside this checkout: keep git from finding it, so each copy is packed and
# described from its own files, as an unpacked release would be.
export GIT_CEILING_DIRECTORIES="$root/$work"
for run in a b c; do
  dir="$work/$run"
  mkdir -p "$dir/corpus/.pins"
  tar -xf "$work/sources.tar" -C "$dir"
  cp "$corpus_file" "$dir/corpus/"
  threads=$([ "$run" = c ] && echo "$threads_c" || echo "$threads_ab")
  isa=$([ "$run" = c ] && echo avx2 || echo "${MINITX_GEMM_ISA:-}")
  echo "test-idem: run $run (THREADS=$threads${isa:+, MINITX_GEMM_ISA=$isa}, DEVICE=$device) in $dir"
  start=$(date +%s)
  if ! (cd "$dir" && MINITX_GEMM_ISA="$isa" make --no-print-directory CONFIG="$config" MINITX="$MINITX" THREADS="$threads" DEVICE="$device" PACK_DETERMINISTIC=1 all \
        >"$root/$work/$run.log" 2>&1); then
    echo "test-idem: run $run failed; the end of $work/$run.log:" >&2
    tail -n 30 "$work/$run.log" >&2
    exit 1
  fi
  echo "test-idem: run $run took $(( $(date +%s) - start )) s"
  if [ "$run" = a ] && ! (cd "$dir" && make --no-print-directory --question CONFIG="$config" MINITX="$MINITX" THREADS="$threads" DEVICE="$device" PACK_DETERMINISTIC=1 all); then
    echo "test-idem: a second make in run a would run recipes: some target is not a real up-to-date file" >&2
    exit 1
  fi
done

mapfile -t artifacts < <(cd "$work/a" && make --no-print-directory -s CONFIG="$config" MINITX="$MINITX" print-artifacts)
hash_of() { [ -f "$1" ] && sha256sum "$1" | cut -c1-16 || echo "(missing)"; }
printf '\n%-44s %-17s %-17s %-17s %s\n' artifact "A (threads=$threads_ab)" "B (threads=$threads_ab)" "C (threads=$threads_c, avx2)" same?
differ=0
for f in "${artifacts[@]}"; do
  a=$(hash_of "$work/a/$f"); b=$(hash_of "$work/b/$f"); c=$(hash_of "$work/c/$f")
  same=yes
  if [ "$a" != "$b" ] || [ "$a" != "$c" ] || [ "$a" = "(missing)" ]; then same=NO; differ=$((differ + 1)); fi
  printf '%-44s %-17s %-17s %-17s %s\n' "$f" "$a" "$b" "$c" "$same"
done
# ---- report: the page shows timings, so the runs' pages differ; the same files must give the
# same page. Run a's page (made by make) is rendered twice more from run a's files; all three
# must be byte-identical.
report=$(cd "$work/a" && make --no-print-directory -s CONFIG="$config" MINITX="$MINITX" print-report)
for again in 1 2; do
  (cd "$work/a" && "$MINITX" report --config "$config" --output "$root/$work/report.again$again.html" >/dev/null) ||
    { echo "test-idem: minitx report failed on run a's files" >&2; exit 1; }
done
a=$(hash_of "$work/a/$report"); b=$(hash_of "$work/report.again1.html"); c=$(hash_of "$work/report.again2.html")
same=yes
if [ "$a" != "$b" ] || [ "$a" != "$c" ] || [ "$a" = "(missing)" ]; then same=NO; differ=$((differ + 1)); fi
printf '%-44s %-17s %-17s %-17s %s\n' "$report (run a, 3 renderings)" "$a" "$b" "$c" "$same"
# ---- end of the report block
echo
if [ "$differ" -ne 0 ]; then
  echo "test-idem: $differ of $((${#artifacts[@]} + 1)) comparisons differ"
  exit 1
fi
kernels=$(grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo "2 matrix kernels" || echo "1 matrix kernel (no AVX-512 here)")
echo "test-idem: all ${#artifacts[@]} artifacts are bit-identical across 3 runs, 2 thread counts and $kernels"
