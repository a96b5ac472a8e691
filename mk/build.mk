# Build: one binary, build/minitx, plus the unit-test binary. Header dependencies come from
# -MMD -MP; a stamp of the flags rebuilds everything when the flags change.

BUILD_TYPE ?= release
ifeq ($(filter $(BUILD_TYPE),release debug asan coverage),)
  $(error BUILD_TYPE must be release, debug, asan or coverage, not '$(BUILD_TYPE)')
endif
BUILD := build$(if $(filter release,$(BUILD_TYPE)),,/$(BUILD_TYPE))

CXX ?= g++
# A fixed ISA level, never -march=native: two machines running one binary get the same bits.
ISA := x86-64-v3
CXXSTD := -std=c++20
CPPFLAGS := -Iinclude -DMINITX_VERSION='"$(VERSION)"' -DMINITX_ISA='"$(ISA)"' -DMINITX_BUILD_TYPE='"$(BUILD_TYPE)"'
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror=return-type
OPT_release := -O2
OPT_debug := -O0 -g -fsanitize=address,undefined
# What `make test-asan` runs, where the build is most of the time: debug's sanitizers at -Og with
# line tables only (-g1) build in half the time of -O1 -g (8 against 16 minutes, side by side on
# one loaded two-core machine) and run the tests within a tenth of its time; frame pointers keep
# the stacks in reports whole. UBSan stops at its first report instead of carrying on.
OPT_asan := -Og -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
OPT_coverage := -O0 -g --coverage -fprofile-update=atomic
# -ffp-contract=off: FMA contraction is chosen explicitly in kernels, not by the optimiser,
# so that the same source gives the same bits at every optimisation level.
CXXFLAGS := $(CXXSTD) -march=$(ISA) -ffp-contract=off -pthread $(WARN) $(OPT_$(BUILD_TYPE))
LDFLAGS := -pthread $(filter -fsanitize=% --coverage,$(OPT_$(BUILD_TYPE)))
LDLIBS := -lfmt -lcrypto -lz

# CUDA: auto builds the .cu sources when nvcc and the CUDA runtime and cuBLAS libraries are
# found, 0 never, 1 requires them. nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc that
# execs the real one), so the toolkit's root is asked of nvcc itself (its --dryrun TOP), never
# guessed from where the first nvcc on PATH lives.
CUDA ?= auto
ifeq ($(filter $(CUDA),auto 0 1),)
  $(error CUDA must be auto, 0 or 1, not '$(CUDA)')
