# Quantized models: the trained model converted by each recipe, then measured.
#   quantize:    OUT/model.ckpt (+ OUT/train.bin for q4_mix's choice) -> OUT/model-<recipe>.mtq
#   bench-quant: the files + OUT/val.bin -> OUT/bench_quant.csv (sizes, perplexity: deterministic;
#                on the GPU in fp32 where DEVICE finds one, as eval)
#                the files -> OUT/bench_quant_times.csv (prompt and decode tokens/s: timings; on
#                the CPU, and the GPU too where DEVICE=auto finds one, beside its memory floor)
#                both -> OUT/plot_quant.png
# The f32 recipe is the fp32 baseline in the same file format, so sizes compare file to file.

QUANT_RECIPES := f32 q8_0 q4_0 q4_mix
QUANT_FILES := $(foreach r,$(QUANT_RECIPES),$(OUT)/model-$(r).mtq)
QUANT_SENSITIVITY := $(OUT)/quant_sensitivity.csv
BENCH_QUANT := $(OUT)/bench_quant.csv
BENCH_QUANT_TIMES := $(OUT)/bench_quant_times.csv
PLOT_QUANT := $(OUT)/plot_quant.png

$(OUT)/model-f32.mtq $(OUT)/model-q8_0.mtq $(OUT)/model-q4_0.mtq: $(OUT)/model-%.mtq: $(MODEL_CKPT) | $(MINITX)
	$(RUN) quantize --config $(CONFIG) --out $(OUT) --to $*

# q4_mix measures each layer matrix's sensitivity on the start of the training stream.
$(OUT)/model-q4_mix.mtq $(QUANT_SENSITIVITY) &: $(MODEL_CKPT) $(OUT)/train.bin | $(MINITX)
	$(RUN) quantize --config $(CONFIG) --out $(OUT) --to q4_mix --sensitivity $(QUANT_SENSITIVITY)

$(BENCH_QUANT): $(QUANT_FILES) $(OUT)/val.bin $(call section_stamp,train) | $(MINITX)
	$(RUN) bench quant --config $(CONFIG) --out $(OUT) --quality $@ --device $(DEVICE)

$(BENCH_QUANT_TIMES): $(QUANT_FILES) | $(MINITX)
	$(RUN) bench quant --config $(CONFIG) --out $(OUT) --speed $@ --device $(DEVICE)

$(PLOT_QUANT): $(BENCH_QUANT) $(BENCH_QUANT_TIMES) scripts/plot_quant.gp
	gnuplot -e "quality='$(BENCH_QUANT)'; times='$(BENCH_QUANT_TIMES)'; output='$@.tmp'" scripts/plot_quant.gp
	mv $@.tmp $@

ARTIFACTS += $(QUANT_FILES) $(QUANT_SENSITIVITY) $(BENCH_QUANT)
NONDETERMINISTIC += $(BENCH_QUANT_TIMES) $(PLOT_QUANT)
$(eval $(call stage,quantize,$(MODEL_CKPT) $(OUT)/train.bin,$(QUANT_FILES) $(QUANT_SENSITIVITY)))
$(eval $(call stage,bench-quant,$(QUANT_FILES) $(OUT)/val.bin,$(BENCH_QUANT)))

.PHONY: quantize bench-quant
quantize: $(QUANT_FILES) ## quantize OUT/model.ckpt: OUT/model-{f32,q8_0,q4_0,q4_mix}.mtq
bench-quant: $(BENCH_QUANT) $(BENCH_QUANT_TIMES) $(PLOT_QUANT) ## size, perplexity and speed per format: OUT/bench_quant.csv, plot_quant.png
