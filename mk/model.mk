# The model stages: train the GPT on the token files, evaluate it, and measure generation
# latency with and without the KV cache. Each rule depends on the config sections it reads.
#   train: OUT/train.bin, OUT/val.bin -> OUT/model.ckpt, OUT/train_log.csv, train_device.json
#          (+ OUT/train_times.csv),
#          on DEVICE (mk/pipeline.mk)
#   eval:  OUT/model.ckpt, OUT/val.bin -> OUT/eval.json, on DEVICE (on a GPU in fp32: the CPU's
#          loss to rounding; eval.json then names the device)
#   bench: OUT/model.ckpt -> OUT/bench.csv, OUT/bench_positions.csv -> OUT/plot_latencia.png,
#          on the CPU, and the GPU too where DEVICE=auto finds one (DEVICE=cpu or cuda: that one)

MODEL_CKPT := $(OUT)/model.ckpt
TRAIN_LOG := $(OUT)/train_log.csv
TRAIN_TIMES := $(OUT)/train_times.csv
TRAIN_DEVICE_JSON := $(OUT)/train_device.json
EVAL_JSON := $(OUT)/eval.json
BENCH_CSV := $(OUT)/bench.csv
BENCH_POSITIONS := $(OUT)/bench_positions.csv
PLOT_LATENCIA := $(OUT)/plot_latencia.png

# One command writes all four (grouped target); the checkpoint, log and device record (GPU and
# cuBLASLt algorithms, on the GPU) are bit-reproducible on one machine model, the times are not.
$(MODEL_CKPT) $(TRAIN_LOG) $(TRAIN_TIMES) $(TRAIN_DEVICE_JSON) &: $(TOKEN_FILES) $(call section_stamp,model) $(call section_stamp,train) $(DEVICE_STAMP) | $(MINITX)
	$(RUN) train --config $(CONFIG) --out $(OUT) --device $(DEVICE)$(if $(GPUS), --gpus $(GPUS))

$(EVAL_JSON): $(MODEL_CKPT) $(OUT)/val.bin $(call section_stamp,train) $(DEVICE_STAMP) | $(MINITX)
	$(RUN) eval --config $(CONFIG) --out $(OUT) --device $(DEVICE)

$(BENCH_CSV) $(BENCH_POSITIONS) &: $(MODEL_CKPT) $(call section_stamp,bench) | $(MINITX)
	$(RUN) bench generate --config $(CONFIG) --out $(OUT) --output $(BENCH_CSV) --device $(DEVICE)

$(PLOT_LATENCIA): $(BENCH_CSV) $(BENCH_POSITIONS) scripts/plot_latencia.gp
	gnuplot -e "table='$(BENCH_CSV)'; positions='$(BENCH_POSITIONS)'; output='$@.tmp'" scripts/plot_latencia.gp
	mv $@.tmp $@

ARTIFACTS += $(MODEL_CKPT) $(TRAIN_LOG) $(TRAIN_DEVICE_JSON) $(EVAL_JSON)
NONDETERMINISTIC += $(TRAIN_TIMES) $(BENCH_CSV) $(BENCH_POSITIONS) $(PLOT_LATENCIA)
# Provenance hashes stage outputs, so the stages list only the deterministic ones; the timing
# files reach the release through NONDETERMINISTIC (mk/release.mk).
$(eval $(call stage,train,$(TOKEN_FILES) $(call section_stamp,model) $(call section_stamp,train) $(DEVICE_STAMP),$(MODEL_CKPT) $(TRAIN_LOG) $(TRAIN_DEVICE_JSON)))
$(eval $(call stage,eval,$(MODEL_CKPT) $(OUT)/val.bin $(DEVICE_STAMP),$(EVAL_JSON)))

.PHONY: train eval bench
train: $(MODEL_CKPT) $(TRAIN_LOG) $(EVAL_JSON) ## train the GPT on the token files: OUT/model.ckpt, train_log.csv, eval.json
eval: $(EVAL_JSON) ## the validation loss of OUT/model.ckpt on DEVICE: OUT/eval.json
bench: $(BENCH_CSV) $(PLOT_LATENCIA) ## per-token latency with and without the KV cache: OUT/bench.csv, plot_latencia.png
