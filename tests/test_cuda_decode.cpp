// Generation on the GPU (infer/cuda_decoder.h) against the CPU decoder, for every architecture and
// weight format: prefill and step logits, greedy and sampled tokens, graph replay against eager
// launches, and the errors a user can meet.
//
// Tolerances. fp32: the GPU adds the same products in another order (warp butterflies instead of
// the CPU's vector lanes), so logits agree to a few ulps of their size: 1e-4 of the logits' RMS
// leaves two orders of margin. bf16: the weights, and in the prefill each layer's ten activation
// tensors (and so the cache's keys and values), are rounded to 8 significant bits (relative error
// ≤ 2^-9); those roundings are independent, so over the 14 of a layer plus the embedding, the
// final norm and the head they add in quadrature to about 2^-9·√(14L + 3) of the logits' RMS, and
// the test allows four times that. Quantized matrices decode against the CPU
// running the same model with the matrices dequantized (which is what the GPU multiplies), so at
// fp32 they get fp32's tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "architectures.h"
#include "cuda_decode_models.h"
#include "gpu.h"
#include "minitx/core/error.h"
#include "minitx/core/rng.h"
#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/decoder.h"
#include "minitx/infer/generate.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/gpt.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

using namespace minitx;

namespace {

using test::decode_base_config;
using test::decode_variants;

using test::random_ids;

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

// max |a - b| relative to b's RMS.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst / rms(b);
}

double tolerance(GpuPrecision p, const ModelConfig& m) {
  return p == GpuPrecision::fp32 ? 1e-4 : 4.0 * std::ldexp(1.0, -9) * std::sqrt(14.0 * double(m.n_layer) + 3.0);
}

// The CPU's logits and the GPU's after a prefill of `prompt` tokens and the rest of `length`
// fed one by one.
void check_against_cpu(const GptWeights& gpu_weights, const GptWeights& cpu_weights, GpuPrecision precision,
                       double tol, std::size_t length = 40, std::size_t prompt = 17) {
  const ModelConfig& m = gpu_weights.config;
  Decoder cpu(cpu_weights);
  CudaDecoder gpu(gpu_weights, precision);
  const std::vector<std::uint32_t> ids = random_ids(length, m.tokens(), 5);
  CHECK(relative_error(gpu.prefill(ids.data(), prompt), cpu.prefill(ids.data(), prompt)) < tol);
  for (std::size_t i = prompt; i < ids.size(); ++i) {
    const double err = relative_error(gpu.step(ids[i]), cpu.step(ids[i]));
    INFO("step at position " << i);
    CHECK(err < tol);
  }
  CHECK(gpu.length() == ids.size());
}

// A model whose parameters are the dequantized values of a quantized one: the CPU reference of
// what the GPU multiplies.
std::unique_ptr<GptModel> dequantized(const GptWeights& w) {
  auto model = std::make_unique<GptModel>(w.config);
  model->storage = dense_parameters(w);
  model->params = bind_params(model->storage.data(), w.config);
  return model;
}

}  // namespace

GPU_TEST_CASE("cuda decode: prefill and step logits equal the CPU decoder's, fp32 and bf16") {
  for (const auto& [name, config] : decode_variants()) {
    const auto model = random_model(config, 11);
    for (const GpuPrecision p : {GpuPrecision::fp32, GpuPrecision::bf16}) {
      INFO(name << " " << to_string(p));
      check_against_cpu(weights_of(*model), weights_of(*model), p, tolerance(p, config));
    }
  }
}

GPU_TEST_CASE("cuda decode: q8_0 and q4_0 matrices decode as the CPU does on their dequantized values") {
  for (const auto& [name, config] : decode_variants()) {
    const auto model = random_model(config, 12);
    for (const char* recipe : {"q8_0", "q4_0", "q4_mix"}) {
      INFO(name << " " << recipe);
      const auto q = make_quant_model(quantize_model(*model, quant::recipe_by_name(recipe), {kNoTokenizer, 0, recipe}),
                                      recipe);
      const auto reference = dequantized(q->weights);
      check_against_cpu(q->weights, weights_of(*reference), GpuPrecision::fp32, tolerance(GpuPrecision::fp32, config));
      CudaDecoder gpu(q->weights, GpuPrecision::bf16);
      CHECK(gpu.weight_format() == (std::string(recipe) == "q4_mix" ? "q4_0+q8_0" : recipe));
    }
  }
}

