// Batched decoding on the GPU (CudaDecoder of batch 2..16): each sequence of a batch against the
// same sequence decoded alone at batch 1, bit for bit — logits, greedy and sampled tokens — for
// every architecture and weight format, with prompts of different lengths so that every sequence
// stands at its own position; greedy tokens against the CPU decoder at fp32; graph replay against
// eager launches; and the errors. The batch range is checked without a GPU too.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "architectures.h"
#include "cuda_decode_models.h"
#include "gpu.h"
#include "helpers.h"
#include "minitx/core/error.h"
#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/generate.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/gpt.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

using namespace minitx;

namespace {

using test::decode_base_config;

// The decode tests' models and GPT-2 with an MLP of 32·C = 4096: wider than 4·C, and at batch 16
// more input vectors than a block's shared memory holds at once, so the step takes two passes
// over the columns.
std::vector<std::pair<const char*, ModelConfig>> variants() {
  auto out = test::decode_variants();
  ModelConfig wide = decode_base_config();
  wide.ffn = 4096;
  out.emplace_back("gpt2 ffn 4096", wide);
  return out;
}

struct Format {
  const char* name;
  const char* recipe;  // f32: the model's matrices in the precision's type
  GpuPrecision precision;
};
const Format kFormats[] = {{"fp32", "f32", GpuPrecision::fp32},
                           {"bf16", "f32", GpuPrecision::bf16},
                           {"q8_0", "q8_0", GpuPrecision::fp32},
                           {"q4_0", "q4_0", GpuPrecision::bf16}};

// A model's weights in a format; the quantized model, when there is one, is kept alive here.
struct FormatWeights {
  std::unique_ptr<QuantModel> quantized;
  GptWeights weights;
  FormatWeights(const GptModel& model, const Format& f) : weights(weights_of(model)) {
    if (std::string(f.recipe) == "f32") return;
    quantized = make_quant_model(quantize_model(model, quant::recipe_by_name(f.recipe), {kNoTokenizer, 0, f.recipe}),
                                 f.recipe);
    weights = quantized->weights;
  }
};

constexpr std::size_t kMaxSequences = 16;
constexpr std::size_t kSteps = 8;

// Sequence s's prompt length: 5, 14, 23, ... up to 65, so positions differ and some sequences'
// attention spans two 64-position chunks.
std::size_t prompt_length(std::size_t s) { return 5 + (9 * s) % 61; }

// Sequence s's tokens: its prompt, then the tokens fed to its steps.
std::vector<std::uint32_t> sequence_ids(const ModelConfig& m, std::size_t s) {
  return test::random_ids(prompt_length(s) + kSteps, m.tokens(), 100 + s);
}

std::vector<float> row(const std::vector<float>& logits, std::size_t s, std::size_t V) {
  return {logits.begin() + static_cast<std::ptrdiff_t>(s * V), logits.begin() + static_cast<std::ptrdiff_t>((s + 1) * V)};
}

std::vector<std::uint32_t> slice(const std::vector<std::uint32_t>& tokens, std::size_t s, std::size_t count) {
  return {tokens.begin() + static_cast<std::ptrdiff_t>(s * count),
          tokens.begin() + static_cast<std::ptrdiff_t>((s + 1) * count)};
}

}  // namespace

TEST_CASE("cuda decode batch: a batch outside 1 to 16 is refused by name, with or without a GPU") {
  CHECK_NOTHROW(check_decode_batch(1, "x"));
  CHECK_NOTHROW(check_decode_batch(16, "x"));
  CHECK_ERROR_CONTAINS(check_decode_batch(0, "bench"), "bench: batch 0 is outside 1 to 16 sequences");
  CHECK_ERROR_CONTAINS(check_decode_batch(17, "bench"), "bench: batch 17 is outside 1 to 16 sequences");
  const auto model = random_model(decode_base_config(), 30);
  CHECK_ERROR_CONTAINS(CudaDecoder(weights_of(*model), GpuPrecision::bf16, 0), "batch 0 is outside 1 to 16");
  CHECK_ERROR_CONTAINS(CudaDecoder(weights_of(*model), GpuPrecision::fp32, 17), "batch 17 is outside 1 to 16");
}

