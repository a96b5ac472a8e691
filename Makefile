# minitx — the experiment graph. `make help` lists the targets.
#
# Each stage of the pipeline is one subcommand of build/minitx that writes its outputs under a
# temporary name and renames them into place when complete, so Make only ever sees finished files.
# The fragments in mk/ hold the build, the pipeline stages, the release and the tests.

.DEFAULT_GOAL := all
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

VERSION := $(shell cat VERSION)

# Names that rules in several fragments use as prerequisites. Make expands a rule's
# prerequisites when it reads the rule, so these must exist before any fragment is read:
# a name defined later would silently expand to nothing (tests/make_graph.sh checks this).
DEPS_STAMP := build/deps.stamp

include mk/deps.mk
include mk/build.mk
include mk/pipeline.mk
# The stages after the corpus, in pipeline order; each fragment owns its rules.
include $(wildcard mk/tokenizer.mk mk/model.mk mk/quant.mk mk/sparse.mk)
include mk/report.mk
include mk/release.mk
include mk/test.mk
include mk/fuzz.mk
include mk/study.mk

.PHONY: help
help: ## list the targets with one line each
	@printf 'minitx %s — targets (CONFIG=%s, OUT=%s):\n' '$(VERSION)' '$(CONFIG)' '$(OUT)'
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
	  awk -F':.*## ' '{ printf "  %-14s %s\n", $$1, $$2 }'
	@printf '\nVariables: CONFIG=configs/x.toml  THREADS=N  DEVICE=auto|cpu|cuda  CUDA=auto|0|1  BUILD_TYPE=release|debug|asan|coverage\n'
