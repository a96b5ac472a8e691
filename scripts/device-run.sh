#!/usr/bin/env bash
# One call on the GPU machine (developers' device tool): the GPU tests, the kernel benchmarks and
# the PyTorch peers in the same run, results under $OUT. The binaries are built here (nvcc 13,
# sm_90) and carried in .devbin/ with the libraries the GPU machine's image lacks (fmt, PCRE2).
#   scripts/device-run.sh [tests] [attention] [peers] [ops]     (default: all)
set -uo pipefail
: "${OUT:?set by the device tool}"
bin=.devbin
export LD_LIBRARY_PATH=$PWD/$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
parts=${*:-tests attention peers ops}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
missing=$(ldd $bin/minitx-tests | grep 'not found')
[ -z "$missing" ] || { echo "device-run: missing libraries: $missing"; exit 1; }
for part in $parts; do
  case $part in
    tests)
      echo "== GPU tests"
      $bin/minitx-tests --no-intro -tc='gpu: *' --no-skip 2>&1 | tee $OUT/gpu_tests.log | grep -vE '^\s*$' | tail -n 60 ;;
    attention)
      echo "== bench attention"
      $bin/minitx bench attention --reps 20 --output $OUT/bench_attention.csv --export-masks /tmp/masks 2>&1 | tail -n 45 ;;
    peers)
      echo "== attention peers (SDPA, FlexAttention)"
      PYTHONUNBUFFERED=1 timeout 300 python3 scripts/peers/attention_peer.py /tmp/masks --reps 20 \
        --output $OUT/bench_attention_peer.csv 2>&1 | grep -v Warning | tail -n 45 ;;
    ops)
      echo "== CUDA ops"
      $bin/bench-cuda-ops 2>&1 | tail -n 40 ;;
  esac
done
