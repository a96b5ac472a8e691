#!/usr/bin/env bash
# The block-sparse attention study (issue 11), the summary: the runs of scripts/sparse-study.sh
# in DIR gathered into one CSV, each pattern beside the dense run of the same model.
#
#   scripts/sparse-study-report.sh DIR OUTPUT.csv
#
# Columns: model, pattern, density (kept / causal blocks at the training length), steps, the final
# validation loss and its difference from dense, training tokens/s (bench train: the median step
# of the same model and batch) and its speedup over dense, and from the GPU profile (empty on the
# CPU) the attention forward and backward ms per step (and their sum's speedup) and the forward
# pass's ms (every op that is not a backward, the loss or the optimizer: what inference of the
# same batch costs), each with its speedup over dense.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR OUTPUT.csv" >&2; exit 2; }
dir=$1 output=$2

# name=value lines for one run, read from its files.
measure() {
  local run=$1
  [ -f "$run/train_log.csv" ] || { echo "sparse-study-report: $run/train_log.csv is missing" >&2; exit 1; }
  [ -f "$run/bench_train.csv" ] || { echo "sparse-study-report: $run/bench_train.csv is missing" >&2; exit 1; }
  # The last evaluated row: step and validation loss.
  awk -F, 'NR > 1 && $4 != "" { step = $1; loss = $4 } END {
    if (loss == "") { print "no validation loss" > "/dev/stderr"; exit 1 }
    printf "steps=%s\nval_loss=%s\n", step, loss }' "$run/train_log.csv"
  awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
    { printf "tokens_per_s=%s\ndensity=%s\n", $col["tokens_per_s"], $col["density"] }' "$run/bench_train.csv"
  if [ -f "$run/profile.csv" ]; then
    awk -F, 'NR > 1 {
      if ($2 == "attention") att = $3
      else if ($2 == "attention backward") attb = $3
      if ($2 !~ /backward/ && $2 !~ /^(crossentropy|adamw|clip|gradient norm|memset.*)$/) fwd += $3 }
      END { printf "attention_ms=%.4f\nattention_backward_ms=%.4f\nforward_ms=%.4f\n", att, attb, fwd }' "$run/profile.csv"
  fi
}

{
  echo "model,pattern,density,steps,val_loss,val_loss_delta,train_tokens_per_s,train_speedup,attention_ms,attention_speedup,attention_backward_ms,attention_backward_speedup,attention_fwdbwd_speedup,forward_ms,forward_speedup"
  for dense in "$dir"/*-dense; do
    [ -d "$dense" ] || continue
    model=$(basename "$dense" -dense)
    declare -A base=()
    measure "$dense" > "$output.run"
    while IFS='=' read -r k v; do base[$k]=$v; done < "$output.run"
    runs=("$dense")  # first, and once
    for run in "$dir/$model"-*; do [ "$run" = "$dense" ] || runs+=("$run"); done
    for run in "${runs[@]}"; do
      pattern=${run##*/$model-}
      declare -A r=()
      measure "$run" > "$output.run"
      while IFS='=' read -r k v; do r[$k]=$v; done < "$output.run"
      awk -v model="$model" -v pattern="$pattern" -v d="${r[density]}" -v steps="${r[steps]}" \
          -v loss="${r[val_loss]}" -v loss0="${base[val_loss]}" -v tps="${r[tokens_per_s]}" -v tps0="${base[tokens_per_s]}" \
          -v att="${r[attention_ms]:-}" -v att0="${base[attention_ms]:-}" \
          -v attb="${r[attention_backward_ms]:-}" -v attb0="${base[attention_backward_ms]:-}" \
          -v fwd="${r[forward_ms]:-}" -v fwd0="${base[forward_ms]:-}" '
        function ratio(a, b) { return (a == "" || b == "" || a + 0 == 0) ? "" : sprintf("%.3f", b / a) }
        function ms(x) { return x == "" ? "" : sprintf("%.4f", x) }
        BEGIN {
          both = att == "" ? "" : att + attb
          both0 = att0 == "" ? "" : att0 + attb0
          printf "%s,%s,%.4f,%s,%.4f,%+.4f,%.0f,%.3f,%s,%s,%s,%s,%s,%s,%s\n", model, pattern, d, steps, loss, loss - loss0,
                 tps, tps / tps0, ms(att), ratio(att, att0), ms(attb), ratio(attb, attb0), ratio(both, both0), ms(fwd),
                 ratio(fwd, fwd0) }'
      unset r
    done
    unset base
  done
} > "$output.tmp"
rm -f "$output.run"
[ "$(wc -l < "$output.tmp")" -gt 1 ] || { rm -f "$output.tmp"; echo "sparse-study-report: no run in $dir" >&2; exit 1; }
mv "$output.tmp" "$output"
column -s, -t < "$output"
