#!/usr/bin/env bash
# The sparse study's heatmaps: for each model, the attention of every run (dense first) over the
# same text, four heads each, into OUTDIR/plot_sparse_attention_<model>.png.
#   scripts/plot-study-attention.sh DIR OUTDIR MODEL...
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 DIR OUTDIR MODEL..." >&2; exit 2; }
dir=$1 outdir=$2
shift 2
for model in "$@"; do
  files=() titles=()
  for run in "$dir/$model-dense" "$dir/$model"-*; do
    [ -f "$run/attention.csv" ] || continue
    pattern=${run##*/$model-}
    [ "$pattern" = dense ] && [ ${#files[@]} -gt 0 ] && continue  # dense once, first
    files+=("$run/attention.csv")
    titles+=("$pattern")
  done
  [ ${#files[@]} -gt 0 ] || { echo "plot-study-attention: no attention.csv for $model in $dir" >&2; exit 1; }
  heads=$(awk -F, 'NR > 1 && $1 + 1 > h { h = $1 + 1 } END { print (h < 4 ? h : 4) }' "${files[0]}")
  out=$outdir/plot_sparse_attention_$model.png
  gnuplot -e "files='${files[*]}'; titles='${titles[*]}'; heads=$heads; output='$out.tmp'" scripts/plot_attention_map.gp
  mv "$out.tmp" "$out"
done
