// Next-token logits for generation, two ways:
//  - with the KV cache: prefill() runs the prompt through the batched forward once and stores
//    every layer's keys and values; step() then runs one token through matrix-vector products
//    and attends over the cache, O(position) work per token.
//  - without: logits_recompute() runs the whole sequence through the forward at every step,
//    O(position²) work per token.
// Both stop at the model's context: a sequence longer than the context is an error, never a
// read or write past the cache (the generator's policy is to stop there; see generate.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/model/kv_cache.h"
#include "minitx/model/weights.h"
#include "minitx/model/gpt.h"

namespace minitx {

class Decoder {
 public:
  explicit Decoder(const GptModel& model);
  // Any weights: fp32 or quantized (linear.h). The views must outlive the decoder.
  explicit Decoder(GptWeights weights);

  // Clears the cache and fills it with `ids`; returns the logits (V) after the last id.
  const std::vector<float>& prefill(const std::uint32_t* ids, std::size_t n);
  // Appends one token at position length(); returns the logits (V) after it.
  const std::vector<float>& step(std::uint32_t id);
  // No cache: the forward over all of `ids` (n ≤ context); the logits after the last id.
  const std::vector<float>& logits_recompute(const std::uint32_t* ids, std::size_t n);

  std::size_t length() const { return cache_.length; }
  // What the KV cache takes now (flat for local and sinks patterns: a ring of their span).
  std::size_t kv_cache_bytes() const { return cache_.bytes(); }
  const ModelConfig& config() const { return weights_.config; }

 private:
  GptWeights weights_;
  KvCache cache_;
  std::vector<float> logits_;
  StepBuffers step_;
};

}  // namespace minitx
