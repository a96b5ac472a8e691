# The experiment: CONFIG picks the TOML file, OUT where its results go. Stage fragments
# (mk/tokenizer.mk, mk/model.mk, …) add their rules and append their outputs to ARTIFACTS.

CONFIG ?= configs/default.toml
ifeq ($(wildcard $(CONFIG)),)
  $(error CONFIG=$(CONFIG): no such file; configs/ has $(notdir $(wildcard configs/*.toml)))
endif
CONFIG_NAME := $(basename $(notdir $(CONFIG)))
# OUT from the command line only: a shell's OUT (a common name; the GPU machine's job runner sets
# one to its own folder) must not move every result of the pipeline there.
ifeq ($(origin OUT),environment)
  undefine OUT
endif
OUT ?= $(if $(filter default,$(CONFIG_NAME)),out,out/$(CONFIG_NAME))
CORPUS_DIR ?= corpus
THREADS ?=
ifneq ($(THREADS),)
  ifeq ($(shell [[ '$(THREADS)' =~ ^[1-9][0-9]*$$ ]] && echo ok),)
    $(error THREADS must be a positive whole number, not '$(THREADS)')
  endif
endif
RUN = $(MINITX) $(if $(THREADS),--threads $(THREADS))

# Where training runs: auto lets the binary take a GPU when CUDA sees one (train --device auto);
# cpu or cuda asks for one. OUT/train_device.json records where it ran. The timing benchmarks
# (bench, bench-quant's speed) run on the devices DEVICE names, auto meaning the CPU and any GPU.
DEVICE ?= auto
ifeq ($(filter $(DEVICE),auto cpu cuda),)
  $(error DEVICE must be auto, cpu or cuda, not '$(DEVICE)')
endif
# GPUS=N trains on GPUs 0..N-1 over NCCL (train --gpus N). The checkpoint's bits do not depend on
# it, so it is no stamp: changing it does not retrain.
GPUS ?=
ifneq ($(GPUS),)
  ifeq ($(shell [[ '$(GPUS)' =~ ^[1-9][0-9]*$$ ]] && echo ok),)
    $(error GPUS must be a whole number of GPUs, 1 or more, not '$(GPUS)')
  endif
endif

# Values only the config knows (the corpus file, …) and one stamp per config section, each
# rewritten only when that section changes: a stage depends on the sections it reads, so
# editing [train] does not refetch the corpus or retrain the tokenizer.
STAMPS := $(OUT)/.stamps
section_stamp = $(STAMPS)/$(1).sha256
NO_CONFIG_GOALS := help clean distclean deps test-fresh test-asan test-asan-run fuzz fuzz-build fuzz-seeds sparse-study
# The device asked for, as a stamp the model depends on: DEVICE=cpu or cuda rewrites it when it
# differs (and so retrains); auto never does, whatever device it finds. A dry run (-n) writes
# nothing.
DEVICE_STAMP := $(STAMPS)/device
ifneq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
  include $(STAMPS)/config.mk
  # Make's one-letter flags are MAKEFLAGS's first word when it does not start with '-'.
  DRY_RUN := $(findstring n,$(filter-out -%,$(firstword $(MAKEFLAGS))))
  ifeq ($(DRY_RUN),)
    $(shell mkdir -p $(STAMPS) && { [ -f $(DEVICE_STAMP) ] && { [ '$(DEVICE)' = auto ] || [ "$$(cat $(DEVICE_STAMP))" = '$(DEVICE)' ]; } || printf '%s\n' '$(DEVICE)' > $(DEVICE_STAMP); })
  endif
endif

$(STAMPS)/config.mk: $(CONFIG) | $(MINITX) $(DEPS_STAMP)
	@$(MINITX) config-vars --config $(CONFIG) --out $(OUT) --corpus-dir $(CORPUS_DIR) --output $@

# Provenance: each stage records its inputs and outputs; `minitx provenance` hashes them all.
STAGES :=
STAGE_OUTPUTS :=
define stage
STAGES += $(1)
STAGE_OUTPUTS += $(3)
STAGE_IN_$(1) := $(strip $(2))
STAGE_OUT_$(1) := $(strip $(3))
endef
comma := ,
space := $(subst ,, )
stage_arg = '$(1):$(subst $(space),$(comma),$(STAGE_IN_$(1))):$(subst $(space),$(comma),$(STAGE_OUT_$(1)))'

ARTIFACTS :=         # deterministic outputs: test-idem compares them across runs
NONDETERMINISTIC :=  # outputs holding timings: packed, but not compared

# ---- corpus ---------------------------------------------------------------------------------
# The corpus depends on its pin (name + SHA-256), shared by every config naming that corpus.
$(CORPUS_FILE): $(CORPUS_PIN) | $(MINITX) $(DEPS_STAMP)
	$(RUN) fetch --config $(CONFIG) --corpus-dir $(CORPUS_DIR)
$(eval $(call stage,corpus,$(CORPUS_PIN),$(CORPUS_FILE)))

.PHONY: corpus verify-corpus
corpus: $(CORPUS_FILE) ## fetch the corpus named by CONFIG and check its pinned SHA-256
verify-corpus: $(CORPUS_FILE) ## re-hash the corpus and compare it with the pinned value
	$(RUN) verify-corpus --config $(CONFIG) --corpus-dir $(CORPUS_DIR)

.PHONY: print-corpus
print-corpus:
	@echo $(CORPUS_FILE)
