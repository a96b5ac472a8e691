#!/bin/bash
# Paired `bench generate` runs of two builds on a shared machine (docs/results/2026-12-03-cpu-refactor-check.md).
# Usage: scripts/bench-generate-pairs.sh RAWDIR OLDBIN OLDOUT NEWBIN NEWOUT FIRST LAST [extra bench generate args]
# OLDOUT/NEWOUT hold each build's own model.ckpt. Odd rounds run OLD then NEW, even rounds NEW then OLD; each
# run first waits for 5 quiet seconds (< 0.1 CPU-s/s busy), then runs
#   BIN --threads 2 bench generate --config configs/default.toml --out OUT --reps 1 --output RAWDIR/generate_T_rN.csv --quiet ARGS
# and appends to RAWDIR/foreign.csv: tag, start, wall s, own CPU s, machine busy CPU s, foreign CPU-s/s, exit code.
# Summarise with scripts/bench_generate_pairs.py RAWDIR.
set -u
R=$1; declare -A bin=([old]=$2 [new]=$4) out=([old]=$3 [new]=$5); first=$6; last=$7; shift 7; mkdir -p "$R"
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
wait_quiet() { for _ in $(seq 240); do b0=$(busy); sleep 5; b1=$(busy); (( (b1 - b0) < 50 )) && return; done; }
for ((r = first; r <= last; r++)); do
  if (( r % 2 )); then order="old new"; else order="new old"; fi
  for t in $order; do
    wait_quiet
    log=$R/generate_${t}_r$r.log; b0=$(busy); t0=$(date +%s.%N); start=$(date -u +%FT%TZ)
    /usr/bin/time -f "%U %S" -o "$log.time" "${bin[$t]}" --threads 2 bench generate --config configs/default.toml \
      --out "${out[$t]}" --reps 1 --output "$R/generate_${t}_r$r.csv" --quiet "$@" > "$log" 2>&1; rc=$?
    t1=$(date +%s.%N); b1=$(busy); read -r u s < "$log.time"
    awk -v tag=generate_${t}_r$r -v st=$start -v t0=$t0 -v t1=$t1 -v b0=$b0 -v b1=$b1 -v u=$u -v s=$s -v rc=$rc 'BEGIN{w=t1-t0; busy=(b1-b0)/100; own=u+s; printf "%s,%s,%.2f,%.2f,%.2f,%.3f,%d\n", tag, st, w, own, busy, (busy-own)/w, rc}' >> "$R/foreign.csv"
  done
done