GPU_TEST_CASE("cuda decode batch: each sequence's logits equal its batch-1 logits bit for bit") {
  for (const auto& [name, config] : variants()) {
    const auto model = random_model(config, 31);
    const std::size_t V = config.vocab_size;
    for (const Format& f : kFormats) {
      INFO(name << " " << f.name);
      const FormatWeights w(*model, f);
      // Every sequence alone: its prefill's logits, then each step's.
      std::vector<std::vector<std::uint32_t>> ids;
      std::vector<std::vector<std::vector<float>>> alone(kMaxSequences);
      {
        CudaDecoder single(w.weights, f.precision);
        for (std::size_t s = 0; s < kMaxSequences; ++s) {
          ids.push_back(sequence_ids(config, s));
          alone[s].push_back(single.prefill(ids[s].data(), prompt_length(s)));
          for (std::size_t t = 0; t < kSteps; ++t) alone[s].push_back(single.step(ids[s][prompt_length(s) + t]));
        }
      }
      for (const std::size_t B : {2, 3, 5, 16}) {
        INFO("batch " << B);
        CudaDecoder batch(w.weights, f.precision, B);
        CHECK(batch.batch() == B);
        for (std::size_t s = 0; s < B; ++s) CHECK(batch.prefill(s, ids[s].data(), prompt_length(s)) == alone[s][0]);
        for (std::size_t t = 0; t < kSteps; ++t) {
          std::vector<std::uint32_t> feed(B);
          for (std::size_t s = 0; s < B; ++s) feed[s] = ids[s][prompt_length(s) + t];
          const std::vector<float>& logits = batch.step(feed.data());
          REQUIRE(logits.size() == B * V);
          for (std::size_t s = 0; s < B; ++s) {
            INFO("step " << t << " of sequence " << s);
            CHECK(row(logits, s, V) == alone[s][t + 1]);
          }
        }
        for (std::size_t s = 0; s < B; ++s) CHECK(batch.length(s) == prompt_length(s) + kSteps);
      }
    }
  }
}

GPU_TEST_CASE("cuda decode batch: greedy tokens of each sequence equal the CPU decoder's at fp32") {
  constexpr std::size_t kNew = 24;
  const SamplingConfig greedy{0.0, 0, 1.0, 0};
  for (const auto& [name, config] : variants()) {
    const auto model = random_model(config, 32);
    for (const std::size_t B : {3, 16}) {
      INFO(name << " batch " << B);
      CudaDecoder batch(weights_of(*model), GpuPrecision::fp32, B);
      std::vector<std::uint32_t> first(B);
      for (std::size_t s = 0; s < B; ++s) {
        const std::vector<std::uint32_t> ids = sequence_ids(config, s);
        first[s] = batch.prefill_sample(s, ids.data(), prompt_length(s), greedy, 0);
      }
      const std::vector<std::uint32_t> rest = batch.step_sample(kNew - 1);
      REQUIRE(rest.size() == B * (kNew - 1));
      for (std::size_t s = 0; s < B; ++s) {
        INFO("sequence " << s);
        const std::vector<std::uint32_t> ids = sequence_ids(config, s);
        GenerateOptions options;
        options.max_new = kNew;
        options.sampling = greedy;
        const GenerateResult cpu =
            generate(*model, std::vector(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(prompt_length(s))), options);
        std::vector<std::uint32_t> gpu{first[s]};
        const std::vector<std::uint32_t> mine = slice(rest, s, kNew - 1);
        gpu.insert(gpu.end(), mine.begin(), mine.end());
        CHECK(gpu == cpu.tokens);
      }
    }
  }
}

GPU_TEST_CASE("cuda decode batch: greedy and sampled tokens of each sequence equal its batch-1 tokens") {
  constexpr std::size_t kNew = 30;
  for (const auto& [name, config] : variants()) {
    const auto model = random_model(config, 33);
    for (const Format& f : {kFormats[1], kFormats[3]}) {
      const FormatWeights w(*model, f);
      for (const SamplingConfig& sampling : {SamplingConfig{0.0, 0, 1.0, 0}, SamplingConfig{0.9, 0, 1.0, 3},
                                             SamplingConfig{1.0, 20, 0.9, 4}}) {
        INFO(name << " " << f.name << " temperature " << sampling.temperature << " top-k " << sampling.top_k
                  << " top-p " << sampling.top_p);
        // Each sequence draws from its own index on: sequence s starts at draw 7s.
        std::vector<std::vector<std::uint32_t>> alone;
        {
          CudaDecoder single(w.weights, f.precision);
          for (std::size_t s = 0; s < 5; ++s) {
            const std::vector<std::uint32_t> ids = sequence_ids(config, s);
            std::vector<std::uint32_t> tokens{single.prefill_sample(ids.data(), prompt_length(s), sampling, 7 * s)};
            const std::vector<std::uint32_t> rest = single.step_sample(kNew - 1);
            tokens.insert(tokens.end(), rest.begin(), rest.end());
            alone.push_back(tokens);
          }
        }
        for (const std::size_t B : {2, 5}) {
          INFO("batch " << B);
          CudaDecoder batch(w.weights, f.precision, B);
          std::vector<std::uint32_t> first(B);
          for (std::size_t s = 0; s < B; ++s) {
            const std::vector<std::uint32_t> ids = sequence_ids(config, s);
            first[s] = batch.prefill_sample(s, ids.data(), prompt_length(s), sampling, 7 * s);
          }
          // Two calls: the second replays the captured graph from where the first left the cursors.
          const std::vector<std::uint32_t> a = batch.step_sample(10), b = batch.step_sample(kNew - 11);
          for (std::size_t s = 0; s < B; ++s) {
            INFO("sequence " << s);
            std::vector<std::uint32_t> tokens{first[s]};
            for (const auto& part : {slice(a, s, 10), slice(b, s, kNew - 11)}) tokens.insert(tokens.end(), part.begin(), part.end());
            CHECK(tokens == alone[s]);
          }
        }
      }
    }
  }
}

