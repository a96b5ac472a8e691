// The three architectures as test configs: GPT-2 (learned positions, tanh GELU, tied head), OPT
// (positions offset by 2, ReLU, untied head, an FFN width that is not 4·C) and GPT-NeoX (rotary on
// a quarter of each head, parallel residual, exact GELU, untied head, no biases), each derived from
// one base shape, so the GPU tests of every op cover all three.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "minitx/core/rng.h"
#include "minitx/model/config.h"

namespace minitx::test {

// The GPU tests' base shape: two layers of width 128 and two heads (head size 64, which the bf16
// attention kernels take), a vocabulary of 301 (a multiple of nothing), and `context` positions.
inline ModelConfig small_config(std::size_t context, double init_std = 0.02) {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 128;
  m.n_head = 2;
  m.context = context;
  m.vocab_size = 301;
  m.init_std = init_std;
  return m;
}

// n token ids below `vocab`, drawn from the counter-based RNG.
inline std::vector<std::uint32_t> random_ids(std::size_t n, std::size_t vocab, std::uint64_t seed) {
  const CounterRng rng(seed, 0);
  std::vector<std::uint32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return ids;
}

inline std::vector<std::pair<const char*, ModelConfig>> architectures(const ModelConfig& base) {
  std::vector<std::pair<const char*, ModelConfig>> out;
  out.emplace_back("gpt2", base);
  ModelConfig opt = base;
  opt.position_offset = 2;
  opt.activation = ModelConfig::Activation::relu;
  opt.tied_head = false;
  opt.ffn = 200;
  out.emplace_back("opt", opt);
  ModelConfig neox = base;
  neox.position = ModelConfig::Position::rotary;
  neox.rotary_fraction = 0.25;
  neox.parallel_residual = true;
  neox.activation = ModelConfig::Activation::gelu_erf;
  neox.tied_head = false;
  neox.bias = false;
  out.emplace_back("neox", neox);
  return out;
}

}  // namespace minitx::test
