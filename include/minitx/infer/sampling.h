// Choosing the next token from logits: temperature, top-k, top-p (nucleus), and a seed. The
// draw for generated token i is Philox (seed, sampling stream, i), so a seed reproduces a
// generation exactly, with or without the KV cache, on any thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace minitx {

struct SamplingConfig {
  double temperature = 1.0;  // 0: greedy (the first largest logit)
  std::size_t top_k = 0;     // 0: no limit
  double top_p = 1.0;        // keep the smallest set of likeliest tokens whose mass reaches top_p
  std::uint64_t seed = 0;
};

// `logits` holds one entry per token that may be chosen: a model whose embedding is padded past
// its tokenizer (Pythia: 50,304 rows for 50,277 tokens) passes only the first config.tokens().
std::uint32_t sample_token(std::span<const float> logits, const SamplingConfig& config, std::uint64_t index);

}  // namespace minitx
