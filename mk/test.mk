# Tests: unit tests (doctest) and an end-to-end run of the tiny config, summed up in one line.

.PHONY: test test-unit test-gpu test-idem test-fresh coverage
test: $(MINITX) $(TEST_BIN) ## build and run the unit tests and an end-to-end run of configs/tiny.toml
	+@MINITX=$(MINITX) TEST_BIN=$(TEST_BIN) BUILD=$(BUILD) scripts/run-tests.sh

test-unit: $(TEST_BIN) ## run only the unit tests (ARGS= passes doctest options, e.g. -tc='sha256*')
	$(TEST_BIN) $(ARGS)

# The GPU tests alone. Where `make test` skips them (no CUDA build, no GPU), this target fails and
# says why: asking for the GPU tests and running none of them must not look like a pass.
# --no-skip makes doctest run them even if the test binary's own GPU check disagrees.
test-gpu: $(MINITX) $(TEST_BIN) ## run only the GPU tests (gpu: *); an error, not a skip, without CUDA or a GPU
	@if [ -z '$(USE_CUDA)' ]; then \
	  echo 'test-gpu: FAILED: this build has no CUDA ($(if $(filter 0,$(CUDA)),CUDA=0 was given,$(CUDA_MISSING))), so there are no GPU tests to run' >&2; \
	  exit 1; fi
	@if $(MINITX) info | grep -qE '^gpu +none visible'; then \
	  echo 'test-gpu: FAILED: no GPU is visible to CUDA on this machine (cudaGetDeviceCount found none); run it where one is' >&2; \
	  exit 1; fi
	$(TEST_BIN) -tc='gpu: *' --no-skip

# A timing harness for the CUDA ops (tests/bench_cuda_ops.cu); timings only, on a GPU.
.PHONY: bench-cuda
bench-cuda: $(BUILD)/bench-cuda-ops ## time the CUDA ops at GPT-2-small shapes (needs a GPU)
	$(BUILD)/bench-cuda-ops

$(BUILD)/bench-cuda-ops: tests/bench_cuda_ops.cu $(LIB_OBJS) $(FLAGS_STAMP) | $(DEPS_STAMP)
	@if [ -z '$(USE_CUDA)' ]; then echo 'bench-cuda: this build has no CUDA' >&2; exit 1; fi
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) $(filter -D%,$(CPPFLAGS)) -o $@ $< $(LIB_OBJS) $(filter-out -Wl% -L%,$(LDLIBS)) -L$(CUDA_LIBDIR) -Xlinker -rpath,$(CUDA_LIBDIR)

# test-idem uses configs/tiny.toml unless CONFIG is given on the command line.
IDEM_CONFIG := $(if $(filter file,$(origin CONFIG)),configs/tiny.toml,$(CONFIG))
test-idem: $(MINITX) ## run the pipeline twice (and once with other THREADS) and compare every artifact
	+@MINITX=$(abspath $(MINITX)) scripts/test-idem.sh $(IDEM_CONFIG)

COVERAGE_MIN ?= 90
coverage: ## line coverage of src/ by `make test` (gcovr); fails under COVERAGE_MIN percent
	find build/coverage -name '*.gcda' -delete 2>/dev/null || true
	$(MAKE) --no-print-directory BUILD_TYPE=coverage test
	gcovr --root . --filter 'src/' --object-directory build/coverage/obj --exclude-unreachable-branches \
	  --print-summary --txt build/coverage/coverage.txt --fail-under-line $(COVERAGE_MIN) build/coverage/obj
	@sed -n '1,200p' build/coverage/coverage.txt | tail -n 40

test-fresh: ## in a fresh Debian 12 chroot (debootstrap minbase), a clean clone runs `make` (tiny) and `make test`
	+@scripts/test-fresh.sh
