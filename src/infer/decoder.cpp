#include "minitx/infer/decoder.h"

#include <utility>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"

namespace minitx {

Decoder::Decoder(const GptModel& model) : Decoder(weights_of(model)) {}

// Prefill multiplies the whole prompt by each layer matrix, so the fp32 ones are packed once
// here; the head only ever multiplies one row.
Decoder::Decoder(GptWeights weights)
    : weights_(with_packed_matrices(std::move(weights), PackHead::no)), cache_(weights_.config) {
  const ModelConfig& m = weights_.config;
  const std::size_t C = m.n_embd;
  logits_.resize(m.vocab_size);
  x_.resize(C);
  ln_.resize(C);
  qkv_.resize(3 * C);
  atty_.resize(C);
  proj_.resize(C);
  fch_.resize(4 * C);
  fch_gelu_.resize(4 * C);
  scores_.resize(m.n_head * m.context);
}

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
  linear_matvec(logits_.data(), weights_.wte, acts.lnf + (n - 1) * weights_.config.n_embd, nullptr);
  return logits_;
}

const std::vector<float>& Decoder::logits_recompute(const std::uint32_t* ids, std::size_t n) {
  check_length(weights_.config, n);
  GptActivations acts(weights_.config, 1, n, false);
  gpt_forward(weights_, acts, ids, 1, n);
  linear_matvec(logits_.data(), weights_.wte, acts.lnf + (n - 1) * weights_.config.n_embd, nullptr);
  return logits_;
}

const std::vector<float>& Decoder::step(std::uint32_t id) {
  const ModelConfig& m = weights_.config;
  const GptWeights& w = weights_;
  const std::size_t C = m.n_embd, NH = m.n_head, pos = cache_.length;
  check_length(m, pos + 1);
  MINITX_CHECK(id < m.vocab_size, "generate: token id {} is outside the vocabulary of {}", id, m.vocab_size);
  float* x = x_.data();
  linear_row(x, w.wte, id);
  linear_row(proj_.data(), w.wpe, pos);
  for (std::size_t c = 0; c < C; ++c) x[c] += proj_[c];
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    const GptLayerWeights& y = w.layers[l];
    cpu::layernorm_forward(ln_.data(), nullptr, nullptr, x, y.ln1w, y.ln1b, 1, C);
    linear_matvec(qkv_.data(), y.qkvw, ln_.data(), y.qkvb);
    cache_.store(l, pos, qkv_.data(), 1);
    cpu::attention_decode(atty_.data(), scores_.data(), qkv_.data(), cache_.keys(l), cache_.values(l), pos + 1, C, NH);
    linear_matvec(proj_.data(), y.attprojw, atty_.data(), y.attprojb);
    for (std::size_t c = 0; c < C; ++c) x[c] += proj_[c];
    cpu::layernorm_forward(ln_.data(), nullptr, nullptr, x, y.ln2w, y.ln2b, 1, C);
    linear_matvec(fch_.data(), y.fcw, ln_.data(), y.fcb);
    cpu::gelu_forward(fch_gelu_.data(), fch_.data(), 4 * C);
    linear_matvec(proj_.data(), y.fcprojw, fch_gelu_.data(), y.fcprojb);
    for (std::size_t c = 0; c < C; ++c) x[c] += proj_[c];
  }
  cpu::layernorm_forward(ln_.data(), nullptr, nullptr, x, w.lnfw, w.lnfb, 1, C);
  linear_matvec(logits_.data(), w.wte, ln_.data(), nullptr);
  cache_.length = pos + 1;
  return logits_;
}

}  // namespace minitx
