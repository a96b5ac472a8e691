#!/usr/bin/env bash
# The block-sparse attention study (issue 11), the training half: every model named is trained
# dense and with each attention pattern, from the same initial weights on the same batches for
# the same number of steps; then `bench train` times its steps (and, on a GPU, every op of one).
#
#   scripts/sparse-study.sh BIN DEVICE STEPS DIR MODEL...
#
# MODEL is a config under configs/ whose token files are in out/MODEL/ (make CONFIG=... tokenizer).
# Each run goes to DIR/MODEL-PATTERN/: config.toml (the model's config with STEPS steps and the
# pattern's [model.attention] table), train_log.csv, train_times.csv, bench_train.csv (and on a
# GPU profile.csv), and attention.csv: layer STUDY_LAYER's (1) attention over a real text
# (minitx attention-map). scripts/sparse-study-report.sh gathers them.
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: $0 BIN DEVICE STEPS DIR MODEL..." >&2; exit 2; }
bin=$1 device=$2 steps=$3 dir=$4
shift 4
patterns=${STUDY_PATTERNS:-dense local strided bigbird longformer sinks}
# The heatmaps' text: the opening of the corpus's first address (Washington, 1790), about 190
# tokens, so that it spans three blocks of 64 and the patterns differ on it.
text=${STUDY_TEXT:-"Fellow-Citizens of the Senate and House of Representatives: In meeting you again I feel much \
satisfaction in being able to repeat my congratulations on the favorable prospects which continue to distinguish our \
public affairs. The abundant fruits of another year have blessed our country with plenty and with the means of a \
flourishing commerce. The progress of public credit is witnessed by a considerable rise of American stock abroad as \
well as at home, and the revenues allotted for this and other national purposes have been productive beyond the \
calculations by which they were regulated. This latter circumstance is the more pleasing, as it is not only a proof of \
the fertility of our resources, but as it assures us of a further increase of the national respectability and credit, \
and, let me add, as it bears an honorable testimony to the patriotism and integrity of the mercantile and marine part \
of our citizens. The punctuality of the former in discharging their engagements has been exemplary."}

# At T = 1,024 and blocks of 64 (16 per row) every pattern keeps a band of 2 blocks (128 tokens)
# and adds its own long-range blocks: density 0.23 (local) to 0.43 (BigBird) of the causal blocks.
attention_table() {
  case $1 in
    dense) ;;
    local) printf '\n[model.attention]\npattern = "local"\nblock = 64\nwindow = 2\n' ;;
    strided) printf '\n[model.attention]\npattern = "strided"\nblock = 64\nwindow = 2\nstride = 8\n' ;;
    bigbird) printf '\n[model.attention]\npattern = "bigbird"\nblock = 64\nwindow = 2\nglobal_blocks = 1\nrandom_blocks = 1\n' ;;
    longformer) printf '\n[model.attention]\npattern = "longformer"\nblock = 64\nwindow = 2\nglobal_tokens = 16\n' ;;
    sinks) printf '\n[model.attention]\npattern = "sinks"\nblock = 64\nwindow = 2\nsinks = 1\n' ;;
    *) echo "sparse-study: unknown pattern '$1' (dense local strided bigbird longformer sinks)" >&2; exit 2 ;;
  esac
}

if [ "$device" = auto ] && ! command -v nvidia-smi > /dev/null; then
  echo "sparse-study: no GPU here, and these models take hours on the CPU; STUDY_DEVICE=cpu runs them anyway" >&2
  exit 1
fi

for model in "$@"; do
  base=configs/$model.toml
  [ -f "$base" ] || { echo "sparse-study: $base does not exist" >&2; exit 2; }
  for f in train.bin val.bin tokenizer.json; do
    [ -f "out/$model/$f" ] || { echo "sparse-study: out/$model/$f is missing: make CONFIG=$base tokenizer" >&2; exit 2; }
  done
  grep -q '^steps = [0-9]*$' "$base" || { echo "sparse-study: $base has no 'steps = N' line" >&2; exit 2; }
  for pattern in $patterns; do
    run=$dir/$model-$pattern
    rm -rf "$run" && mkdir -p "$run"
    # Validation every tenth of the run, so the curves have points to compare.
    { sed -E -e "s/^steps = [0-9]+$/steps = $steps/" -e "s/^eval_every = [0-9]+$/eval_every = $(( (steps + 9) / 10 ))/" "$base"
      attention_table "$pattern"; } > "$run/config.toml"
    for f in train.bin val.bin tokenizer.json; do ln -s "$(cd "out/$model" && pwd)/$f" "$run/$f"; done
    echo "sparse-study: $model, $pattern: $steps steps on $device"
    "$bin" train --config "$run/config.toml" --out "$run" --device "$device" --quiet
    used=$(sed -n 's/.*"device": *"\([a-z]*\)".*/\1/p' "$run/train_device.json")
    profile=()
    if [ "$used" = cuda ]; then profile=(--profile "$run/profile.csv"); fi
    "$bin" bench train --config "$run/config.toml" --device "$used" --steps "${STUDY_BENCH_STEPS:-10}" \
      --output "$run/bench_train.csv" "${profile[@]}" > "$run/bench_train.log"
    "$bin" attention-map --model "$run/model.ckpt" --tokenizer "$run/tokenizer.json" --text "$text" \
      --layer "${STUDY_LAYER:-1}" --output "$run/attention.csv" > /dev/null
    rm -f "$run"/{train.bin,val.bin,tokenizer.json} "$run/model.ckpt"  # the weights are not a result here
  done
done
