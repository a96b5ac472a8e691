#!/usr/bin/env bash
# Issue 12's table on a GPU: `minitx bench decode --device cuda` at the Pythia-70M, GPT-2 124M and
# GPT-2 350M shapes (vocabulary 50,304, as ../shared/peers/torch_decode_peer.py builds them), each
# with bf16 matrices and quantized to q8_0 and q4_0: the first token after a 1,024-token prompt,
# then 512 greedy tokens after a 16-token prompt, with each kernel's time per token. Writes
# OUTPUT (the runs' CSVs, the shape in front); the tables go to standard output.
#
# Usage: scripts/gpu-decode-bench.sh MINITX OUTPUT.csv [REPS]
set -euo pipefail
minitx=$1 output=$2 reps=${3:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for shape in pythia-70m gpt2-124m gpt2-350m; do
  for quant in f32 q8_0 q4_0; do
    csv=$work/${shape}_${quant}.csv
    "$minitx" bench decode --config "configs/$shape.toml" --device cuda --precision bf16 --quant "$quant" \
      --vocab 50304 --prompt 1024 --depth 16 --gen 512 --reps "$reps" --profile --output "$csv"
    if [ ! -e "$work/all.csv" ]; then sed -n '1s/^/shape,/p' "$csv" >"$work/all.csv"; fi
    sed -n "2,\$s/^/$shape,/p" "$csv" >>"$work/all.csv"
  done
done
mv "$work/all.csv" "$output"
echo "gpu-decode-bench: $output"
