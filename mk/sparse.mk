# Block-sparse attention (issue 11): every pattern of minitx/sparse/layout.h timed over a range
# of T at a fixed number of tokens, with the memory each implies.
#   bench-sparse-csv: -> OUT/bench_sparse.csv (scripts/bench-sparse.sh: `minitx bench attention
#                     --device auto`; on a GPU also PyTorch's SDPA and FlexAttention on the same
#                     masks in the same run; without one, minitx's CPU rows alone)
#   bench-sparse:     the CSV -> OUT/plot_sparse_time.png, plot_sparse_memory.png (gnuplot), and
#                     the layouts' block grids -> OUT/plot_sparse_layouts.png
# The CSV needs no gnuplot, so it can be made on a GPU machine and plotted elsewhere: copied
# into OUT, it is up to date (it depends on nothing but the binary being there), and only the
# plots are drawn. SPARSE_ARGS passes options to the benchmark (e.g. SPARSE_ARGS='--T 1024,2048
# --reps 5'; `minitx bench attention --help`).

BENCH_SPARSE := $(OUT)/bench_sparse.csv
SPARSE_WORK ?= $(BUILD)/sparse
SPARSE_LAYOUTS := $(SPARSE_WORK)/layouts.dat
SPARSE_ARGS ?=
PLOT_SPARSE_TIME := $(OUT)/plot_sparse_time.png
PLOT_SPARSE_MEMORY := $(OUT)/plot_sparse_memory.png
PLOT_SPARSE_LAYOUTS := $(OUT)/plot_sparse_layouts.png
PLOTS_SPARSE := $(PLOT_SPARSE_TIME) $(PLOT_SPARSE_MEMORY) $(PLOT_SPARSE_LAYOUTS)

$(BENCH_SPARSE): | $(MINITX)
	scripts/bench-sparse.sh $@ $(SPARSE_WORK)/masks $(RUN) bench attention --device auto $(SPARSE_ARGS)

$(PLOT_SPARSE_TIME): $(BENCH_SPARSE) scripts/plot_sparse_time.gp
	gnuplot -e "table='$(BENCH_SPARSE)'; output='$@.tmp'" scripts/plot_sparse_time.gp
	mv $@.tmp $@

$(PLOT_SPARSE_MEMORY): $(BENCH_SPARSE) scripts/plot_sparse_memory.gp
	gnuplot -e "table='$(BENCH_SPARSE)'; output='$@.tmp'" scripts/plot_sparse_memory.gp
	mv $@.tmp $@

# The picture's data comes from the binary's own layouts (32 × 32 blocks), not from the CSV.
$(SPARSE_LAYOUTS): $(MINITX)
	@mkdir -p $(@D)
	$(MINITX) bench attention --layout-grid $@ --T 2048 --block 64

$(PLOT_SPARSE_LAYOUTS): $(SPARSE_LAYOUTS) scripts/plot_sparse_layouts.gp
	gnuplot -e "grid='$(SPARSE_LAYOUTS)'; output='$@.tmp'" scripts/plot_sparse_layouts.gp
	mv $@.tmp $@

# `make` does not run the benchmark; once it has run, the report shows it (and is redrawn when
# it changes) and the release packs it, as timings.
NONDETERMINISTIC += $(wildcard $(BENCH_SPARSE) $(PLOTS_SPARSE))

.PHONY: bench-sparse bench-sparse-csv
bench-sparse-csv: $(BENCH_SPARSE)
bench-sparse: $(BENCH_SPARSE) $(PLOTS_SPARSE) ## block-sparse attention per pattern and T (GPU + SDPA, Flex; or CPU): OUT/bench_sparse.csv, plot_sparse_*.png
