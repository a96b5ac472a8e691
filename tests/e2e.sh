#!/usr/bin/env bash
# End-to-end checks of the pipeline on configs/tiny.toml, in a fresh build/e2e work area.
# Prints one "ok - …" or "not ok - …" line per check.
set -uo pipefail
: "${MINITX:?path to build/minitx}"
E2E=build/e2e
rm -rf "$E2E"
mkdir -p "$E2E"
MK=(make --no-print-directory CONFIG=configs/tiny.toml OUT="$E2E/out" DIST_DIR="$E2E/dist" MINITX="$MINITX")
TGZ="$E2E/dist/minitx-$(cat VERSION)-tiny.tar.gz"
log="$E2E/log"

source tests/checks.sh

tests/make_graph.sh  # one line per rule that must wait for the dependency check
check "make all runs every stage of the tiny config" "${MK[@]}" all
for f in "$E2E/out/provenance.json" "$TGZ" "$TGZ.sha256"; do
  check "make all wrote $f" test -s "$f"
done
check "a second make runs no recipe" "${MK[@]}" --question all
check "make verify-corpus passes" "${MK[@]}" verify-corpus
check "make verify passes" "${MK[@]}" verify
first=$(cat "$TGZ.sha256" 2>/dev/null)
rm -f "$TGZ" "$TGZ.sha256"
check "make pack again" "${MK[@]}" pack
check "pack is byte-identical when repeated" test -n "$first" -a "$first" = "$(cat "$TGZ.sha256" 2>/dev/null)"

T="$E2E/out"
check "decoding train.bin + val.bin gives back the corpus, byte for byte" bash -c "
  '$MINITX' tokenizer decode --tokenizer $T/tokenizer.json --input $T/train.bin --output $E2E/train.txt &&
  '$MINITX' tokenizer decode --tokenizer $T/tokenizer.json --input $T/val.bin --output $E2E/val.txt &&
  cat $E2E/train.txt $E2E/val.txt | cmp - \$(sed -n 's/^CORPUS_FILE := //p' $T/.stamps/config.mk)"
check_fails "a token file decoded with another tokenizer is refused" "SHA-256" bash -c "
  '$MINITX' tokenizer train --input VERSION --vocab-size 300 --output $E2E/other.json &&
  '$MINITX' tokenizer decode --tokenizer $E2E/other.json --input $T/val.bin --output $E2E/bad.txt"
check "a refused decode leaves no output file" test ! -e "$E2E/bad.txt"

corpus=$(sed -n 's/^CORPUS_FILE := //p' "$E2E/out/.stamps/config.mk")
mkdir -p "$E2E/corpus"
cp "$corpus" "$E2E/corpus/" 2>/dev/null
printf 'X' | dd of="$E2E/corpus/$(basename "$corpus")" bs=1 seek=1000 conv=notrunc status=none
check_fails "verify-corpus fails after one byte of the corpus changes" "SHA-256 mismatch" \
  "$MINITX" verify-corpus --config configs/tiny.toml --corpus-dir "$E2E/corpus"

cp "$TGZ" "$TGZ.sha256" "$E2E/" 2>/dev/null
bad="$E2E/$(basename "$TGZ")"
printf '\x00' | dd of="$bad" bs=1 seek=200 conv=notrunc status=none
check_fails "verify fails on a flipped byte of the tarball" "SHA-256 mismatch" "$MINITX" verify "$bad"

printf '[corpus]\nname = "x"\nsha256 = "%064d"\nbytes = -1\n' 0 >"$E2E/bad.toml"
check_fails "a config value out of range names file, line and key" "$E2E/bad.toml:4: [corpus] bytes: expected an integer" \
  "$MINITX" verify-corpus --config "$E2E/bad.toml"
check_fails "make rejects a missing CONFIG" "no such file" make --no-print-directory CONFIG=configs/none.toml corpus
check_fails "make rejects a bad THREADS" "THREADS must be a positive whole number" make --no-print-directory THREADS=two corpus
check_fails "pack rejects a malformed SOURCE_DATE_EPOCH" "SOURCE_DATE_EPOCH: expected whole seconds" \
  env SOURCE_DATE_EPOCH=yesterday "$MINITX" pack --output "$E2E/x.tar.gz" --prefix x VERSION
