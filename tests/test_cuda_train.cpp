// Whole training steps on the GPU against the CPU engine: fp32 steps agree to rounding for every
// architecture (loss, gradient norm, AdamW's first moment, which is 0.1 × the clipped
// gradient), the bf16 loss curve tracks the CPU's, and two GPU runs give the same bits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "minitx/model/train_engine.h"
#include "architectures.h"
#include "gpu.h"
#include "minitx/core/rng.h"
#include "minitx/model/params.h"

using namespace minitx;

namespace {

// Odd sizes on purpose: T is not a multiple of the attention tile, V not a multiple of 64. Head
// size 64, so the bf16 attention kernel takes it too.
ModelConfig base_config() { return test::small_config(80); }

std::vector<std::pair<const char*, ModelConfig>> variants() {
  std::vector<std::pair<const char*, ModelConfig>> out = test::architectures(base_config());
  const ModelConfig opt = out[1].second, neox = out[2].second;
  // Block-sparse patterns at block 16, so T = 64..80 spans several blocks and each drops some.
  using Kind = sparse::AttentionPattern::Kind;
  ModelConfig local = base_config();
  local.attention.kind = Kind::local;
  local.attention.block = 16;
  local.attention.window = 2;
  out.emplace_back("gpt2-local", local);
  ModelConfig bigbird = neox;
  bigbird.attention.kind = Kind::bigbird;
  bigbird.attention.block = 16;
  bigbird.attention.window = 1;
  bigbird.attention.random_blocks = 1;
  bigbird.attention.per_head = true;
  out.emplace_back("neox-bigbird-per-head", bigbird);
  ModelConfig longformer = opt;
  longformer.attention.kind = Kind::longformer;
  longformer.attention.block = 16;
  longformer.attention.window = 1;
  longformer.attention.global_tokens = 5;
  out.emplace_back("opt-longformer", longformer);
  ModelConfig sinks = base_config();
  sinks.attention.kind = Kind::sinks;
  sinks.attention.block = 32;
  sinks.attention.window = 1;
  sinks.attention.sinks = 1;
  out.emplace_back("gpt2-sinks", sinks);
  return out;
}

TrainConfig train_config() {
  TrainConfig tc;
  tc.learning_rate = 3e-3;
  tc.warmup_steps = 0;
  tc.grad_clip = 1.0;
  return tc;
}

TrainState initial_state(const ModelConfig& m) {
  const std::size_t P = param_count(m);
  TrainState s{std::vector<float>(P), std::vector<float>(P, 0.0f), std::vector<float>(P, 0.0f)};
  init_params(s.params.data(), m, 42);
  // Biases and norms away from 0 and 1, so their gradients are checked in general position.
  const CounterRng rng(9, 0);
  for (std::size_t i = 0; i < P; ++i) s.params[i] += 0.02f * rng.normal(i);
  return s;
}

// A learnable stream: mostly a repeating phrase, some noise.
std::vector<std::uint32_t> stream(std::size_t n, std::uint32_t vocab) {
  const CounterRng rng(3, 1);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = rng.below(i, 10) == 0 ? static_cast<std::uint32_t>(rng.below(n + i, vocab))
                                   : static_cast<std::uint32_t>((i * 7) % 23);
  return out;
}

void batch(const std::vector<std::uint32_t>& data, std::size_t step, std::size_t B, std::size_t T,
           std::vector<std::uint32_t>& ids, std::vector<std::uint32_t>& targets) {
  ids.resize(B * T);
  targets.resize(B * T);
  for (std::size_t b = 0; b < B; ++b) {
    const std::size_t s0 = (step * 131 + b * 977) % (data.size() - T - 1);
    for (std::size_t t = 0; t < T; ++t) {
      ids[b * T + t] = data[s0 + t];
      targets[b * T + t] = data[s0 + t + 1];
    }
  }
}

double max_abs(const std::vector<float>& x) {
  double m = 0.0;
  for (float v : x) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

}  // namespace

GPU_TEST_CASE("an fp32 training step on the GPU equals the CPU's to rounding, for every architecture") {
  const std::size_t B = 3, T = 70;
  const TrainConfig tc = train_config();
  for (const auto& [name, m] : variants()) {
    CAPTURE(name);
    const auto data = stream(4000, static_cast<std::uint32_t>(m.vocab_size));
    auto cpu = make_cpu_engine(m, B, T, initial_state(m));
    auto gpu = make_cuda_engine(m, "fp32", B, T, initial_state(m));
    std::vector<std::uint32_t> ids, targets;
    for (std::size_t step = 0; step < 3; ++step) {
      batch(data, step, B, T, ids, targets);
      const StepStats a = cpu->forward_backward(ids.data(), targets.data());
      const StepStats b = gpu->forward_backward(ids.data(), targets.data());
      CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-5));
      CHECK(b.norm == doctest::Approx(a.norm).epsilon(1e-4));
      cpu->update(tc, tc.learning_rate, a, step + 1);
      gpu->update(tc, tc.learning_rate, b, step + 1);
    }
    // The first moment is a running mean of the clipped gradients: every gradient element,
    // compared. The parameters too, where the gradient is not negligible: AdamW moves a weight by
    // about lr whatever the size of its gradient, so for a gradient near zero a rounding can
    // flip the step's sign; elsewhere the GPU's other order of sums (split row chunks, its
    // LayerNorm column sums) moves m/√v by a few per cent at most: within a tenth of lr over
    // three steps (measured 1.8e-4 on the H200), where a wrong gradient is off by lr or more.
    const TrainState sa = cpu->state(), sb = gpu->state();
    const double m_scale = max_abs(sa.m);
    REQUIRE(m_scale > 0.0);
    double worst_m = 0.0, worst_p = 0.0;
    for (std::size_t i = 0; i < sa.m.size(); ++i) {
      worst_m = std::max(worst_m, std::fabs(static_cast<double>(sa.m[i]) - sb.m[i]) / m_scale);
      if (std::fabs(sa.m[i]) > 1e-2 * m_scale)
        worst_p = std::max(worst_p, std::fabs(static_cast<double>(sa.params[i]) - sb.params[i]));
    }
    CHECK(worst_m < 1e-4);
    CHECK(worst_p < 0.1 * tc.learning_rate);
    CHECK(gpu->evaluate(data, T, B, 4) == doctest::Approx(cpu->evaluate(data, T, B, 4)).epsilon(1e-5));
  }
}

