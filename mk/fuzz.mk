# Fuzzing: a libFuzzer harness for every reader of untrusted input (fuzz/fuzz_<name>.cpp), under
# ASan and UBSan. clang++ builds its own CPU-only copy of the library into build/fuzz/, so the
# main build (g++, build/) is never touched. Seeds are committed under fuzz/seeds/<name>/ and made
# by fuzz/make_seeds.cpp with the project's own writers; a run works on a copy of them in
# build/fuzz/corpus/<name>/, which grows from run to run. Needs Debian's clang (clang++ 14 or later).
#
#   make fuzz FUZZ_SECONDS=60 FUZZ_TARGETS=checkpoint,gzip   run the harnesses one after another
#   make fuzz FUZZ_RUNS=1000000 FUZZ_SECONDS=7200            each stops at 10^6 executions or 2 h
#   make fuzz-build                                           build them only
#   make fuzz-seeds                                           remake fuzz/seeds/ from the writers

FUZZ_ALL := checkpoint quant token_file tokenizer config safetensors release gzip
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
# Executions per harness after which a run stops, before FUZZ_SECONDS; empty: no such limit.
FUZZ_RUNS ?=
FUZZ_CXX ?= clang++
FUZZ_DIR := build/fuzz
fuzz_comma := ,
FUZZ_NAMES := $(strip $(subst $(fuzz_comma), ,$(FUZZ_TARGETS)))
FUZZ_GOALS := $(filter fuzz fuzz-build fuzz-seeds $(FUZZ_DIR)/%,$(MAKECMDGOALS))

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The version and ISA as the main build has them; no MINITX_CUDA: the CPU paths only.
FUZZ_CPPFLAGS := -Iinclude -DMINITX_VERSION='"$(VERSION)"' -DMINITX_ISA='"$(ISA)"' -DMINITX_BUILD_TYPE='"fuzz"'
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
                 -march=$(ISA) -ffp-contract=off -pthread
# The main build's libraries without CUDA's (and NCCL's).
FUZZ_LDLIBS := $(filter-out -L% -Wl$(fuzz_comma)% -lcu% -lnccl,$(LDLIBS))

# The library without the CLI (no harness needs it), as an archive: each harness links what it uses.
FUZZ_LIB_SRCS := $(filter-out src/cli/%,$(SRCS))
FUZZ_LIB_OBJS := $(patsubst src/%.cpp,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB := $(FUZZ_DIR)/libminitx-fuzz.a
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))

ifneq ($(FUZZ_GOALS),)
  ifneq ($(filter-out $(FUZZ_ALL),$(FUZZ_NAMES)),)
    $(error FUZZ_TARGETS: unknown harness '$(filter-out $(FUZZ_ALL),$(FUZZ_NAMES))'; the harnesses are $(FUZZ_ALL))
  endif
  ifeq ($(shell printf '%s' '$(FUZZ_SECONDS)' | grep -xE '[1-9][0-9]*'),)
    $(error FUZZ_SECONDS must be a whole number of seconds, not '$(FUZZ_SECONDS)')
  endif
  ifneq ($(FUZZ_RUNS),)
    ifeq ($(shell printf '%s' '$(FUZZ_RUNS)' | grep -xE '[1-9][0-9]*'),)
      $(error FUZZ_RUNS must be a whole number of executions, not '$(FUZZ_RUNS)')
    endif
  endif
  ifeq ($(shell command -v $(FUZZ_CXX) 2>/dev/null),)
    $(error $(FUZZ_CXX) was not found: fuzzing needs clang with libFuzzer (apt-get install clang), or FUZZ_CXX=/path/to/clang++)
  endif
  # As in build.mk: the stamp changes only when the flags do, and every object depends on it.
  FUZZ_FLAGS_NOW := $(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) $(FUZZ_LDLIBS)
  $(shell mkdir -p $(FUZZ_DIR) && { [ -f $(FUZZ_DIR)/flags.stamp ] && [ "$$(cat $(FUZZ_DIR)/flags.stamp)" = '$(FUZZ_FLAGS_NOW)' ] || printf '%s' '$(FUZZ_FLAGS_NOW)' > $(FUZZ_DIR)/flags.stamp; })
  -include $(shell find $(FUZZ_DIR)/obj $(FUZZ_DIR)/harness -name '*.d' 2>/dev/null)
endif

.PHONY: fuzz fuzz-build fuzz-seeds
fuzz-build: $(FUZZ_BINS) ## build the libFuzzer harnesses (clang++, ASan + UBSan) into build/fuzz/

fuzz: $(FUZZ_BINS) ## run each fuzz harness FUZZ_SECONDS (60) on its seeds; fails on any finding
	@FUZZ_RUNS='$(FUZZ_RUNS)' fuzz/run-fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-seeds: $(FUZZ_DIR)/make_seeds ## remake fuzz/seeds/ with the project's writers (tiny model)
	$(FUZZ_DIR)/make_seeds fuzz/seeds $(sort $(wildcard configs/*.toml))

# Kept, so that a relink does not recompile them.
.SECONDARY: $(patsubst %,$(FUZZ_DIR)/harness/fuzz_%.o,$(FUZZ_ALL)) $(FUZZ_DIR)/harness/make_seeds.o

$(FUZZ_DIR)/flags.stamp:
	@mkdir -p $(@D) && touch $@

$(FUZZ_DIR)/obj/%.o: src/%.cpp $(FUZZ_DIR)/flags.stamp | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  FUZZ  $<"
	@$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/harness/%.o: fuzz/%.cpp $(FUZZ_DIR)/flags.stamp | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  FUZZ  $<"
	@$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -Ifuzz -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS) | $(DEPS_STAMP)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/harness/fuzz_%.o $(FUZZ_LIB) | $(DEPS_STAMP)
	@echo "  LINK  $@"
	@$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined -pthread -o $@ $< $(FUZZ_LIB) $(FUZZ_LDLIBS)

# The generator is no fuzzer: it links the sanitizers and libFuzzer's hooks, not its main().
$(FUZZ_DIR)/make_seeds: $(FUZZ_DIR)/harness/make_seeds.o $(FUZZ_LIB) | $(DEPS_STAMP)
	@echo "  LINK  $@"
	@$(FUZZ_CXX) -fsanitize=address,undefined,fuzzer-no-link -pthread -o $@ $< $(FUZZ_LIB) $(FUZZ_LDLIBS)