check_fails "unknown options are errors" "unknown option '--colour'" "$MINITX" fetch --config configs/tiny.toml --colour
check_fails "unknown commands are errors" "unknown command 'fletch'" "$MINITX" fletch
check_fails "a malformed MINITX_GEMM_ISA stops before any output" "MINITX_GEMM_ISA: expected avx2 or avx512, got 'sse'" \
  env MINITX_GEMM_ISA=sse "$MINITX" info
check "MINITX_GEMM_ISA=avx2 pins the AVX2 kernels" bash -c \
  "MINITX_GEMM_ISA=avx2 '$MINITX' info | grep -c 'gemm kernel *avx2\|quant kernel *avx2' | grep -qx 2"
check "minitx --help lists the commands" bash -c "'$MINITX' --help | grep -q verify-corpus"
check "minitx <command> --help shows its options" bash -c "'$MINITX' pack --help | grep -q SOURCE_DATE_EPOCH"
check "minitx --version prints the version" bash -c "'$MINITX' --version | grep -qx 'minitx $(cat VERSION)'"
check "minitx info reports the ISA level and the GPU state" bash -c "'$MINITX' info | grep -q 'isa *x86-64-v3' && '$MINITX' info | grep -q '^gpu '"
check_fails "a bad --threads is an error" "--threads: expected a whole number from 1 to 1024, got '0'" "$MINITX" --threads 0 info

# Quantized models (mk/quant.mk): make all above ran quantize and bench-quant.
Q="$E2E/out"
for f in model-f32.mtq model-q8_0.mtq model-q4_0.mtq model-q4_mix.mtq bench_quant.csv bench_quant_times.csv plot_quant.png; do
  check "make all wrote $f" test -s "$Q/$f"
done
check "bench_quant.csv has a row per format" bash -c "[ \"\$(cut -d, -f1 '$Q/bench_quant.csv' | tr '\n' ' ')\" = 'format fp32 q8_0 q4_0 q4_mix ' ]"
check "eval accepts a quantized model" "$MINITX" eval --config configs/tiny.toml --out "$Q" --model "$Q/model-q4_0.mtq" --output "$E2E/eval_q4_0.json"

