# Tests: unit tests (doctest) and an end-to-end run of the tiny config, summed up in one line.

.PHONY: test test-asan test-asan-run test-unit test-gpu test-idem test-fresh coverage
test: $(MINITX) $(TEST_BIN) ## build and run the unit tests and an end-to-end run of configs/tiny.toml
	+@MINITX=$(MINITX) TEST_BIN=$(TEST_BIN) BUILD=$(BUILD) scripts/run-tests.sh

# make test-asan: the tests again, against the ASan + UBSan build (BUILD_TYPE=asan, build/asan/);
# any sanitizer report fails it (scripts/test-asan.sh says how). CPU only: the sanitizers do not
# see into GPU kernels, so the GPU tests are not built. It has to fit CI (.ci/run: 30 minutes on
# two cores, and the build alone takes about four), so it runs less than make test:
#  - the unit tests once, with the kernels chosen for this CPU, not again with MINITX_GEMM_ISA=avx2:
#    the AVX2 kernels are checked against the AVX-512 ones by the unit tests themselves;
#  - tests/e2e.sh, e2e_report.sh and e2e_bench_sparse.sh, which between them run every stage of
#    the pipeline and so every reader and writer: corpus and npm cache, tokenizer.json, token
#    files, checkpoints, train logs, eval.json, .mtq files, the bench and sparse CSVs, the report,
#    the release tarball and verify, safetensors import and export, standard output;
#  - not tests/e2e_interrupt.sh (one to two minutes more under ASan): it kills the trainer and
#    Make at each fault point and checks what Make does next, and the files it touches
#    (checkpoints, logs, resume state) are written and read by e2e.sh and the unit tests already.
ASAN_E2E := e2e e2e_report e2e_bench_sparse
test-asan: ## run the unit tests and most end-to-end checks under ASan + UBSan (build/asan/); fails on any report
	+@$(MAKE) --no-print-directory BUILD_TYPE=asan CUDA=0 test-asan-run

test-asan-run: $(MINITX) $(TEST_BIN)
	@if [ '$(BUILD_TYPE)' != asan ]; then echo 'test-asan-run: run make test-asan' >&2; exit 1; fi
	+@MINITX=$(MINITX) TEST_BIN=$(TEST_BIN) BUILD=$(BUILD) CXX='$(CXX)' SANITIZE='$(filter -fsanitize% -fno-sanitize%,$(OPT_asan))' \
	  E2E_SCRIPTS='$(ASAN_E2E)' AVX2_PASS=0 scripts/test-asan.sh

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
	@# The tests that need two GPUs or more: skipped, and counted so, on a machine with fewer.
	$(TEST_BIN) -tc='multi-gpu: *'

# A timing harness for the CUDA ops (tests/bench_cuda_ops.cu); timings only, on a GPU.
.PHONY: bench-cuda
bench-cuda: $(BUILD)/bench-cuda-ops ## time the CUDA ops at GPT-2-small shapes (needs a GPU)
	$(BUILD)/bench-cuda-ops

ifeq ($(MINITX_NESTED_BUILD),)
$(BUILD)/bench-cuda-ops: $(MINITX) nested-build-always | $(DEPS_STAMP)
	$(nested_build)
else
$(BUILD)/bench-cuda-ops: tests/bench_cuda_ops.cu $(LIB_OBJS) $(FLAGS_STAMP) | $(DEPS_STAMP)
	@if [ -z '$(USE_CUDA)' ]; then echo 'bench-cuda: this build has no CUDA' >&2; exit 1; fi
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) $(filter -D%,$(CPPFLAGS)) -o $@ $< $(LIB_OBJS) $(filter-out -Wl% -L%,$(LDLIBS)) -L$(CUDA_LIBDIR) -Xlinker -rpath,$(CUDA_LIBDIR)
endif

# test-idem uses configs/tiny.toml unless CONFIG is given on the command line; DEVICE goes to
# every run (DEVICE=cuda on a GPU machine leaves out the CPU's timing benchmarks, minutes there).
IDEM_CONFIG := $(if $(filter file,$(origin CONFIG)),configs/tiny.toml,$(CONFIG))
test-idem: $(MINITX) ## run the pipeline twice (and once with other THREADS) and compare every artifact
	+@MINITX=$(abspath $(MINITX)) IDEM_DEVICE=$(DEVICE) scripts/test-idem.sh $(IDEM_CONFIG)

COVERAGE_MIN ?= 90
coverage: ## line coverage of src/ by `make test` (gcovr); fails under COVERAGE_MIN percent
	find build/coverage -name '*.gcda' -delete 2>/dev/null || true
	$(MAKE) --no-print-directory BUILD_TYPE=coverage test
	gcovr --root . --filter 'src/' --object-directory build/coverage/obj --exclude-unreachable-branches \
	  --print-summary --txt build/coverage/coverage.txt --fail-under-line $(COVERAGE_MIN) build/coverage/obj
	@sed -n '1,200p' build/coverage/coverage.txt | tail -n 40

test-fresh: ## in a fresh Debian 12 chroot (debootstrap minbase), a clean clone runs `make` (tiny) and `make test`
	+@scripts/test-fresh.sh