GPU_TEST_CASE("cuda decode: a replayed CUDA graph gives the bits of the launches it captured") {
  for (const auto& [name, config] : decode_variants()) {
    INFO(name);
    const auto model = random_model(config, 13);
    const std::vector<std::uint32_t> ids = random_ids(30, config.tokens(), 6);
    CudaDecoder graph(weights_of(*model), GpuPrecision::bf16), eager(weights_of(*model), GpuPrecision::bf16);
    eager.use_graphs(false);
    CHECK(graph.prefill(ids.data(), 9) == eager.prefill(ids.data(), 9));
    for (std::size_t i = 9; i < ids.size(); ++i) CHECK(graph.step(ids[i]) == eager.step(ids[i]));
  }
}

GPU_TEST_CASE("cuda decode: greedy and sampled tokens equal the CPU's at fp32") {
  for (const auto& [name, config] : decode_variants()) {
    const auto model = random_model(config, 14);
    const std::vector<std::uint32_t> prompt = random_ids(7, config.tokens(), 7);
    for (const SamplingConfig& s : {SamplingConfig{0.0, 0, 1.0, 0}, SamplingConfig{0.9, 0, 1.0, 3},
                                    SamplingConfig{1.0, 20, 0.9, 4}}) {
      INFO(std::string(name) << " temperature " << s.temperature << " top-k " << s.top_k << " top-p " << s.top_p);
      GenerateOptions options;
      options.max_new = 60;
      options.sampling = s;
      const GenerateResult cpu = generate(*model, prompt, options);
      options.cuda = true;
      options.precision = GpuPrecision::fp32;
      const GenerateResult gpu = generate(*model, prompt, options);
      CHECK(gpu.tokens == cpu.tokens);
      // Without the cache each token is a prefill of the whole sequence: the same tokens again.
      options.use_cache = false;
      options.max_new = 12;
      CHECK(generate(*model, prompt, options).tokens == std::vector(cpu.tokens.begin(), cpu.tokens.begin() + 12));
    }
  }
}

GPU_TEST_CASE("cuda decode: a sliding window past the context gives the CPU's tokens") {
  const ModelConfig config = decode_variants()[1].second;  // learned positions with an offset
  const auto model = random_model(config, 18);
  const std::vector<std::uint32_t> prompt = random_ids(30, config.tokens(), 10);
  GenerateOptions options;
  options.max_new = 250;  // past the context of 96 twice over: the window jumps several times
  options.policy = ContextPolicy::slide;
  options.sampling = SamplingConfig{0.7, 0, 1.0, 5};
  const GenerateResult cpu = generate(*model, prompt, options);
  options.cuda = true;
  options.precision = GpuPrecision::fp32;
  const GenerateResult gpu = generate(*model, prompt, options);
  CHECK(gpu.shifts == cpu.shifts);
  CHECK(gpu.shifts >= 4);
  CHECK(gpu.tokens == cpu.tokens);
}

GPU_TEST_CASE("cuda decode: many steps queued back to back give the tokens of one step at a time") {
  const ModelConfig config = decode_variants()[2].second;
  const auto model = random_model(config, 15);
  const std::vector<std::uint32_t> prompt = random_ids(5, config.tokens(), 8);
  const SamplingConfig s{0.8, 0, 0.95, 9};
  CudaDecoder a(weights_of(*model), GpuPrecision::bf16), b(weights_of(*model), GpuPrecision::bf16);
  std::vector<std::uint32_t> one_by_one{a.prefill_sample(prompt.data(), prompt.size(), s, 0)};
  for (int i = 0; i < 50; ++i) one_by_one.push_back(a.step_sample(1)[0]);
  std::vector<std::uint32_t> queued{b.prefill_sample(prompt.data(), prompt.size(), s, 0)};
  const std::vector<std::uint32_t> rest = b.step_sample(50);
  queued.insert(queued.end(), rest.begin(), rest.end());
  CHECK(queued == one_by_one);
  CHECK(b.length() == prompt.size() + 50);
}

