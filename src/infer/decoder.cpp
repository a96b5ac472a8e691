#include "minitx/infer/decoder.h"

#include <utility>

#include "minitx/core/error.h"

namespace minitx {

Decoder::Decoder(const GptModel& model) : Decoder(weights_of(model)) {}

// Prefill multiplies the whole prompt by each layer matrix, so the fp32 ones are packed once
// here; the head only ever multiplies one row.
Decoder::Decoder(GptWeights weights)
    : weights_(with_packed_matrices(std::move(weights), PackHead::no)), cache_(weights_.config),
      logits_(weights_.config.vocab_size), step_(weights_.config) {}

namespace {

void check_length(const ModelConfig& m, std::size_t n) {
  MINITX_CHECK(n >= 1, "generate: the sequence is empty: at least one token is needed");
  MINITX_CHECK(n <= m.context, "generate: a sequence of {} tokens does not fit the model's context of {} tokens", n,
               m.context);
}

}  // namespace

const std::vector<float>& Decoder::prefill(const std::uint32_t* ids, std::size_t n) {
  check_length(weights_.config, n);
  GptActivations acts(weights_.config, 1, n, false);
  cache_.length = 0;
  gpt_forward(weights_, acts, ids, 1, n, &cache_);
  cache_.length = n;
  linear_matvec(logits_.data(), weights_.head, acts.lnf + (n - 1) * weights_.config.n_embd, nullptr);
  return logits_;
}

const std::vector<float>& Decoder::logits_recompute(const std::uint32_t* ids, std::size_t n) {
  check_length(weights_.config, n);
  GptActivations acts(weights_.config, 1, n, false);
  gpt_forward(weights_, acts, ids, 1, n);
  linear_matvec(logits_.data(), weights_.head, acts.lnf + (n - 1) * weights_.config.n_embd, nullptr);
  return logits_;
}

const std::vector<float>& Decoder::step(std::uint32_t id) {
  check_length(weights_.config, cache_.length + 1);
  gpt_step(weights_, cache_, step_, id, logits_.data());
  return logits_;
}

}  // namespace minitx
