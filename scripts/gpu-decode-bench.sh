#!/usr/bin/env bash
# Issue 12's table on a GPU: `minitx bench decode --device cuda` at the Pythia-70M, GPT-2 124M and
# GPT-2 350M shapes (vocabulary 50,304, as ../shared/peers/torch_decode_peer.py builds them), each
# with bf16 matrices and quantized to q8_0 and q4_0: the first token after a 1,024-token prompt,
# then 512 greedy tokens after a 16-token prompt, with each kernel's time per token. Then the
# batch sweep: GPT-2 124M in bf16 decoding 1, 2, 4, 8 and 16 sequences at once (the CSV's batch
# column; tokens/s of all sequences together). Writes OUTPUT (the runs' CSVs, the shape in front);
# the tables go to standard output.
#
# Usage: scripts/gpu-decode-bench.sh MINITX OUTPUT.csv [REPS]
set -euo pipefail
minitx=$1 output=$2 reps=${3:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
append() {  # CSV SHAPE
  if [ ! -e "$work/all.csv" ]; then sed -n '1s/^/shape,/p' "$1" >"$work/all.csv"; fi
  sed -n "2,\$s/^/$2,/p" "$1" >>"$work/all.csv"
}
for shape in pythia-70m gpt2-124m gpt2-350m; do
  for quant in f32 q8_0 q4_0; do
    csv=$work/${shape}_${quant}.csv
    "$minitx" bench decode --config "configs/$shape.toml" --device cuda --precision bf16 --quant "$quant" \
      --vocab 50304 --prompt 1024 --depth 16 --gen 512 --reps "$reps" --profile --output "$csv"
    append "$csv" "$shape"
  done
done
for batch in 2 4 8 16; do  # batch 1 is the gpt2-124m f32 run above
  csv=$work/gpt2-124m_batch$batch.csv
  "$minitx" bench decode --config configs/gpt2-124m.toml --device cuda --precision bf16 --quant f32 \
    --vocab 50304 --prompt 1024 --depth 16 --gen 512 --reps "$reps" --batch "$batch" --output "$csv"
  append "$csv" gpt2-124m
done
mv "$work/all.csv" "$output"
echo "gpu-decode-bench: $output"
