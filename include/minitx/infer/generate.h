// Autoregressive generation with or without the KV cache.
//
// Context policy: *stop*. A prompt longer than the model's context is an error. Generation
// ends when max_new tokens are produced or when the sequence fills the context: with a prompt of
// n tokens and context T at most T - n + 1 new tokens come out (the last one is never fed back),
// and `hit_context` says so. Nothing ever reads or writes past the preallocated cache. (A sliding
// window would need the positions of cached keys to shift, which learned positions cannot do
// without recomputing everything; stopping keeps both modes exact and comparable.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "minitx/infer/sampling.h"
#include "minitx/infer/linear.h"
#include "minitx/model/gpt.h"

namespace minitx {

struct GenerateOptions {
  std::size_t max_new = 64;
  SamplingConfig sampling;
  bool use_cache = true;
};

struct GenerateResult {
  std::vector<std::uint32_t> tokens;  // the new tokens only
  std::vector<double> step_seconds;   // time to produce each new token (the first includes the prompt)
  bool hit_context = false;
};

// `on_token` (may be empty) sees each new token as soon as it is chosen.
GenerateResult generate(const GptModel& model, const std::vector<std::uint32_t>& prompt, const GenerateOptions& options,
                        const std::function<void(std::uint32_t)>& on_token = {});
// The same on any weights, fp32 or quantized (linear.h).
GenerateResult generate(const GptWeights& weights, const std::vector<std::uint32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(std::uint32_t)>& on_token = {});

}  // namespace minitx
