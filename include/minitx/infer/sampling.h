// Choosing the next token from logits: temperature, top-k, top-p (nucleus), and a seed. The
// draw for generated token i is Philox (seed, sampling stream, i), so a seed reproduces a
// generation exactly, with or without the KV cache, on any thread count. Every step below is
// exact integer arithmetic or one of minitx/infer/sampling_math.h's bit-reproducible functions,
// so that a parallel sampler computes the same definition and picks the same token: the CUDA
// sampler (minitx/backend/cuda/sampling.h) does, by construction.
//
// The definition, for V candidate logits:
//  1. order the candidates by decreasing logit, ties by the lower id (NaN after -inf, -0 = +0);
//  2. temperature 0 (greedy): the first of them, the first largest logit. Otherwise:
//  3. keep the first top_k of them (top_k 0: no limit);
//  4. weigh each kept candidate round(2^39 · exp((logit - max) / temperature)), an integer (the
//     first candidate and those equal to it weigh 2^39, NaN weighs 0; weights below 1/2 round
//     to 0, and such candidates are never drawn);
//  5. top_p: keep the smallest prefix whose weight reaches top_p (to 2^-32) of the total, at
//     least one token; top_p 1 keeps them all;
//  6. with u = (b + 1/2) / 2^24, where b is the top 24 bits of CounterRng(seed, "sample")
//     .block(index)[0] (the bits CounterRng::uniform uses; its float rounds u for b ≥ 2^23),
//     draw the first kept candidate whose cumulative weight exceeds u · (the kept total),
//     computed exactly.
// top_k 1 and top_p 0 are greedy too, by this definition.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace minitx {

struct SamplingConfig {
  double temperature = 1.0;  // 0: greedy (the first largest logit); finite, ≥ 0
  std::size_t top_k = 0;     // 0: no limit
  double top_p = 1.0;        // in [0, 1]: keep the smallest set of likeliest tokens whose mass reaches top_p
  std::uint64_t seed = 0;
};

// Throws minitx::Error unless 1 ≤ candidates ≤ 2^24 (the fixed-point sums' bound), the
// temperature is finite and ≥ 0, and top_p is in [0, 1]. Both samplers call it.
void check_sampling(std::size_t candidates, const SamplingConfig& config);

// Whether `config` always picks the first largest logit, whatever the logits: temperature 0,
// top_k 1, or a top_p that rounds to 0. The samplers then skip sorting and weighing.
bool sampling_is_greedy(const SamplingConfig& config);

// `logits` holds one entry per token that may be chosen: a model whose embedding is padded past
// its tokenizer (Pythia: 50,304 rows for 50,277 tokens) passes only the first config.tokens().
std::uint32_t sample_token(std::span<const float> logits, const SamplingConfig& config, std::uint64_t index);

}  // namespace minitx
