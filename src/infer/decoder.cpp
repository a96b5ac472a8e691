#include "minitx/infer/decoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <new>
#include <utility>

#include "minitx/core/error.h"
#include "minitx/core/memory.h"

namespace minitx {

Decoder::Decoder(const GptModel& model) : Decoder(weights_of(model)) {}

namespace {

KvCache make_cache(const ModelConfig& m) {
  const std::size_t positions = std::min(m.context, kEagerPositions);
  return allocating(fmt::format("the KV cache of {} positions × {} layers", positions, m.n_layer),
                    2.0 * static_cast<double>(m.n_layer * positions * m.n_embd) * sizeof(float),
                    [&] { return KvCache(m); });
}

// The cache grows (by doubling) past its first positions: the one allocation a step can make.
[[noreturn]] void fail_growth(const KvCache& cache, std::size_t to) {
  fail_allocation(fmt::format("the KV cache growing to {} positions × {} layers", to, cache.layers),
                  2.0 * static_cast<double>(cache.bytes()));
}

}  // namespace

// Prefill multiplies the whole prompt by each layer matrix, so the fp32 ones are packed once
// here; the head only ever multiplies one row.
Decoder::Decoder(GptWeights weights)
    : weights_(with_packed_matrices(std::move(weights), PackHead::no)), cache_(make_cache(weights_.config)),
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
  try {
    gpt_forward(weights_, acts, ids, 1, n, &cache_);
  } catch (const std::bad_alloc&) {
    fail_growth(cache_, n);
  }
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
  try {
    gpt_step(weights_, cache_, step_, id, logits_.data());
  } catch (const std::bad_alloc&) {
    fail_growth(cache_, cache_.length + 1);
  }
  return logits_;
}

}  // namespace minitx
