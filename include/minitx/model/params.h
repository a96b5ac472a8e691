// The parameters of a GPT: one allocation, and a struct of named pointers into it (llm.c).
// The same layout serves the gradients and the two AdamW moments.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "minitx/model/config.h"

namespace minitx {

// L = layers, C = channels, V = vocab, T = context.
struct GptParams {
  float* wte;       // (V, C)   token embedding, tied with the output layer
  float* wpe;       // (T, C)   learned positions
  float* ln1w;      // (L, C)
  float* ln1b;      // (L, C)
  float* qkvw;      // (L, 3C, C)
  float* qkvb;      // (L, 3C)
  float* attprojw;  // (L, C, C)
  float* attprojb;  // (L, C)
  float* ln2w;      // (L, C)
  float* ln2b;      // (L, C)
  float* fcw;       // (L, 4C, C)
  float* fcb;       // (L, 4C)
  float* fcprojw;   // (L, C, 4C)
  float* fcprojb;   // (L, C)
  float* lnfw;      // (C)
  float* lnfb;      // (C)
};

struct ParamTensor {
  enum class Init { normal, residual_normal, zeros, ones };
  const char* name;
  std::size_t size;
  Init init;
  bool decay;  // weight decay applies to matrices and embeddings, not to biases and norms
};

inline constexpr std::size_t kParamTensors = 16;
// In the order of GptParams's fields and of the allocation.
std::array<ParamTensor, kParamTensors> param_tensors(const ModelConfig& config);
std::size_t param_count(const ModelConfig& config);
GptParams bind_params(float* base, const ModelConfig& config);

// GPT-2 initialisation: N(0, init_std) for matrices and embeddings, divided by √(2L) for the two
// projections into the residual stream; zeros for biases, ones for norm weights. Element i of
// tensor k is drawn from Philox (seed, stream k, index i).
void init_params(float* base, const ModelConfig& config, std::uint64_t seed);

}  // namespace minitx