GPU_TEST_CASE("cuda decode: errors for the context, token ids and a model too large") {
  const ModelConfig config = decode_base_config();
  const auto model = random_model(config, 16);
  CudaDecoder gpu(weights_of(*model), GpuPrecision::bf16);
  const std::vector<std::uint32_t> long_prompt = random_ids(config.context + 1, config.tokens(), 9);
  CHECK_THROWS_WITH_AS(gpu.prefill(long_prompt.data(), long_prompt.size()),
                       doctest::Contains("does not fit the model's context of 96 tokens"), Error);
  const std::uint32_t bad = 400;
  CHECK_THROWS_WITH_AS(gpu.prefill(&bad, 1), doctest::Contains("400"), Error);
  gpu.prefill(long_prompt.data(), config.context);
  CHECK_THROWS_WITH_AS(gpu.step(1), doctest::Contains("pass the model's context of 96 tokens"), Error);

  // 96 layers of width 8192: 77 billion parameters, no device holds them. The view has no data:
  // the check must come before anything is read or allocated.
  ModelConfig huge = config;
  huge.n_layer = 96;
  huge.n_embd = 8192;
  huge.n_head = 64;
  huge.vocab_size = 50304;
  huge.context = 2048;
  const GptWeights empty = make_weights(
      huge, [](const ParamTensor& t, std::size_t) { return Linear(quant::QMatrix{quant::Format::f32, t.rows, t.cols, nullptr}); },
      [](const ParamTensor&, std::size_t) -> const float* { return nullptr; });
  CHECK_THROWS_WITH_AS(CudaDecoder(empty, GpuPrecision::bf16), doctest::Contains("of device memory"), Error);
}

// ---- block-sparse patterns ---------------------------------------------------------------------
// Every pattern at block 16 with a window of 2 blocks: local and sinks decode from a ring of 32
// and 48 rows, which sequences of 128 pass several times; strided keeps every third block column,
// BigBird a global block and one random block per query block, drawn per head (so the heads'
// layouts differ), and Longformer 20 global tokens, which cut its block 1 in two (kind global).

namespace {

using Kind = sparse::AttentionPattern::Kind;

std::vector<sparse::AttentionPattern> sparse_patterns() {
  std::vector<sparse::AttentionPattern> out;
  for (const Kind kind : {Kind::local, Kind::sinks, Kind::strided, Kind::bigbird, Kind::longformer}) {
    sparse::AttentionPattern p;
    p.kind = kind;
    p.block = 16;
    p.window = 2;
    p.stride = 3;
    p.global_blocks = 1;
    p.random_blocks = 1;
    p.per_head = true;
    p.global_tokens = 20;
    p.sinks = 1;
    out.push_back(p);
  }
  return out;
}

ModelConfig with_pattern(ModelConfig m, const sparse::AttentionPattern& p, std::size_t context) {
  m.attention = p;
  m.context = context;
  return m;
}

// Cache rows per layer: the ring's for local and sinks, else the context.
std::size_t expected_rows(const sparse::AttentionPattern& p, std::size_t context) {
  if (p.kind == Kind::local) return std::size_t(p.window * p.block);
  if (p.kind == Kind::sinks) return std::size_t((p.sinks + p.window) * p.block);
  return context;
}

}  // namespace

GPU_TEST_CASE("cuda decode: every sparse pattern's prefill and step logits equal the CPU decoder's, fp32 and bf16") {
  for (const auto& [name, base] : decode_variants())
    for (const sparse::AttentionPattern& pattern : sparse_patterns()) {
      const ModelConfig config = with_pattern(base, pattern, 128);
      const auto model = random_model(config, 21);
      for (const GpuPrecision p : {GpuPrecision::fp32, GpuPrecision::bf16})
        // A prompt inside the ring, and one past it (the prefill's cache write wraps).
        for (const std::size_t prompt : {std::size_t{9}, std::size_t{45}}) {
          INFO(name << " " << sparse::summarize_pattern(pattern) << " " << to_string(p) << " prompt " << prompt);
          check_against_cpu(weights_of(*model), weights_of(*model), p, tolerance(p, config), 128, prompt);
        }
    }
}