GPU_TEST_CASE("cuda decode batch: a replayed CUDA graph gives the bits of the launches it captured") {
  for (const auto& [name, config] : variants()) {
    const auto model = random_model(config, 34);
    for (const std::size_t B : {5, 16}) {
      INFO(name << " batch " << B);
      CudaDecoder graph(weights_of(*model), GpuPrecision::bf16, B), eager(weights_of(*model), GpuPrecision::bf16, B);
      eager.use_graphs(false);
      std::vector<std::vector<std::uint32_t>> ids;
      for (std::size_t s = 0; s < B; ++s) {
        ids.push_back(sequence_ids(config, s));
        CHECK(graph.prefill(s, ids[s].data(), prompt_length(s)) == eager.prefill(s, ids[s].data(), prompt_length(s)));
      }
      for (std::size_t t = 0; t < kSteps / 2; ++t) {
        std::vector<std::uint32_t> feed(B);
        for (std::size_t s = 0; s < B; ++s) feed[s] = ids[s][prompt_length(s) + t];
        CHECK(graph.step(feed.data()) == eager.step(feed.data()));
      }
      const SamplingConfig sampling{0.8, 0, 0.95, 9};
      for (std::size_t s = 0; s < B; ++s) {
        CHECK(graph.prefill_sample(s, ids[s].data(), prompt_length(s), sampling, s) ==
              eager.prefill_sample(s, ids[s].data(), prompt_length(s), sampling, s));
      }
      CHECK(graph.step_sample(12) == eager.step_sample(12));
    }
  }
}

GPU_TEST_CASE("cuda decode batch: errors name the sequence, and a batch too large for the device") {
  const ModelConfig config = decode_base_config();
  const auto model = random_model(config, 35);
  CudaDecoder batch(weights_of(*model), GpuPrecision::bf16, 3);
  const std::vector<std::uint32_t> ids = test::random_ids(config.context, config.tokens(), 36);
  CHECK_ERROR_CONTAINS(batch.prefill(3, ids.data(), 4), "sequence 3 of a batch of 3 (sequences 0 to 2)");
  batch.prefill(0, ids.data(), 4);
  batch.prefill(1, ids.data(), config.context - 1);
  const std::uint32_t feed[3] = {1, 2, 3};
  CHECK_ERROR_CONTAINS(batch.step(feed), "a step before the prefill in sequence 2");
  CHECK_ERROR_CONTAINS(batch.step(std::uint32_t{1}), "feeds a decoder of batch 1, this one has 3 sequences");
  batch.prefill(2, ids.data(), 10);
  batch.step(feed);  // sequence 1 reaches the context
  CHECK_ERROR_CONTAINS(batch.step(feed), "1 more tokens after 96 in sequence 1 would pass the model's context of 96");
  const std::uint32_t bad[3] = {1, 400, 3};
  batch.prefill(1, ids.data(), 4);
  CHECK_ERROR_CONTAINS(batch.step(bad), "400");

  // Batches decode dense attention only; a block-sparse pattern decodes at batch 1.
  ModelConfig local = config;
  local.attention.kind = sparse::AttentionPattern::Kind::local;
  local.attention.block = 16;
  local.attention.window = 2;
  const auto sparse_model = random_model(local, 37);
  CHECK_ERROR_CONTAINS(CudaDecoder(weights_of(*sparse_model), GpuPrecision::bf16, 2),
                       "batch 2 with the attention pattern");
  CHECK_NOTHROW(CudaDecoder(weights_of(*sparse_model), GpuPrecision::bf16, 1));

  // 48 layers of width 2048 over 65,536 positions: one sequence's bf16 cache is 24 GiB, sixteen
  // are 384 GiB, more than any device holds. The view has no data: the check comes before
  // anything is read or allocated.
  ModelConfig big = config;
  big.n_layer = 48;
  big.n_embd = 2048;
  big.n_head = 16;
  big.vocab_size = 50304;
  big.context = 65536;
  const GptWeights empty = make_weights(
      big, [](const ParamTensor& t, std::size_t) { return Linear(quant::QMatrix{quant::Format::f32, t.rows, t.cols, nullptr}); },
      [](const ParamTensor&, std::size_t) -> const float* { return nullptr; });
  CHECK_ERROR_CONTAINS(CudaDecoder(empty, GpuPrecision::bf16, 16), "positions of 16 sequences");
}
