// Autoregressive generation with or without the KV cache.
//
// Context policies (a prompt longer than the model's context T is an error under both):
//  - stop (the default): generation ends when max_new tokens are produced or when the sequence
//    fills the context: a prompt of n tokens gets at most T - n + 1 new tokens (the last one is
//    never fed back), and `hit_context` says so.
//  - slide: when the next token would not fit, the window jumps forward to the last T/2 tokens
//    (`shifts` counts the jumps) and generation goes on up to max_new. Learned positions cannot
//    be shifted inside the cache, so a jump re-runs those tokens through the batched forward at
//    positions 0 … T/2 - 1, and the cache continues from there; halving the window makes a jump
//    cost one prompt of T/2 tokens per T/2 generated ones. Without the cache the same window is
//    recomputed at every step, so both modes see exactly the same tokens at the same positions.
// Nothing ever reads or writes past the preallocated cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/sampling.h"
#include "minitx/model/weights.h"
#include "minitx/model/gpt.h"

namespace minitx {

enum class ContextPolicy { stop, slide };

struct GenerateOptions {
  std::size_t max_new = 64;
  SamplingConfig sampling;
  bool use_cache = true;
  ContextPolicy policy = ContextPolicy::stop;
  // On the GPU (infer/cuda_decoder.h): the model, its cache and the sampler on the device.
  bool cuda = false;
  GpuPrecision precision = GpuPrecision::bf16;
  bool graphs = true;  // replay each step as a captured CUDA graph
  // A decoder of the same weights to reuse (its cache, captured graphs and device memory), as a
  // benchmark does across runs; null: generate makes its own.
  CudaDecoder* decoder = nullptr;
};

struct GenerateResult {
  std::vector<std::uint32_t> tokens;  // the new tokens only
  std::vector<double> step_seconds;   // time to produce each new token (the first includes the prompt)
  bool hit_context = false;           // stop: ended early at the context
  std::size_t shifts = 0;             // slide: how many times the window jumped forward
};

// "stop" or "slide"; anything else is an error naming `what`.
ContextPolicy parse_context_policy(const std::string& text, const std::string& what);

// `on_token` (may be empty) sees each new token as soon as it is chosen.
GenerateResult generate(const GptModel& model, const std::vector<std::uint32_t>& prompt, const GenerateOptions& options,
                        const std::function<void(std::uint32_t)>& on_token = {});
// The same on any weights, fp32 or quantized (linear.h).
GenerateResult generate(const GptWeights& weights, const std::vector<std::uint32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(std::uint32_t)>& on_token = {});

}  // namespace minitx
