#!/usr/bin/env bash
# The CSV of `make bench-sparse` (and of scripts/device-run.sh's part bench-sparse): minitx's
# rows, then, when they were measured on the GPU and PyTorch sees one too, SDPA's and
# FlexAttention's on the same exported masks and shapes, in the same run, appended under the
# same header. Without a GPU the file holds minitx's CPU rows alone (device "cpu").
#   scripts/bench-sparse.sh OUTPUT.csv MASKS_DIR MINITX_COMMAND...
# e.g. scripts/bench-sparse.sh out/bench_sparse.csv build/sparse/masks build/minitx bench attention --device auto
# The command gets --export-masks MASKS_DIR and --output added. OUTPUT appears complete or not
# at all.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OUTPUT.csv MASKS_DIR MINITX_COMMAND..." >&2; exit 2; }
output=$1 masks=$2
shift 2
tmp="$output.tmp-$$"
trap 'rm -f "$tmp.ours" "$tmp.peer"' EXIT
mkdir -p "$(dirname "$output")"
rm -rf "$masks"  # only this run's layouts: the peer times every file there

"$@" --export-masks "$masks" --output "$tmp.ours"

if cut -d, -f3 "$tmp.ours" | grep -qx cuda; then
  if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    python3 scripts/peers/attention_peer.py "$masks" --output "$tmp.peer"
    if [ "$(head -n 1 "$tmp.peer")" != "$(head -n 1 "$tmp.ours")" ]; then
      echo "bench-sparse: $tmp.peer: the peer's header differs from minitx's:" >&2
      head -n 1 "$tmp.peer" "$tmp.ours" >&2
      exit 1
    fi
    tail -n +2 "$tmp.peer" >>"$tmp.ours"
  else
    echo "bench-sparse: python3 has no PyTorch that sees the GPU: $output holds minitx's rows only" >&2
  fi
fi
mv "$tmp.ours" "$output"
