#!/usr/bin/env bash
# Issue 11's decode goal on a GPU: `minitx bench decode --device cuda` at the GPT-2 124M shape with
# a context of 8,192 (configs/gpt2-124m.toml, vocabulary 50,304), bf16, dense against the local,
# sinks, strided and BigBird patterns (block 64, window 4), 128 greedy tokens decoded after a
# prompt of 1k, 2k, 4k and 8k tokens (`--depth`). Prints tokens/s and the KV cache's bytes per
# pattern and depth, and writes OUTPUT: the runs' CSVs in one, the pattern name in front.
#
# Usage: scripts/gpu-decode-sparse-bench.sh MINITX OUTPUT.csv [REPS]
set -euo pipefail
minitx=$1 output=$2 reps=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pattern in dense local sinks strided bigbird; do
  config=$work/$pattern.toml
  sed 's/^context = 1024$/context = 8192/' configs/gpt2-124m.toml >"$config"
  grep -q '^context = 8192$' "$config" || { echo "gpu-decode-sparse-bench: no 'context = 1024' line in configs/gpt2-124m.toml" >&2; exit 1; }
  if [ "$pattern" != dense ]; then
    printf '\n[model.attention]\npattern = "%s"\nblock = 64\nwindow = 4\n' "$pattern" >>"$config"
  fi
  # 8,000 rather than 8,192: the 128 decoded tokens must fit the context too.
  for depth in 1024 2048 4096 8000; do
    csv=$work/${pattern}_$depth.csv
    "$minitx" bench decode --config "$config" --device cuda --precision bf16 --vocab 50304 --prompt 512 \
      --depth "$depth" --gen 128 --reps "$reps" --output "$csv"
    if [ ! -e "$work/all.csv" ]; then sed -n '1s/^/pattern,/p' "$csv" >"$work/all.csv"; fi
    sed -n "2,\$s/^/$pattern,/p" "$csv" >>"$work/all.csv"
  done
done
mv "$work/all.csv" "$output"
# The table: tokens/s of the graph-replayed steps (test tg) and the KV cache, per pattern and depth.
awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
  $col["test"] == "tg" { printf "%-8s depth %5d: %8.1f tokens/s, KV cache %6.1f MB\n", $col["pattern"], $col["depth"],
    $col["tokens_per_s"], $col["kv_cache_bytes"] / 1e6 }' "$output"
echo "gpu-decode-sparse-bench: $output"
