// The forward on the CPU (block.h's, with the CPU's op table) and the decode step: one
// definition of a layer for every architecture and every weight storage (fp32 or quantized
// matrices, weights.h).
#include <algorithm>
#include <vector>

#include "activation.h"
#include "cpu_block_ops.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/backend/cpu/sparse_attention.h"
#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"

namespace minitx {

void check_token_ids(const std::uint32_t* ids, std::size_t n, const ModelConfig& m, const char* source) {
  for (std::size_t i = 0; i < n; ++i)
    MINITX_CHECK(ids[i] < m.vocab_size, "{}: token id {} at index {} is outside the model's vocabulary of {} tokens",
                 source, ids[i], i, m.vocab_size);
}

void gpt_forward(const GptWeights& w, GptActivations& a, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache) {
  const ModelConfig& m = w.config;
  MINITX_CHECK(T >= 1 && T <= m.context, "forward: {} positions do not fit the model's context of {}", T, m.context);
  MINITX_CHECK(cache == nullptr || B == 1, "forward: a KV cache holds one sequence, not {}", B);
  check_token_ids(ids, B * T, m, "forward");
  CpuBlockOps ops(w, cache);
  block_forward(ops, a, ids, B, T);
}

void gpt_logits(const GptWeights& w, float* logits, const float* x, std::size_t N) {
  linear_forward(logits, x, w.head, nullptr, N);
}

StepBuffers::StepBuffers(const ModelConfig& m)
    : x(m.n_embd), ln(m.n_embd), ln2(m.n_embd), qkv(3 * m.n_embd), atty(m.n_embd), proj(m.n_embd),
      fch(m.ffn_width()), fch_act(m.ffn_width()) {
  if (!m.attention.dense())
    layout = sparse::build_layout(m.attention, static_cast<std::int32_t>(m.context), static_cast<std::int32_t>(m.n_head),
                                  CpuBlockOps::kDenseBlock);
}

void gpt_step(const GptWeights& w, KvCache& cache, StepBuffers& s, std::uint32_t id, float* logits) {
  const ModelConfig& m = w.config;
  const std::size_t C = m.n_embd, NH = m.n_head, pos = cache.length;
  MINITX_CHECK(pos < m.context, "generate: position {} is past the model's context of {} tokens", pos, m.context);
  check_token_ids(&id, 1, m, "generate");
  const float eps = static_cast<float>(m.ln_eps);
  float* x = s.x.data();
  linear_row(x, w.wte, id);
  if (m.position == ModelConfig::Position::learned) {
    linear_row(s.proj.data(), w.wpe, pos + m.position_offset);
    for (std::size_t c = 0; c < C; ++c) x[c] += s.proj[c];
  }
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    const GptLayerWeights& y = w.layers[l];
    cpu::layernorm_forward(s.ln.data(), nullptr, nullptr, x, y.ln1w, y.ln1b, 1, C, eps);
    linear_matvec(s.qkv.data(), y.qkvw, s.ln.data(), y.qkvb);
    if (m.position == ModelConfig::Position::rotary)
      cpu::rotary_forward(s.qkv.data(), 1, 1, C, NH, m.rotary_dims(), static_cast<float>(m.rotary_base), pos);
    cache.store(l, pos, s.qkv.data(), 1);
    if (s.scores.size() < NH * (pos + 1)) s.scores.resize(NH * std::min(m.context, 2 * (pos + 1)));
    if (s.layout)
      cpu::sparse_attention_decode(s.atty.data(), s.scores.data(), s.qkv.data(), cache.keys(l), cache.values(l), *s.layout,
                                   pos, C, NH, cache.slots());
    else
      cpu::attention_decode(s.atty.data(), s.scores.data(), s.qkv.data(), cache.keys(l), cache.values(l), pos + 1, C,
                            NH);
    linear_matvec(s.proj.data(), y.attprojw, s.atty.data(), y.attprojb);
    if (m.parallel_residual) cpu::layernorm_forward(s.ln2.data(), nullptr, nullptr, x, y.ln2w, y.ln2b, 1, C, eps);
    for (std::size_t c = 0; c < C; ++c) x[c] += s.proj[c];
    if (!m.parallel_residual) cpu::layernorm_forward(s.ln2.data(), nullptr, nullptr, x, y.ln2w, y.ln2b, 1, C, eps);
    linear_matvec(s.fch.data(), y.fcw, s.ln2.data(), y.fcb);
    detail::activation_forward(m.activation, s.fch_act.data(), s.fch.data(), m.ffn_width());
    linear_matvec(s.proj.data(), y.fcprojw, s.fch_act.data(), y.fcprojb);
    for (std::size_t c = 0; c < C; ++c) x[c] += s.proj[c];
  }
  cpu::layernorm_forward(s.ln.data(), nullptr, nullptr, x, w.lnfw, w.lnfb, 1, C, eps);
  linear_matvec(logits, w.head, s.ln.data(), nullptr);
  cache.length = pos + 1;
}

}  // namespace minitx