endif
ifneq ($(CUDA),0)
  NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
  ifneq ($(NVCC),)
    CUDA_HOME ?= $(realpath $(shell $(NVCC) --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/.* TOP=//p' | head -n 1))
    # The first directory holding the libraries wins; the toolkit's own layout comes first.
    CUDA_LIBDIR ?= $(firstword $(foreach d,$(CUDA_HOME)/targets/x86_64-linux/lib $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib,$(if $(and $(wildcard $(d)/libcudart.so),$(wildcard $(d)/libcublas.so),$(wildcard $(d)/libcublasLt.so)),$(d),)))
  endif
  CUDA_MISSING := $(if $(NVCC),$(if $(CUDA_HOME),$(if $(CUDA_LIBDIR),,libcudart.so, libcublas.so and libcublasLt.so were not found under $(CUDA_HOME)),nvcc at $(NVCC) did not report its toolkit root),nvcc was not found)
  ifneq ($(CUDA_MISSING),)
    ifeq ($(CUDA),1)
      $(error CUDA=1 but $(CUDA_MISSING): install the CUDA Toolkit with cuBLAS, or set NVCC=/path/to/nvcc)
    endif
    ifneq ($(NVCC),)
      $(info note: building for the CPU only: $(CUDA_MISSING) (CUDA=1 makes this an error))
    endif
  endif
endif
USE_CUDA := $(if $(filter 0,$(CUDA)),,$(if $(CUDA_MISSING),,1))
ifeq ($(USE_CUDA),1)
  CUDA_ARCH ?= sm_90
  NVCCFLAGS := -std=c++20 -O2 -arch=$(CUDA_ARCH) -Iinclude -Xcompiler -march=$(ISA),-pthread,-ffp-contract=off
  CPPFLAGS += -DMINITX_CUDA=1 -I$(CUDA_HOME)/include
  # The run path lets the binary find the toolkit's libraries without LD_LIBRARY_PATH or ldconfig.
  LDLIBS += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas -lcudart -ldl -lrt
  CUDA_SRCS := $(shell find src -name '*.cu' | LC_ALL=C sort)
  # NCCL, the transport of `train --gpus N`: used when nccl.h is beside the CUDA headers and
  # libnccl.so in CUDA's library directory or the system's. Without it, --gpus > 1 is refused.
  NCCL_LIBDIR := $(firstword $(foreach d,$(CUDA_LIBDIR) /usr/lib/x86_64-linux-gnu,$(if $(wildcard $(d)/libnccl.so),$(d),)))
  USE_NCCL := $(if $(and $(wildcard $(CUDA_HOME)/include/nccl.h),$(NCCL_LIBDIR)),1,)
  ifneq ($(USE_NCCL),1)
    $(info note: building without NCCL (nccl.h beside the CUDA headers and libnccl.so were not both found): train --gpus above 1 will be refused)
  endif
endif

SRCS := $(shell find src -name '*.cpp' | LC_ALL=C sort)
LIB_OBJS := $(patsubst src/%.cpp,$(BUILD)/obj/%.o,$(filter-out src/cli/main.cpp,$(SRCS))) \
            $(patsubst src/%.cu,$(BUILD)/obj/%.cu.o,$(CUDA_SRCS))
MAIN_OBJ := $(BUILD)/obj/cli/main.o
TEST_SRCS := $(shell find tests -name '*.cpp' | LC_ALL=C sort)
TEST_OBJS := $(patsubst tests/%.cpp,$(BUILD)/obj/tests/%.o,$(TEST_SRCS))

MINITX ?= $(BUILD)/minitx
TEST_BIN := $(BUILD)/minitx-tests

# Rewrite the stamp only when the flags differ, so an unchanged build stays up to date.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_NOW := $(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LDFLAGS) $(LDLIBS) | $(NVCC) $(NVCCFLAGS)
ifneq ($(filter-out help clean distclean deps test-fresh test-asan,$(or $(MAKECMDGOALS),all)),)
  $(shell mkdir -p $(BUILD) && { [ -f $(FLAGS_STAMP) ] && [ "$$(cat $(FLAGS_STAMP))" = '$(FLAGS_NOW)' ] || printf '%s' '$(FLAGS_NOW)' > $(FLAGS_STAMP); })
endif

# NCCL's define reaches the one object that includes nccl.h, and its library the links, with a
# stamp of their own (outside FLAGS_NOW): finding or losing NCCL rebuilds that object and relinks,
# rather than rebuilding every object.
NCCL_OBJ := $(BUILD)/obj/backend/cuda/nccl_collective.o
NCCL_STAMP := $(BUILD)/nccl.stamp
NCCL_NOW := $(if $(USE_NCCL),$(NCCL_LIBDIR),none)
ifneq ($(filter-out help clean distclean deps test-fresh test-asan,$(or $(MAKECMDGOALS),all)),)
  $(shell mkdir -p $(BUILD) && { [ -f $(NCCL_STAMP) ] && [ "$$(cat $(NCCL_STAMP))" = '$(NCCL_NOW)' ] || printf '%s' '$(NCCL_NOW)' > $(NCCL_STAMP); })
endif
$(NCCL_OBJ): $(NCCL_STAMP)
ifeq ($(USE_NCCL),1)
  $(NCCL_OBJ): CPPFLAGS += -DMINITX_NCCL=1
  LDLIBS += -L$(NCCL_LIBDIR) -lnccl
endif

.PHONY: build
build: $(MINITX) ## build build/minitx (CPU, plus CUDA when nvcc is found)

# The binaries are linked by a nested make, so that a plain `make` (no -j) still compiles with one
# job per core while the pipeline's own steps stay one at a time (its benchmarks must have the CPU
# to themselves). Under `make -jN` the nested make shares the caller's job slots instead. Make 4.3
# shows -j to recipes only, not while it reads the makefiles, hence the test in the recipe. The
# nested make decides what is out of date, so the recipe runs every time and is a no-op when
# nothing changed; Make re-reads the binary's time afterwards, so later stages rerun only if it was
# relinked. Every target made of LIB_OBJS goes through it, one after another (minitx first), so
# that two makes never compile the same object at once.
NPROC := $(shell nproc 2>/dev/null || echo 1)
nested_build = +@jobs=; [[ " $$MAKEFLAGS " == *" -j"* || "$$MAKEFLAGS" == *jobserver* ]] || jobs=-j$(NPROC); \
  $(MAKE) --no-print-directory -s $$jobs MINITX_NESTED_BUILD=1 $@

ifeq ($(MINITX_NESTED_BUILD),)
.PHONY: nested-build-always
$(BUILD)/minitx: nested-build-always | $(DEPS_STAMP)
	$(nested_build)

$(TEST_BIN): $(BUILD)/minitx nested-build-always | $(DEPS_STAMP)
	$(nested_build)
else
$(BUILD)/minitx: $(MAIN_OBJ) $(LIB_OBJS) | $(DEPS_STAMP)
	@echo "  LINK  $@$(if $(USE_CUDA), (CUDA $(CUDA_ARCH)),)"
	@$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TEST_BIN): $(TEST_OBJS) $(LIB_OBJS) | $(DEPS_STAMP)
	@echo "  LINK  $@"
	@$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)
endif

$(BUILD)/obj/%.o: src/%.cpp $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CXX   $<"
	@$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.cpp $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CXX   $<"
	@$(CXX) $(CPPFLAGS) $(CXXFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.cu.o: src/%.cu $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) $(filter -D%,$(CPPFLAGS)) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

.PHONY: clean distclean
clean: ## remove build/ and dist/ (results in out/ and the corpus stay)
	rm -rf build dist

distclean: ## remove everything generated: build/, out/, dist/, corpus/ (cache included)
	rm -rf build out dist
	find corpus -mindepth 1 ! -name README.md -exec rm -rf {} +
