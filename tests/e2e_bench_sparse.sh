#!/usr/bin/env bash
# `make bench-sparse` on the CPU path at tiny sizes (issue 11, item 5): the CSV's header, one row
# per pattern and T, each layout's density against kept-block counts worked out by hand, the
# memory columns against their formulas, no NaN or infinity, and the three plots. Timings are
# never asserted: they only have to be numbers. Prints one "ok - …" / "not ok - …" line per check.
set -uo pipefail
: "${MINITX:?path to build/minitx}"
WORK=build/e2e/bench_sparse
OUT="$WORK/out"
CSV="$OUT/bench_sparse.csv"
log="$WORK/check.log"
rm -rf "$WORK" && mkdir -p "$WORK"
source tests/checks.sh

# --device cpu after make's --device auto (the last one wins): the CPU path even where a GPU is.
ARGS='--device cpu --T 64,128,256 --block 16 --tokens 256 --heads 2 --dim 16 --reps 1'
MK=(make --no-print-directory CONFIG=configs/tiny.toml OUT="$OUT" MINITX="$MINITX" SPARSE_WORK="$WORK/work" SPARSE_ARGS="$ARGS")
check "make bench-sparse runs the CPU path" "${MK[@]}" bench-sparse
check "a second make bench-sparse runs nothing" "${MK[@]}" --question bench-sparse
for png in plot_sparse_time plot_sparse_memory plot_sparse_layouts; do
  check "make bench-sparse drew $png.png" bash -c "[ \"\$(head -c 8 '$OUT/$png.png' | od -An -tx1 | tr -d ' \n')\" = 89504e470d0a1a0a ]"
done

header=pattern,impl,device,block,T,B,H,D,density,fwd_ms,fwdbwd_ms,fwd_tflops,fwdbwd_tflops,saved_bytes,kv_cache_bytes,scores_bytes
check "the header is exactly the documented one" test "$(head -n 1 "$CSV" 2>/dev/null)" = "$header"

# Kept blocks per layout at block 16 (nb = 4, 8, 16 query blocks), counted by hand from the
# definitions in cmd_bench_attention.cpp (W = 2 blocks; stride 8; BigBird 1 global and 2 random
# blocks, always drawn where 2 are free; Longformer's 16 global tokens = block 0; 1 sink block
# and a window of 4). E.g. local keeps the diagonal and the block before it: 1 + 2·(nb − 1);
# strided adds column 7 in rows 9 … 15 at nb = 16: 31 + 7.
kept="causal 10 36 136
local 7 15 31
strided 7 15 38
bigbird_peer 9 23 53
bigbird 10 30 70
longformer 9 21 45
sinks 10 30 70"
check "one row per pattern and T, all of minitx's CPU kernel" awk -F, -v kept="$kept" '
  BEGIN { n = split(kept, lines, "\n"); for (i = 1; i <= n; ++i) { split(lines[i], f, " "); want[f[1]] = 1 } }
  NR > 1 { rows++; key = $1 " " $5; if (seen[key]++) { print "twice: " key; bad = 1 }
           if (!($1 in want)) { print "unknown pattern " $1; bad = 1 }
           if ($2 != "minitx-cpu" || $3 != "cpu") { print "line " NR ": impl " $2 ", device " $3; bad = 1 } }
  END { if (rows != 21) { print rows " rows, expected 7 patterns x 3 lengths = 21"; bad = 1 } exit bad }' "$CSV"

# The formulas the CSV documents, per layer (CPU kernel: fp32, the T×T probabilities saved):
#   saved = B·H·T²·4, kv_cache = 2·B·positions·H·D·4 (positions: local min(T, 2·block), sinks
#   min(T, 5·block), else T), scores = kept·block²·4·B·H, density = kept / (nb(nb+1)/2).
check "densities and memory columns equal their formulas for the hand-counted layouts" awk -F, -v kept="$kept" '
  BEGIN { n = split(kept, lines, "\n")
          for (i = 1; i <= n; ++i) { split(lines[i], f, " "); k[f[1], 64] = f[2]; k[f[1], 128] = f[3]; k[f[1], 256] = f[4] } }
  function check(what, got, want) { if (got != want) { printf "line %d (%s, T %d): %s %s, expected %s\n", NR, $1, $5, what, got, want; bad = 1 } }
  NR > 1 { p = $1; block = $4; T = $5; B = $6; H = $7; D = $8; nb = T / block
           check("block", block, 16); check("B", B, 256 / T); check("H", H, 2); check("D", D, 16)
           check("density", $9, sprintf("%.4f", k[p, T] / (nb * (nb + 1) / 2)))
           check("saved_bytes", $14, B * H * T * T * 4)
           pos = p == "local" ? (T < 2 * block ? T : 2 * block) : p == "sinks" ? (T < 5 * block ? T : 5 * block) : T
           check("kv_cache_bytes", $15, 2 * B * pos * H * D * 4)
           check("scores_bytes", $16, k[p, T] * block * block * 4 * B * H) }
  END { exit bad }' "$CSV"
check "every time and rate is a finite number (no NaN, no inf)" awk -F, '
  NR > 1 { for (i = 10; i <= 13; ++i) if ($i !~ /^[0-9]+\.[0-9]+$/) { printf "line %d column %d: %s\n", NR, i, $i; bad = 1 } }
  END { exit bad }' "$CSV"

check_fails "an unknown pattern is an error naming it" "unknown pattern 'dense'" \
  "$MINITX" bench attention --device cpu --patterns causal,dense --T 64 --block 16 --output "$WORK/none.csv"
check "a refused run writes no CSV" test ! -e "$WORK/none.csv"

# The masks the peer reads: one per pattern and T, each listing its kept blocks, and the shapes.
check "--export-masks wrote one layout per pattern and T with the hand-counted kept blocks" bash -c '
  while read -r p k64 k128 k256; do
    for Tk in "64 $k64" "128 $k128" "256 $k256"; do
      set -- $Tk
      f='"$WORK"'/work/masks/${p}_b16_T$1.txt
      got=$(tail -n +4 "$f" | wc -w)
      [ "$(head -n 1 "$f")" = "minitx-block-layout 2" ] && [ "$got" = "$2" ] || { echo "$f: $got blocks, expected $2"; exit 1; }
    done
  done <<<"'"$kept"'"
  [ "$(ls '"$WORK"'/work/masks/*_b16_T*.txt | wc -l)" = 21 ]'
check "--export-masks wrote the run's shapes for the peer" bash -c \
  "printf 'minitx-bench-shape 1\ntokens 256\nheads 2\ndim 16\nreps 1\n' | cmp - '$WORK/work/masks/shape.txt'"