GPU_TEST_CASE("bf16 training on the GPU tracks the CPU's loss curve, and two runs give the same bits") {
  const std::size_t B = 8, T = 64, steps = 40;
  const TrainConfig tc = train_config();
  for (const auto& [name, m] : variants()) {
    CAPTURE(name);
    const auto data = stream(8000, static_cast<std::uint32_t>(m.vocab_size));
    auto cpu = make_cpu_engine(m, B, T, initial_state(m));
    auto gpu = make_cuda_engine(m, "bf16", B, T, initial_state(m));
    auto again = make_cuda_engine(m, "bf16", B, T, initial_state(m));
    std::vector<std::uint32_t> ids, targets;
    double first = 0.0, last_cpu = 0.0, last_gpu = 0.0;
    for (std::size_t step = 0; step < steps; ++step) {
      batch(data, step, B, T, ids, targets);
      const StepStats a = cpu->forward_backward(ids.data(), targets.data());
      const StepStats b = gpu->forward_backward(ids.data(), targets.data());
      const StepStats c = again->forward_backward(ids.data(), targets.data());
      CHECK(std::memcmp(&b.loss, &c.loss, sizeof(double)) == 0);
      // bf16 rounds activations to 8 bits of mantissa: the curves agree to a few per cent.
      CHECK(b.loss == doctest::Approx(a.loss).epsilon(0.03));
      if (step == 0) first = a.loss;
      last_cpu = a.loss;
      last_gpu = b.loss;
      cpu->update(tc, tc.learning_rate, a, step + 1);
      gpu->update(tc, tc.learning_rate, b, step + 1);
      again->update(tc, tc.learning_rate, c, step + 1);
    }
    CHECK(last_cpu < 0.6 * first);  // it learned the phrase
    CHECK(last_gpu < 0.6 * first);
    const TrainState x = gpu->state(), y = again->state();
    CHECK(std::memcmp(x.params.data(), y.params.data(), x.params.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(x.v.data(), y.v.data(), x.v.size() * sizeof(float)) == 0);
  }
}

GPU_TEST_CASE("bf16 on the GPU refuses a head size its attention kernel does not take, naming it") {
  ModelConfig m = base_config();
  m.n_head = 4;  // head size 32
  CHECK_THROWS_WITH(make_cuda_engine(m, "bf16", 2, 16, initial_state(m)),
                    doctest::Contains("head sizes 64 and 128; this model's is 32"));
  CHECK_THROWS_WITH(make_cuda_engine(m, "fp16", 2, 16, initial_state(m)), doctest::Contains("precision 'fp16'"));
}

#if MINITX_CUDA
#include <cuda_runtime.h>

namespace {
std::size_t gpu_free_bytes() {
  std::size_t free = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free, &total) == cudaSuccess);
  return free;
}
}  // namespace

GPU_TEST_CASE("the GPU engine's memory estimate covers what it allocates") {
  // Big enough for the buffers to outweigh what CUDA loads on the side; one engine first, so that
  // the kernels' modules and cuBLASLt are loaded before anything is measured.
  ModelConfig m = base_config();
  m.n_layer = 4;
  m.n_embd = 1024;
  m.n_head = 8;  // head size 128
  m.context = 512;
  m.vocab_size = 50304;
  const std::size_t B = 8, T = 512;
  { auto warm = make_cuda_engine(base_config(), "bf16", 2, 16, initial_state(base_config())); }
  for (const char* precision : {"fp32", "bf16"}) {
    CAPTURE(precision);
    const TrainState state = initial_state(m);
    const double need = cuda_training_memory(m, precision, B, T, cuda_engine_scratch(m, B, T)).total();
    const std::size_t before = gpu_free_bytes();
    auto engine = make_cuda_engine(m, precision, B, T, state);
    const double used = static_cast<double>(before) - static_cast<double>(gpu_free_bytes());
    CHECK_MESSAGE(used <= need, "used " << used << " bytes, estimated " << need);
    CHECK_MESSAGE(need <= used + 256.0 * (1 << 20), "used " << used << " bytes, estimated " << need);
  }
}

GPU_TEST_CASE("the GPU engine refuses a model too big for the GPU before allocating, naming the bytes") {
  ModelConfig huge = base_config();
  huge.n_layer = 256;
  huge.n_embd = 16384;
  huge.n_head = 128;
  huge.context = 1024;
  huge.vocab_size = 50304;
  const std::size_t before = gpu_free_bytes();
  // No state: the check comes before the engine looks at it (12 TiB of it would not fit the host).
  CHECK_THROWS_WITH(make_cuda_engine(huge, "bf16", 8, 1024, TrainState{}),
                    doctest::Contains("in bf16 needs "));
  CHECK_THROWS_WITH(make_cuda_engine(huge, "fp32", 8, 1024, TrainState{}),
                    doctest::Contains(" GiB of GPU memory, and "));
  CHECK(gpu_free_bytes() + (64u << 20) >= before);
}
#endif
