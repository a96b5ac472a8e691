#!/usr/bin/env bash
# One call on the GPU machine (developers' device tool): the GPU tests, the kernel benchmarks and
# the PyTorch peers in the same run, results under $OUT. The binaries are built here (nvcc 13,
# sm_90) and carried in .devbin/ with the libraries the GPU machine's image lacks (fmt, PCRE2).
#   scripts/device-run.sh [tests] [attention] [peers] [ops] [train] [train-ours] [pipeline] [gpu-config]
#                         [bench-sparse] [idem] [decode]
#   (default: all but train-ours, gpu-config and bench-sparse)
# bench-sparse: `make bench-sparse`'s CSV (minitx, SDPA and FlexAttention in one file, the same
# masks) as $OUT/bench_sparse.csv, to be copied into out/ and plotted where gnuplot is.
# train: torch_peers.py's training step (eager, torch.compile) and `minitx bench train --device
# cuda` in one call; pipeline: configs/gpu.toml trained on the GPU twice, and once stopped and
# continued, checkpoints compared byte for byte (out/gpu/train.bin and val.bin carried in).
# idem: `make test-idem CONFIG=configs/gpu.toml DEVICE=cuda` (three whole pipelines through Make,
# every artifact compared), then `make verify` of run a's tarball; carry .devbin (made by
# scripts/device-kit.sh: gnuplot travels in it), corpus/sotu.txt and corpus/.pins.
# decode: issue 12's table in one call: scripts/gpu-decode-bench.sh (ours at three shapes, three
# weight formats), then the peers: torch_decode_peer.py (static cache + CUDA graph),
# prefill_peer.py (SDPA's time to the first token) and torch_peers.py gen (transformers' generate).
set -uo pipefail
: "${OUT:?set by the device tool}"
bin=.devbin
export LD_LIBRARY_PATH=$PWD/$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
parts=${*:-tests attention peers ops train pipeline}
STOP=${STOP:-600}
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
    bench-sparse)
      echo "== bench-sparse: minitx, SDPA and FlexAttention on the same masks"
      PYTHONUNBUFFERED=1 timeout 560 scripts/bench-sparse.sh $OUT/bench_sparse.csv /tmp/sparse-masks \
        $bin/minitx bench attention --device cuda ${SPARSE_ARGS:-} 2>&1 | grep -v Warning | tail -n 90 ;;
    decode)
      echo "== decode: ours, then PyTorch + CUDA graph, SDPA's prefill, transformers' generate"
      scripts/gpu-decode-bench.sh $bin/minitx $OUT/gpu_decode.csv 3 2>&1 | tail -n 60
      PYTHONUNBUFFERED=1 OUT=$OUT timeout 200 python3 $bin/torch_decode_peer.py 2>&1 | grep -v Warning | tail -n 8
      PYTHONUNBUFFERED=1 timeout 120 python3 scripts/peers/prefill_peer.py --output $OUT/prefill_peer.csv 2>&1 | tail -n 8
      mkdir -p /tmp/gen && PYTHONUNBUFFERED=1 OUT=/tmp/gen timeout 240 python3 $bin/torch_peers.py gen 2>&1 |
        grep -v Warning | tail -n 20; cp /tmp/gen/peers.json $OUT/torch_peers_gen.json ;;
    ops)
      echo "== CUDA ops"
      $bin/bench-cuda-ops 2>&1 | tail -n 40 ;;
    train)
      echo "== training step: PyTorch (eager, torch.compile) and minitx"
      OUT=$OUT PYTHONUNBUFFERED=1 timeout 400 python3 $bin/torch_peers.py train 2>&1 | grep -v Warning | tail -n 8
      $bin/minitx bench train --device cuda --steps 20 --torch-json $OUT/peers.json --output $OUT/bench_train_cuda.csv \
        --profile $OUT/train_profile.csv ;;
    train-ours)
      echo "== training step: minitx alone, with where the time goes"
      $bin/minitx bench train --device cuda --steps 20 --output $OUT/bench_train_cuda.csv --profile $OUT/train_profile.csv ;;
    gpu-config)
      echo "== configs/gpu.toml trained to the end on the GPU"
      mkdir -p /tmp/full && cp out/gpu/train.bin out/gpu/val.bin /tmp/full/
      $bin/minitx train --config configs/gpu.toml --out /tmp/full --device cuda 2>&1 | tail -n 3
      cp /tmp/full/train_log.csv $OUT/gpu_full_train_log.csv; cp /tmp/full/train_times.csv $OUT/gpu_full_train_times.csv
      cp /tmp/full/train_device.json $OUT/gpu_full_train_device.json ;;
    pipeline)
      echo "== configs/gpu.toml on the GPU: two whole runs, and one stopped at step $STOP and run again"
      for run in a b c; do
        mkdir -p /tmp/$run && cp out/gpu/train.bin out/gpu/val.bin /tmp/$run/
      done
      $bin/minitx train --config configs/gpu.toml --out /tmp/a --device cuda 2>&1 | tail -n 3
      $bin/minitx train --config configs/gpu.toml --out /tmp/b --device cuda --quiet 2>&1 | tail -n 1
      $bin/minitx train --config configs/gpu.toml --out /tmp/c --device cuda --stop-after $STOP --quiet 2>&1 | tail -n 1
      $bin/minitx train --config configs/gpu.toml --out /tmp/c --quiet 2>&1 | tail -n 1  # continues from /tmp/c/resume
      sha256sum /tmp/{a,b,c}/model.ckpt /tmp/{a,b,c}/train_log.csv | tee $OUT/pipeline_sha256.txt
      cp /tmp/a/train_log.csv $OUT/gpu_train_log.csv; cp /tmp/a/train_times.csv $OUT/gpu_train_times.csv ;;
    idem)
      echo "== make test-idem CONFIG=configs/gpu.toml DEVICE=cuda, then make verify"
      tar -xJf $bin/gnuplot-kit.tar.xz -C /tmp && export PATH=/tmp/gpkit:$PATH
      # test-idem packs what git lists; the call's copy of the tree may come without .git.
      if [ ! -d .git ]; then
        git init -q && echo /$bin/ >> .git/info/exclude && git add -A &&
          git -c user.name=minitx -c user.email=minitx@localhost commit -q -m "device copy"
      fi
      # No network there: the packages are checked here, not installed; every copy of the tree
      # shares this stamp.
      mkdir -p build && touch build/deps.stamp
      MAKEFLAGS="DEPS_STAMP=$PWD/build/deps.stamp" IDEM_THREADS=8 IDEM_DEVICE=cuda MINITX=$PWD/$bin/minitx \
        timeout 540 scripts/test-idem.sh configs/gpu.toml 2>&1 | tee $OUT/test_idem_gpu.log | tail -n 30
      (cd build/idem/a && MAKEFLAGS="DEPS_STAMP=$OLDPWD/build/deps.stamp" make --no-print-directory CONFIG=configs/gpu.toml \
        MINITX=$OLDPWD/$bin/minitx verify 2>&1 | tail -n 2)
      tar -cf $OUT/out_gpu.tar --exclude='*.ckpt' --exclude='*.mtq' --exclude='*.bin' -C build/idem/a out/gpu ;;
  esac
done
