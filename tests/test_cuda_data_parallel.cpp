// Data parallelism on the GPU: micro-batches summed by the tree on the device, N ranks as threads
// on one GPU against one rank bit for bit (fp32 and bf16), resume with another N, the NCCL
// transport with one GPU, and the refusals. On a machine without a GPU these are skipped.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "architectures.h"
#include "data_parallel_util.h"
#include "gpu.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/data_parallel.h"
#include "minitx/model/params.h"
#include "minitx/model/train.h"
#include "minitx/model/train_engine.h"

#if MINITX_CUDA
#include <cuda_runtime_api.h>

#include "minitx/backend/cuda/check.h"
#include "minitx/backend/cuda/nccl_collective.h"
#endif

using namespace minitx;
namespace fs = std::filesystem;

namespace {

// Head size 64 (the bf16 attention kernel's), and enough parameters (about 420 thousand: over a
// hundred norm chunks) that four shards each hold many and cut tensors.
ModelConfig gpu_dp_model() { return test::small_config(16); }

TrainConfig gpu_dp_train(std::size_t steps, std::size_t micro_batches) {
  return test::dp_train_config(steps, micro_batches, 16);
}

const std::vector<std::uint32_t>& data() {
  static const std::vector<std::uint32_t> ids = test::random_ids(6000, gpu_dp_model().vocab_size, 5);
  return ids;
}

// A whole train_model run on the GPU; the checkpoint's bytes (empty when it stopped early).
std::string gpu_run(const fs::path& dir, const TrainConfig& t, const std::string& precision, TrainOptions options) {
  TrainInputs in{&data(), &data(), std::string(64, 'a'), std::string(64, 'b')};
  TrainOutputs out{dir / "model.ckpt", dir / "train_log.csv", dir / "train_times.csv", dir / "train_device.json",
                   dir / "resume"};
  options.progress = false;
  options.device = "cuda";
  options.precision = precision;
  train_model(gpu_dp_model(), t, in, out, options);
  return fs::exists(out.checkpoint) ? read_file(out.checkpoint) : std::string();
}

TrainOptions ranks(std::size_t simulated, std::size_t gpus = 0) {
  TrainOptions o;
  o.simulated_ranks = simulated;
  o.gpus = gpus;
  return o;
}

TrainState initial_state(const ModelConfig& m) { return test::seeded_state(m, 3); }

}  // namespace

GPU_TEST_CASE("data parallel: 1, 2 and 4 simulated ranks on the GPU write the same checkpoint bytes") {
  REQUIRE(param_count(gpu_dp_model()) > 4 * kShardChunk);
  for (const char* precision : {"fp32", "bf16"}) {
    CAPTURE(precision);
    const TrainConfig tc = gpu_dp_train(7, 4);
    TempDir a, b, c, d;
    const std::string one = gpu_run(a.path(), tc, precision, ranks(1));
    REQUIRE(!one.empty());
    CHECK(read_checkpoint(a.path() / "model.ckpt").device == "cuda");
    CHECK(gpu_run(b.path(), tc, precision, ranks(2)) == one);
    CHECK(gpu_run(c.path(), tc, precision, ranks(4)) == one);
    // Stopped after 4 steps on 4 ranks, finished on 2: the same bytes.
    TrainOptions four = ranks(4);
    four.stop_after = 4;
    CHECK(gpu_run(d.path(), tc, precision, four).empty());
    TrainOptions two = ranks(2);
    two.resume = d.path() / "resume" / "model.ckpt";
    CHECK(gpu_run(d.path(), tc, precision, two) == one);
  }
}

