#!/usr/bin/env bash
# Interrupted training never looks finished (issue 14, item 3). On the tiny config (its corpus
# fetched by tests/e2e.sh), `make train` is killed at each named point of the
# trainer (minitx/core/fault.h) — the trainer alone, and the trainer with Make (its whole process
# group, as a power cut would) — and between the final log's and the final checkpoint's renames;
# after each, `make` must not call the stage done, a second `make train` must finish it, and
# every output must equal an uninterrupted run's byte for byte, with no resume state or
# temporary file left. Prints one "ok - …" / "not ok - …" line per check.
set -uo pipefail
: "${MINITX:?path to build/minitx}"
E2E=build/e2e
WORK="$E2E/interrupt"
log="$WORK/check.log"
rm -rf "$WORK" && mkdir -p "$WORK"
source tests/checks.sh

# A run of 60 steps with a checkpoint every 20 (the tiny config's [train] with its own cadence).
config="$WORK/tiny-interrupt.toml"
sed -e 's/^checkpoint_every *=.*/checkpoint_every = 20/' configs/tiny.toml >"$config"
grep -q '^checkpoint_every = 20' "$config" || echo 'checkpoint_every = 20' >>"$config"
outputs=(model.ckpt train_log.csv train_times.csv train_device.json)
fresh_out() { rm -rf "$1" && mkdir -p "$1"; }  # make makes the token files (a second or so)
mk() {  # mk OUT TARGET...: make for the interrupt config, in its own process group
  local out=$1; shift
  setsid --wait make --no-print-directory CONFIG="$config" OUT="$out" MINITX="$MINITX" DEVICE=cpu "$@"
}
digest() {  # digest OUT: the deterministic outputs' hashes (train_times.csv holds timings)
  (cd "$1" && sha256sum model.ckpt train_log.csv train_device.json)
}


ref="$WORK/ref"
fresh_out "$ref"
check "an uninterrupted make train finishes" mk "$ref" train
digest "$ref" >"$WORK/ref.sha256"

for point in train.resume.after-log train.resume.after-checkpoint train.final.after-log train.final.after-checkpoint; do
  for group in 0 1; do
    who=$([ "$group" = 1 ] && echo "make and the trainer" || echo "the trainer")
    out="$WORK/$point-$group"
    fresh_out "$out"
    MINITX_FAULT=$point MINITX_FAULT_GROUP=$group mk "$out" train >"$WORK/$point-$group.log" 2>&1
    if [ "$point" = train.final.after-checkpoint ] && [ "$group" = 1 ]; then
      # Killed after the last rename, Make with it: the run is complete, and Make must say so.
      # (Make itself alive sees its recipe fail and deletes the outputs: the rerun below.)
      check "killing $who at $point: make sees the stage done" mk "$out" --question "$out/model.ckpt"
    else
      check "killing $who at $point: make does not take the stage for done" \
        bash -c "! setsid --wait make --no-print-directory --question CONFIG='$config' OUT='$out' MINITX='$MINITX' DEVICE=cpu '$out/model.ckpt'"
      check "killing $who at $point: the next make train finishes it" mk "$out" train
    fi
    check "killing $who at $point: every output equals the uninterrupted run's" \
      bash -c "cd '$out' && sha256sum --quiet -c '$(pwd)/$WORK/ref.sha256' && [ -s train_times.csv ]"
    check "killing $who at $point: no resume state or temporary file is left" \
      bash -c "[ -z \"\$(find '$out' \\( -path '$out/resume*' -o -name '*.tmp-*' \\) -print)\" ]"
  done
done
