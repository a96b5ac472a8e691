# The block-sparse attention study (issue 11): each model of STUDY_MODELS trained dense and with
# every attention pattern for STUDY_STEPS steps from the same start, then gathered beside dense.
#   make sparse-study [STUDY_MODELS="pythia-70m opt-125m"] [STUDY_STEPS=500] [STUDY_DEVICE=auto]
# -> out/sparse-study/<model>-<pattern>/ (each run's logs), out/sparse_study.csv,
#    out/plot_sparse_study.png and out/plot_sparse_attention_<model>.png (heatmaps of each run's
#    attention over the same text). Sized for one GPU (minutes on an H200); on the CPU these models
# take hours, so without a GPU the script says so and stops unless STUDY_DEVICE=cpu asks for it.

STUDY_MODELS ?= pythia-70m opt-125m
STUDY_STEPS ?= 500
STUDY_DEVICE ?= auto
STUDY_DIR := out/sparse-study
STUDY_CSV := out/sparse_study.csv
STUDY_PLOT := out/plot_sparse_study.png

.PHONY: sparse-study
sparse-study: | $(MINITX) ## train each STUDY_MODELS dense and with every attention pattern: out/sparse_study.csv, plot
	@for m in $(STUDY_MODELS); do $(MAKE) --no-print-directory CONFIG=configs/$$m.toml tokenizer || exit 1; done
	scripts/sparse-study.sh $(MINITX) $(STUDY_DEVICE) $(STUDY_STEPS) $(STUDY_DIR) $(STUDY_MODELS)
	scripts/sparse-study-report.sh $(STUDY_DIR) $(STUDY_CSV)
	gnuplot -e "study='$(STUDY_CSV)'; dir='$(STUDY_DIR)'; output='$(STUDY_PLOT).tmp'" scripts/plot_sparse_study.gp
	mv $(STUDY_PLOT).tmp $(STUDY_PLOT)
	scripts/plot-study-attention.sh $(STUDY_DIR) out $(STUDY_MODELS)