# The timing files: a block of rows per device, the CPU's always, the GPU's where make's
# DEVICE=auto found one; then both plots drawn from two-device files made of these (the GPU's
# rows copied from the CPU's), which is what a GPU machine gives them.
if "$MINITX" info | grep -qE '^gpu +none visible'; then gpu=0 devices='cpu'; else gpu=1 devices='cpu cuda'; fi
check "bench.csv and bench_positions.csv lead with the device, a block of rows for each of: $devices" bash -c "
  head -n 1 '$Q/bench.csv' | grep -q '^device,length,cached_ms_per_token,' &&
  head -n 1 '$Q/bench_positions.csv' | grep -qx 'device,position,cached_ms,recompute_ms' &&
  [ \"\$(tail -n +2 '$Q/bench.csv' | cut -d, -f1 | uniq | tr '\n' ' ')\" = '$devices ' ] &&
  [ \"\$(tail -n +2 '$Q/bench_positions.csv' | cut -d, -f1 | uniq | tr '\n' ' ')\" = '$devices ' ]"
check "bench_quant_times.csv has a row per device and format, the GPU's with its floor" bash -c "
  head -n 1 '$Q/bench_quant_times.csv' | grep -qx 'device,format,bytes,ratio_to_fp32,threads,prompt_tokens,prompt_tok_s,prompt_speedup,depth,gen_tokens,decode_tok_s,decode_speedup,floor_tok_s' &&
  [ \"\$(tail -n +2 '$Q/bench_quant_times.csv' | cut -d, -f1,2 | tr '\n' ' ')\" = \"\$(for d in $devices; do printf '%s ' \$d,fp32 \$d,q8_0 \$d,q4_0 \$d,q4_mix; done)\" ] &&
  awk -F, 'NR > 1 && ((\$1 == \"cpu\") != (\$13 == \"\")) { bad = 1 } END { exit bad }' '$Q/bench_quant_times.csv'"
two="$E2E/two-devices"
mkdir -p "$two"
for f in bench bench_positions bench_quant_times; do
  { cat "$Q/$f.csv"; grep '^cpu,' "$Q/$f.csv" | sed 's/^cpu,/cuda,/'; } >"$two/$f.csv"
done
sed -i '/^cuda,/s/,$/,1000000.0/' "$two/bench_quant_times.csv"  # the GPU's rows have a floor
check "plot_latencia.gp draws a CPU and a GPU from one file" \
  gnuplot -e "table='$two/bench.csv'; positions='$two/bench_positions.csv'; output='$two/plot_latencia.png'" scripts/plot_latencia.gp
check "plot_quant.gp draws a panel per device from one file" \
  gnuplot -e "quality='$Q/bench_quant.csv'; times='$two/bench_quant_times.csv'; output='$two/plot_quant.png'" scripts/plot_quant.gp
# A PNG's width is the big-endian word at byte 16 (its IHDR chunk): three 700-pixel panels.
check "the two-device plots are written, the quantization one a panel wider" bash -c "
  [ -s '$two/plot_latencia.png' ] && [ \"\$(od -An -j16 -N4 -tx1 '$two/plot_quant.png' | tr -d ' \n')\" = 00000834 ]"
if [ "$gpu" = 0 ]; then
  # A CUDA build on a machine without a GPU, or a build without CUDA (make test-asan's): each says which.
  if "$MINITX" info | grep -qE '^cuda +[0-9]'; then no_gpu='--device cuda: no CUDA device is visible on this machine'
  else no_gpu='--device cuda: this build has no CUDA'; fi
  check_fails "eval --device cuda without a GPU says so" "$no_gpu" \
    "$MINITX" eval --config configs/tiny.toml --out "$Q" --device cuda --output "$E2E/eval_cuda.json"
  check_fails "bench generate --device cuda without a GPU says so" "$no_gpu" \
    "$MINITX" bench generate --config configs/tiny.toml --out "$Q" --device cuda --output "$E2E/bench_cuda.csv"
else
  check "eval --device cuda writes the GPU's loss of a quantized model, naming its device and precision" bash -c "
    '$MINITX' eval --config configs/tiny.toml --out '$Q' --model '$Q/model-q8_0.mtq' --device cuda --output '$E2E/eval_cuda.json' &&
    grep -q '\"device\": \"cuda\",' '$E2E/eval_cuda.json' && grep -q '\"precision\": \"fp32\"' '$E2E/eval_cuda.json'"
fi
check "generate accepts a quantized model" "$MINITX" generate --config configs/tiny.toml --out "$Q" --model "$Q/model-q8_0.mtq" --prompt "Call me" --max-new 8 --seed 1
check "generate --context-policy slide goes past the context (64) and says so" bash -c \
  "'$MINITX' generate --config configs/tiny.toml --out '$Q' --prompt 'Call me' --max-new 150 --seed 1 --context-policy slide 2>&1 >/dev/null | grep -q '150 new tokens.*the window slid 3 times'"
check "generate stops at the context by default" bash -c \
  "'$MINITX' generate --config configs/tiny.toml --out '$Q' --prompt 'Call me' --max-new 150 --seed 1 2>&1 >/dev/null | grep -q 'stopped at the context length'"
check "attention-map writes every head's causal triangle, each query's row summing to 1" bash -c \
  "'$MINITX' attention-map --model '$Q/model.ckpt' --tokenizer '$Q/tokenizer.json' --text 'Call me Ishmael.' --layer 1 \
     --output '$E2E/att.csv' && head -n 1 '$E2E/att.csv' | grep -qx 'head,query,key,query_token,key_token,probability' &&
   awk -F, 'NR > 1 { s[\$1 \" \" \$2] += \$6; n++; if (\$3 > \$2) bad = 1 }
     END { for (k in s) if (s[k] < 0.9999 || s[k] > 1.0001) bad = 1; q = length(s) / 2; exit !(n == 2 * q * (q + 1) / 2 && !bad) }' '$E2E/att.csv'"
check_fails "attention-map names a layer the model lacks" "--layer 2 does not exist: the model has layers 0..1" \
  "$MINITX" attention-map --model "$Q/model.ckpt" --tokenizer "$Q/tokenizer.json" --text x --layer 2 --output "$E2E/att2.csv"
check_fails "a quantized model of another shape is an error" "does not fit [model] in configs/default.toml" \
  "$MINITX" eval --config configs/default.toml --out "$Q" --model "$Q/model-q4_0.mtq"
check "bench quant --random times the config's shape with random weights" \
  "$MINITX" bench quant --config configs/tiny.toml --random --speed "$E2E/bench_quant_random.csv" --reps 1 --quiet
check_fails "quantize rejects an unknown recipe" "quantization recipe 'q3_0' is unknown" \
  "$MINITX" quantize --config configs/tiny.toml --out "$Q" --to q3_0 --output "$E2E/x.mtq"
check_fails "bench quant needs an output" "nothing to do" "$MINITX" bench quant --config configs/tiny.toml --out "$Q"

# ---- Hugging Face import and export (tests/fixtures/arch: tiny models saved by transformers) ----
H="$E2E/hf"
mkdir -p "$H"
check "import reads a GPT-NeoX checkpoint in two shards" \
  "$MINITX" import --from tests/fixtures/arch/neox_full_sequential --output "$H/neox.ckpt"
check "logits writes one row per position and one column per vocabulary row" bash -c \
  "'$MINITX' logits --model '$H/neox.ckpt' --ids 17,203,5,88 --output '$H/logits.csv' &&
   [ \"\$(wc -l < '$H/logits.csv')\" -eq 5 ] && [ \"\$(head -n 1 '$H/logits.csv' | tr ',' '\n' | wc -l)\" -eq 386 ]"
check "export then import gives the same checkpoint, byte for byte" bash -c \
  "'$MINITX' export --model '$H/neox.ckpt' --to '$H/exported' && '$MINITX' import --from '$H/exported' --output '$H/again.ckpt' &&
   cmp '$H/neox.ckpt' '$H/again.ckpt'"
check "an imported model quantizes and its logits come from the quantized file" bash -c \
  "'$MINITX' quantize --model '$H/neox.ckpt' --to q8_0 --output '$H/neox.mtq' && '$MINITX' logits --model '$H/neox.mtq' --ids 1,2,3 --output '$H/q.csv'"
check "eval runs an imported model on a token file without a config" bash -c \
  "'$MINITX' import --from tests/fixtures/arch/opt --output '$H/opt.ckpt' &&
   '$MINITX' tokenizer train --input README.md --vocab-size 300 --output '$H/tok.json' --quiet &&
   '$MINITX' tokenizer encode --tokenizer '$H/tok.json' --input README.md --output '$H/readme.bin' &&
   '$MINITX' eval --model '$H/opt.ckpt' --input '$H/readme.bin' --batch-size 2 | grep -q 'perplexity'"
check_fails "an imported model without a tokenizer refuses token ids past its rows" "has ids up to 512" \
  "$MINITX" eval --model "$H/opt.ckpt" --input "$T/val.bin"
check_fails "logits refuses an id outside the vocabulary" "token id 999 at index 1 is outside the model's vocabulary of 384" \
  "$MINITX" logits --model "$H/neox.ckpt" --ids 1,999 --output "$H/bad.csv"
check "a refused logits run leaves no output" test ! -e "$H/bad.csv"
check "q4_mix keeps an untied head at 8 bits and calibrates a model without a tokenizer on any ids it has" bash -c \
  "'$MINITX' import --from tests/fixtures/arch/neox_partial_parallel --output '$H/pythia.ckpt' &&
   '$MINITX' quantize --model '$H/pythia.ckpt' --to q4_mix --calib '$H/readme.bin' --output '$H/pythia-mix.mtq' >/dev/null &&
   grep -a '^q8_0_tensors ' '$H/pythia-mix.mtq' | tr ',' '\n' | grep -qx 'head'"
# A calibration file of the model's own tokenizer whose header claims a larger vocabulary, with an
# id past the model's rows (issue 14, item 2: it was read as memory past the embeddings).
# The token file's checksum (bytes 64..95: SHA-256 of the fields [0, 64) and the ids) made right again.
cp "$T/val.bin" "$H/calib-past.bin"
printf '\xff\xff\x00\x00' | dd of="$H/calib-past.bin" bs=1 seek=12 conv=notrunc status=none  # vocab 65535
printf '\x60\xea' | dd of="$H/calib-past.bin" bs=1 seek=98 conv=notrunc status=none            # id 60000
sum=$({ head -c 64 "$H/calib-past.bin"; tail -c +97 "$H/calib-past.bin"; } | sha256sum | cut -c1-64 | sed 's/../\\x&/g')
printf "$sum" | dd of="$H/calib-past.bin" bs=1 seek=64 conv=notrunc status=none
check_fails "quantize --calib refuses ids past the model's vocabulary, naming the file" \
  "$H/calib-past.bin: holds ids up to 65535, but $T/model.ckpt has 512 token rows" \
  "$MINITX" quantize --model "$T/model.ckpt" --to q4_mix --calib "$H/calib-past.bin" --output "$H/past.mtq"
check "a refused quantize leaves no output" test ! -e "$H/past.mtq"
sed 's/^n_layer = 2/activation = "gelu"\nn_layer = 2/' configs/tiny.toml >"$H/gelu.toml"
check_fails "activation = \"gelu\" is refused as ambiguous, naming both GELUs" '"gelu" is ambiguous' \
  "$MINITX" config-vars --config "$H/gelu.toml" --output "$H/gelu.mk"
check_fails "import names a directory without config.json" "config.json" "$MINITX" import --from "$H" --output "$H/x.ckpt"

# ---- Hardening (issue 14): a hostile environment and hostile files ---------------------------
H="$E2E/harden"
mkdir -p "$H"
check_fails "tokenizer decode into a full device is an error" "minitx: standard output: write error: No space left on device" \
  bash -c "'$MINITX' tokenizer decode --tokenizer '$T/tokenizer.json' --input '$T/val.bin' >/dev/full"
check_fails "generate into a full device is an error" "minitx: standard output: write error: No space left on device" \
  bash -c "'$MINITX' generate --config configs/tiny.toml --out '$T' --prompt 'Call me' --max-new 8 --seed 1 >/dev/full"
check_fails "tokenizer info into a full device is an error" "minitx: standard output: write error: No space left on device" \
  bash -c "'$MINITX' tokenizer info --tokenizer '$T/tokenizer.json' >/dev/full"
check_fails "minitx --version into a full device is an error" "standard output: write error" bash -c "'$MINITX' --version >/dev/full"
check_fails "a file-size limit is a named error, not a silent kill" \
  "$H/limited.bin: write failed after 1024 bytes: File too large (a file-size limit, such as \`ulimit -f\`?)" \
  bash -c "ulimit -f 1; '$MINITX' tokenizer encode --tokenizer '$T/tokenizer.json' --input '$E2E/val.txt' --output '$H/limited.bin'"
check "a file-size limit leaves no temporary file" bash -c "! ls '$H' | grep -q limited"
# A full disk: MINITX_FAULT_ENOSPC=N (core/fault.h) fails every output as ENOSPC does once it would
# pass N bytes (a real full disk needs a tmpfs, so root). Each stage that writes a file must name
# it, say how far it got and why, and leave neither the file nor its temporary file.
F="$H/full"
mkdir -p "$F"
cp "$T/train.bin" "$T/val.bin" "$F/"
full_disk() {  # full_disk WHAT OUTPUT CMD...
  local what=$1 output=$2; shift 2
  check_fails "$what into a full disk names the file and the error" \
    "$output: write failed after 100 bytes: No space left on device; the partial file $output.tmp-" env MINITX_FAULT_ENOSPC=100 "$@"
  check "$what into a full disk leaves no partial or temporary file" \
    bash -c "[ \"\$(cd '$F' && find . -type f ! -name train.bin ! -name val.bin | sort)\" = '' ]"
}
full_disk "tokenizer train" "$F/tok.json" "$MINITX" tokenizer train --input VERSION --vocab-size 260 --output "$F/tok.json" --quiet
full_disk "tokenizer encode" "$F/val2.bin" \
  "$MINITX" tokenizer encode --tokenizer "$T/tokenizer.json" --input "$E2E/val.txt" --output "$F/val2.bin"
full_disk "tokenizer decode" "$F/val.txt" \
  "$MINITX" tokenizer decode --tokenizer "$T/tokenizer.json" --input "$T/val.bin" --output "$F/val.txt"
full_disk "train (its first checkpoint)" "$F/resume/train_log.csv" \
  "$MINITX" train --config configs/tiny.toml --out "$F" --device cpu --quiet
full_disk "eval" "$F/eval.json" "$MINITX" eval --config configs/tiny.toml --out "$T" --output "$F/eval.json"
full_disk "quantize" "$F/q8.mtq" "$MINITX" quantize --config configs/tiny.toml --out "$T" --to q8_0 --output "$F/q8.mtq"
full_disk "import" "$F/neox.ckpt" "$MINITX" import --from tests/fixtures/arch/neox_full_sequential --output "$F/neox.ckpt"
full_disk "pack" "$F/x.tar.gz" env SOURCE_DATE_EPOCH=0 "$MINITX" pack --output "$F/x.tar.gz" --prefix x VERSION README.md
echo kept >"$H/victim"
ln -sf victim "$H/eval-link.json"
mkfifo "$H/fifo.txt"
check_fails "eval refuses to replace an output that is a symbolic link" \
  "$H/eval-link.json: exists and is a symbolic link, not a regular file; refusing to replace it" \
  "$MINITX" eval --config configs/tiny.toml --out "$T" --output "$H/eval-link.json"
check_fails "decode refuses to replace an output that is a fifo" "$H/fifo.txt: exists and is a fifo, not a regular file" \
  "$MINITX" tokenizer decode --tokenizer "$T/tokenizer.json" --input "$T/val.bin" --output "$H/fifo.txt"
check "refused outputs are left as they were" bash -c "[ -L '$H/eval-link.json' ] && [ -p '$H/fifo.txt' ] && [ \"\$(cat '$H/victim')\" = kept ]"
check_fails "an output below a file is a named error" "$H/victim/tok.json: cannot create directory $H/victim" \
  "$MINITX" tokenizer train --input VERSION --vocab-size 260 --output "$H/victim/tok.json"
check_fails "a filesystem error names the path, not 'internal error: filesystem error'" \
  "minitx: $H/victim/masks: cannot create directories: Not a directory" \
  "$MINITX" bench attention --device cpu --patterns causal --T 64 --block 16 --export-masks "$H/victim/masks"
# A tarball made by GNU tar whose links climb out of the tree one hop at a time.
mkdir -p "$H/evil/r" "$H/escape"
ln -s . "$H/evil/r/a" && ln -s .. "$H/evil/r/b"
tar --sort=name -C "$H/evil" -czf "$H/evil.tar.gz" r
(cd "$H" && sha256sum evil.tar.gz >evil.tar.gz.sha256)
check_fails "verify refuses a tarball holding symbolic links" "symbolic link to '.'; a release holds only regular files and directories" \
  env TMPDIR="$H/escape" "$MINITX" verify "$H/evil.tar.gz"
check "a refused verify leaves nothing in TMPDIR" bash -c "[ -z \"\$(ls -A '$H/escape')\" ]"