GPU_TEST_CASE("data parallel: 8 simulated GPU ranks give one rank's losses, norms and state, bit for bit") {
  ModelConfig m = gpu_dp_model();
  const std::size_t P = param_count(m);
  // 8 ranks over 8 micro-batches (one each: the tree over ranks is the whole tree), the engine
  // directly: every step's stats compared, not only the final state.
  REQUIRE(shard_plan(P, 8).back().size() > 0);
  TrainConfig tc = gpu_dp_train(3, 8);
  std::vector<std::uint32_t> ids(tc.batch_size * tc.seq_len), targets(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = data()[i], targets[i] = data()[i + 1];
  const auto run = [&](std::size_t n) {
    auto engine = make_cuda_engine(m, "fp32", tc.batch_size, tc.seq_len, initial_state(m), GpuParallel{8, n, false});
    std::vector<double> stats;
    for (std::size_t step = 0; step < tc.steps; ++step) {
      const StepStats s = engine->forward_backward(ids.data(), targets.data());
      engine->update(tc, 1e-3, s, step + 1);
      stats.push_back(s.loss);
      stats.push_back(s.norm);
    }
    TrainState st = engine->state();
    return std::pair{stats, st};
  };
  const auto [s1, st1] = run(1);
  const auto [s8, st8] = run(8);
  CHECK(std::memcmp(s1.data(), s8.data(), s1.size() * sizeof(double)) == 0);
  CHECK(st1.params == st8.params);
  CHECK(st1.m == st8.m);
  CHECK(st1.v == st8.v);
}

GPU_TEST_CASE("data parallel: micro-batches on the GPU track the whole batch (another summation order)") {
  const ModelConfig m = gpu_dp_model();
  const TrainConfig whole = gpu_dp_train(3, 1), micro = gpu_dp_train(3, 4);
  std::vector<std::uint32_t> ids(whole.batch_size * whole.seq_len), targets(ids.size());
  auto a = make_cuda_engine(m, "fp32", whole.batch_size, whole.seq_len, initial_state(m));
  auto b = make_cuda_engine(m, "fp32", whole.batch_size, whole.seq_len, initial_state(m), GpuParallel{4, 1, false});
  for (std::size_t step = 0; step < whole.steps; ++step) {
    for (std::size_t b_ = 0; b_ < whole.batch_size; ++b_)
      for (std::size_t t = 0; t < whole.seq_len; ++t) {
        const std::size_t s0 = batch_start(whole, step, b_, data().size(), whole.seq_len);
        ids[b_ * whole.seq_len + t] = data()[s0 + t];
        targets[b_ * whole.seq_len + t] = data()[s0 + t + 1];
      }
    const StepStats sa = a->forward_backward(ids.data(), targets.data());
    const StepStats sb = b->forward_backward(ids.data(), targets.data());
    CAPTURE(step);
    CHECK(sb.loss == doctest::Approx(sa.loss).epsilon(1e-5));
    CHECK(sb.norm == doctest::Approx(sa.norm).epsilon(1e-4));
    a->update(whole, learning_rate_at(whole, step), sa, step + 1);
    b->update(micro, learning_rate_at(micro, step), sb, step + 1);
  }
  // As the GPU-against-CPU test compares them (test_cuda_train.cpp): the first moment everywhere,
  // the parameters where the gradient is not negligible (AdamW moves a weight by about lr
  // whatever its gradient, so a rounding can flip a near-zero gradient's step).
  const TrainState pa = a->state(), pb = b->state();
  double m_scale = 0.0;
  for (float x : pa.m) m_scale = std::max(m_scale, static_cast<double>(std::fabs(x)));
  REQUIRE(m_scale > 0.0);
  double worst_m = 0.0, worst_p = 0.0;
  for (std::size_t i = 0; i < pa.m.size(); ++i) {
    worst_m = std::max(worst_m, std::fabs(static_cast<double>(pa.m[i]) - pb.m[i]) / m_scale);
    if (std::fabs(pa.m[i]) > 1e-2 * m_scale)
      worst_p = std::max(worst_p, std::fabs(static_cast<double>(pa.params[i]) - pb.params[i]));
  }
  CHECK(worst_m < 1e-4);
  CHECK(worst_p < 0.1 * whole.learning_rate);
  CHECK(pa.m != pb.m);  // not the same bits: the sums are ordered differently
}

GPU_TEST_CASE("data parallel: a GPU rank that fails stops the others, and the error names it") {
  const ModelConfig m = gpu_dp_model();
  const std::size_t B = 8, T = 16;
  auto engine = make_cuda_engine(m, "fp32", B, T, initial_state(m), GpuParallel{4, 2, false});
  std::vector<std::uint32_t> ids(B * T, 1), targets(B * T, 2);
  targets[7 * T + 3] = 999;  // in the last micro-batch: rank 1's
  CHECK_THROWS_WITH_AS(engine->forward_backward(ids.data(), targets.data()), doctest::Contains("rank 1 of 2 failed: "),
                       Error);
  CHECK_THROWS_WITH_AS(engine->forward_backward(ids.data(), targets.data()), doctest::Contains("rank 1 of 2 failed: "),
                       Error);
}

GPU_TEST_CASE("data parallel: --gpus 1 (NCCL) writes the bytes of one simulated rank") {
  const TrainConfig tc = gpu_dp_train(5, 2);
  TempDir a, b;
  const std::string simulated = gpu_run(a.path(), tc, "bf16", ranks(1));
  REQUIRE(!simulated.empty());
  CHECK(gpu_run(b.path(), tc, "bf16", ranks(1, 1)) == simulated);
#if MINITX_CUDA
  if (cuda::nccl_built()) {
    const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
    REQUIRE(nvls != nullptr);
    CHECK(std::string(nvls) == "0");
  }
#endif
}

GPU_TEST_CASE("data parallel: --gpus beyond the visible GPUs is refused before anything is allocated") {
  // A valid layout otherwise (a power of two dividing micro_batches, which divides the batch), so
  // that the GPU count is what is refused, on a machine of any size.
  const std::size_t visible = cuda_devices().size(), want = std::bit_ceil(visible + 1);
  TrainConfig tc = gpu_dp_train(2, want);
  tc.batch_size = std::max<std::size_t>(tc.batch_size, want);
  TempDir dir;
  const std::string message = fmt::format("--gpus {} needs {} GPUs, but this machine has {} visible", want, want,
                                          visible);
  CHECK_THROWS_WITH_AS(gpu_run(dir.path(), tc, "fp32", ranks(1, want)), doctest::Contains(message.c_str()), Error);
  CHECK(!fs::exists(dir.path() / "model.ckpt"));
}

// The test: N GPUs over NCCL against one rank with the same micro-batches. Skipped (and
// counted so) on a machine with fewer GPUs; every N the machine has, up to 8, when it has them.
// "multi-gpu: ", not "gpu: ": make test-gpu runs the GPU tests with --no-skip, which would run
// these on one GPU; make test-gpu runs them apart, skipped (and counted so) below two GPUs.
TEST_CASE("multi-gpu: data parallel: --gpus 2, 4 and 8 (NCCL) write the bytes of one rank" *
          doctest::skip(cuda_devices().size() < 2)) {
  REQUIRE(cuda_devices().size() >= 2);
  const TrainConfig tc = gpu_dp_train(7, 8);
  for (const char* precision : {"fp32", "bf16"}) {
    CAPTURE(precision);
    TempDir one_dir;
    const std::string one = gpu_run(one_dir.path(), tc, precision, ranks(1));
    REQUIRE(!one.empty());
    for (std::size_t n = 2; n <= std::min<std::size_t>(8, cuda_devices().size()); n *= 2) {
      CAPTURE(n);
      TempDir dir, resumed;
      CHECK(gpu_run(dir.path(), tc, precision, ranks(1, n)) == one);
      // Stopped after 4 steps on n GPUs, finished on one: the same bytes.
      TrainOptions first = ranks(1, n);
      first.stop_after = 4;
      CHECK(gpu_run(resumed.path(), tc, precision, first).empty());
      TrainOptions rest = ranks(1);
      rest.resume = resumed.path() / "resume" / "model.ckpt";
      CHECK(gpu_run(resumed.path(), tc, precision, rest) == one);
    }
  }
}

TEST_CASE("multi-gpu: data parallel: a bad batch over NCCL is refused before any rank starts, and the run goes on" *
          doctest::skip(cuda_devices().size() < 2)) {
  REQUIRE(cuda_devices().size() >= 2);
  const ModelConfig m = gpu_dp_model();
  const std::size_t B = 8, T = 16;
  auto engine = make_cuda_engine(m, "fp32", B, T, initial_state(m), GpuParallel{4, 2, true});
  std::vector<std::uint32_t> ids(B * T, 1), targets(B * T, 2);
  targets[7 * T + 3] = 999;
  CHECK_THROWS_WITH_AS(engine->forward_backward(ids.data(), targets.data()), doctest::Contains("training targets"),
                       Error);
  targets[7 * T + 3] = 2;
  const StepStats s = engine->forward_backward(ids.data(), targets.data());
  CHECK(std::isfinite(s.loss));
}

#if MINITX_CUDA
TEST_CASE("gpu: data parallel: the NCCL transport moves exact bytes on one GPU" *
          doctest::skip(!test::has_gpu() || !cuda::nccl_built())) {
  cudaStream_t stream = nullptr;
  MINITX_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    auto comms = cuda::make_nccl_collectives({0}, {stream});
    REQUIRE(comms.size() == 1);
    Collective& c = *comms[0];
    CHECK(c.rank() == 0);
    CHECK(c.size() == 1);
    const std::vector<float> host{1.5f, -2.25f, 3e-38f, 7.0f};
    float* in = nullptr;
    float* out = nullptr;
    MINITX_CUDA_CHECK(cudaMalloc(&in, 4 * sizeof(float)));
    MINITX_CUDA_CHECK(cudaMalloc(&out, 4 * sizeof(float)));
    MINITX_CUDA_CHECK(cudaMemcpy(in, host.data(), 4 * sizeof(float), cudaMemcpyHostToDevice));
    const auto back = [&](const float* p) {
      std::vector<float> v(4);
      MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));
      MINITX_CUDA_CHECK(cudaMemcpy(v.data(), p, 4 * sizeof(float), cudaMemcpyDeviceToHost));
      return v;
    };
    c.all_gather(in, out, 4 * sizeof(float));
    CHECK(back(out) == host);
    MINITX_CUDA_CHECK(cudaMemset(out, 0, 4 * sizeof(float)));
    const std::vector<std::span<const std::byte>> send{std::as_bytes(std::span<const float>(in, 4))};
    const std::vector<std::span<std::byte>> recv{std::as_writable_bytes(std::span<float>(out, 4))};
    c.exchange(send, recv);
    CHECK(back(out) == host);
    c.broadcast(out, 4 * sizeof(float), 0);
    c.barrier();
    CHECK(back(out) == host);
    CHECK(c.aborted_why().empty());
    const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
    REQUIRE(nvls != nullptr);
    CHECK(std::string(nvls) == "0");
    // Aborted, the group refuses every later call at once, naming the rank and the operation.
    c.abort("test abort");
    CHECK(c.aborted_why() == "test abort");
    CHECK_THROWS_WITH_AS(c.barrier(), doctest::Contains("nccl barrier on rank 0 of 1: the group stopped: test abort"),
                         Error);
    cudaFree(in);
    cudaFree(out);
  }
  cudaStreamDestroy(stream);
}
#endif