GPU_TEST_CASE("cuda decode: a ring cache decoded far past its wrap equals the CPU's ring and recomputation") {
  for (const Kind kind : {Kind::local, Kind::sinks}) {
    sparse::AttentionPattern pattern = sparse_patterns()[kind == Kind::local ? 0 : 1];
    const ModelConfig config = with_pattern(decode_variants()[2].second, pattern, 640);  // rotary
    const auto model = random_model(config, 22);
    Decoder cpu(weights_of(*model));
    CudaDecoder gpu(weights_of(*model), GpuPrecision::fp32);
    const std::size_t rows = expected_rows(pattern, config.context);
    CHECK(gpu.kv_cache_bytes() == 2 * config.n_layer * config.n_embd * rows * sizeof(float));
    CHECK(cpu.kv_cache_bytes() == gpu.kv_cache_bytes());
    const std::vector<std::uint32_t> ids = random_ids(config.context, config.tokens(), 23);
    const double tol = tolerance(GpuPrecision::fp32, config);
    CHECK(relative_error(gpu.prefill(ids.data(), 20), cpu.prefill(ids.data(), 20)) < tol);
    // 620 steps through a ring of 32 (or 16 + 32) rows: the ring turns over about 19 times.
    for (std::size_t i = 20; i < ids.size(); ++i) {
      INFO(sparse::summarize_pattern(pattern) << " step at position " << i);
      const std::vector<float> logits = gpu.step(ids[i]);
      CHECK(relative_error(logits, cpu.step(ids[i])) < tol);
      if (i % 97 == 0) CHECK(relative_error(logits, cpu.logits_recompute(ids.data(), i + 1)) < tol);
    }
  }
}

GPU_TEST_CASE("cuda decode: the KV cache of local and sinks is the ring's whatever the context") {
  for (const sparse::AttentionPattern& pattern : sparse_patterns())
    for (const std::size_t context : {std::size_t{256}, std::size_t{1024}})
      for (const GpuPrecision p : {GpuPrecision::fp32, GpuPrecision::bf16}) {
        INFO(sparse::summarize_pattern(pattern) << " context " << context << " " << to_string(p));
        const ModelConfig config = with_pattern(decode_base_config(), pattern, context);
        const auto model = random_model(config, 24);
        CudaDecoder gpu(weights_of(*model), p);
        const std::size_t bytes = p == GpuPrecision::fp32 ? 4 : 2;
        CHECK(gpu.kv_cache_bytes() == 2 * config.n_layer * config.n_embd * expected_rows(pattern, context) * bytes);
      }
}

GPU_TEST_CASE("cuda decode: greedy tokens of every sparse pattern equal the CPU's at fp32") {
  for (const auto& [name, base] : decode_variants())
    for (const sparse::AttentionPattern& pattern : sparse_patterns()) {
      INFO(name << " " << sparse::summarize_pattern(pattern));
      const ModelConfig config = with_pattern(base, pattern, 128);
      const auto model = random_model(config, 25);
      const std::vector<std::uint32_t> prompt = random_ids(7, config.tokens(), 26);
      GenerateOptions options;
      options.max_new = 110;
      options.sampling = SamplingConfig{0.0, 0, 1.0, 0};
      const GenerateResult cpu = generate(*model, prompt, options);
      options.cuda = true;
      options.precision = GpuPrecision::fp32;
      CHECK(generate(*model, prompt, options).tokens == cpu.tokens);
    }
}

GPU_TEST_CASE("cuda decode: a replayed CUDA graph of a sparse step gives the bits of its launches") {
  for (const sparse::AttentionPattern& pattern : sparse_patterns()) {
    INFO(sparse::summarize_pattern(pattern));
    const ModelConfig config = with_pattern(decode_variants()[2].second, pattern, 128);
    const auto model = random_model(config, 27);
    const std::vector<std::uint32_t> ids = random_ids(128, config.tokens(), 28);
    CudaDecoder graph(weights_of(*model), GpuPrecision::bf16), eager(weights_of(*model), GpuPrecision::bf16);
    eager.use_graphs(false);
    CHECK(graph.prefill(ids.data(), 40) == eager.prefill(ids.data(), 40));
    for (std::size_t i = 40; i < ids.size(); ++i) CHECK(graph.step(ids[i]) == eager.step(ids[i]));
  }
}
