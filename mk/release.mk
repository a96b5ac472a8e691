# Provenance, the release tarball and its verification. Included after every stage fragment,
# because prerequisite lists are expanded when a rule is read.

$(OUT)/provenance.json: $(CONFIG) $(STAGE_OUTPUTS) $(ARTIFACTS) $(MINITX)
	@echo "  PROVENANCE  $@"
	@$(RUN) provenance --config $(CONFIG) --out $(OUT) --output $@ $$(grep -qs '"device": "cuda"' $(OUT)/train_device.json && echo --gpu) $(foreach s,$(STAGES),--stage $(call stage_arg,$(s)))

DIST_DIR ?= dist
DIST := $(DIST_DIR)/minitx-$(VERSION)$(if $(filter default,$(CONFIG_NAME)),,-$(CONFIG_NAME)).tar.gz
# Sources: what git tracks plus untracked files it does not ignore; in an unpacked release
# (no .git), the project's own folders.
PACK_SOURCES := $(sort $(wildcard $(shell git ls-files -co --exclude-standard 2>/dev/null || \
  find . -type f -not -path './.git/*' -not -path './build/*' -not -path './out/*' -not -path './dist/*' \
    -not -path './corpus/*' -not -path './.dev/*' -not -path './.whl/*' -not -path '*/__pycache__/*' -printf '%P\n'; \
  ls corpus/README.md 2>/dev/null)))
# The archive's timestamps: the last commit's time unless SOURCE_DATE_EPOCH is given.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
export SOURCE_DATE_EPOCH

# Timings differ from run to run by nature; test-idem (PACK_DETERMINISTIC=1) leaves them out
# of the archive it compares. Stages list such files in NONDETERMINISTIC.
PACK_EXCLUDE := $(if $(PACK_DETERMINISTIC),$(addprefix --exclude ,$(NONDETERMINISTIC)))

# Timing files are packed too (unless PACK_DETERMINISTIC), so they are made first.
$(DIST): $(PACK_SOURCES) $(ARTIFACTS) $(NONDETERMINISTIC) $(OUT)/provenance.json | $(MINITX)
	@echo "  PACK  $@ ($(words $(PACK_SOURCES)) sources + results of $(OUT))"
	@$(RUN) pack --output $@ --prefix minitx-$(VERSION) --results $(OUT) $(PACK_EXCLUDE) $(PACK_SOURCES)

.PHONY: all pack verify provenance
all: $(OUT)/provenance.json $(DIST) ## run every stage for CONFIG, record provenance and pack the release
provenance: $(OUT)/provenance.json ## write OUT/provenance.json (what produced the results)
pack: $(DIST) ## write dist/minitx-<version>[-<config>].tar.gz and its .sha256
verify: | $(MINITX) ## check the release tarball: its .sha256, safe unpacking, every manifest entry
	$(RUN) verify $(DIST)

# For scripts/test-idem.sh: the files a run must reproduce bit for bit.
.PHONY: print-artifacts
print-artifacts:
	@printf '%s\n' $(ARTIFACTS) $(OUT)/provenance.json $(DIST) $(DIST).sha256
