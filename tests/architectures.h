// The three architectures as test configs: GPT-2 (learned positions, tanh GELU, tied head), OPT
// (positions offset by 2, ReLU, untied head, an FFN width that is not 4·C) and GPT-NeoX (rotary on
// a quarter of each head, parallel residual, exact GELU, untied head, no biases), each derived from
// one base shape, so the GPU tests of every op cover all three.
#pragma once
#include <utility>
#include <vector>

#include "minitx/model/config.h"

namespace minitx::test {

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
