// The block's forward and its decode step: one definition of a layer for every architecture
// and every weight storage (fp32 or quantized matrices, weights.h).
#include <algorithm>
#include <vector>

#include "activation.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"

namespace minitx {

namespace {

const float* floats(const Linear& w) { return reinterpret_cast<const float*>(w.data); }

// Token rows plus learned positions, for any storage of the tables.
void embed(const GptWeights& w, float* out, const std::uint32_t* ids, std::size_t BT, std::size_t T) {
  const ModelConfig& m = w.config;
  const std::size_t C = m.n_embd, offset = m.position_offset;
  const bool learned = m.position == ModelConfig::Position::learned;
  if (w.wte.format == quant::Format::f32 && (!learned || w.wpe.format == quant::Format::f32)) {
    cpu::encoder_forward(out, ids, floats(w.wte), learned ? floats(w.wpe) : nullptr, BT, T, C, offset);
    return;
  }
  // Quantized tables: one row of each dequantized per token, never the whole table.
  parallel_for(BT, [&](std::size_t begin, std::size_t end) {
    std::vector<float> pos(C);
    for (std::size_t n = begin; n < end; ++n) {
      float* o = out + n * C;
      linear_row(o, w.wte, ids[n]);
      if (!learned) continue;
      linear_row(pos.data(), w.wpe, n % T + offset);
      for (std::size_t c = 0; c < C; ++c) o[c] += pos[c];
    }
  });
}

}  // namespace

void check_token_ids(const std::uint32_t* ids, std::size_t n, const ModelConfig& m, const char* source) {
  for (std::size_t i = 0; i < n; ++i)
    MINITX_CHECK(ids[i] < m.vocab_size, "{}: token id {} at index {} is outside the model's vocabulary of {} tokens",
                 source, ids[i], i, m.vocab_size);
}

void gpt_forward(const GptWeights& w, GptActivations& a, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache) {
  const ModelConfig& m = w.config;
  const std::size_t L = m.n_layer, C = m.n_embd, F = m.ffn_width(), NH = m.n_head, BT = B * T;
  MINITX_CHECK(T >= 1 && T <= m.context, "forward: {} positions do not fit the model's context of {}", T, m.context);
  MINITX_CHECK(cache == nullptr || B == 1, "forward: a KV cache holds one sequence, not {}", B);
  check_token_ids(ids, BT, m, "forward");
  const float eps = static_cast<float>(m.ln_eps);
  const float rotary_base = static_cast<float>(m.rotary_base);
  embed(w, a.encoded, ids, BT, T);
  const float* residual = a.encoded;
  for (std::size_t l = 0; l < L; ++l) {
    const GptLayerWeights& y = w.layers[l];
    float* ln1 = a.ln1 + l * a.s_btc;
    float* qkv = a.qkv + l * a.s_bt3c;
    float* atty = a.atty + l * a.s_btc;
    float* attproj = a.attproj + l * a.s_btc;
    float* residual2 = a.residual2 + l * a.s_btc;
    float* ln2 = a.ln2 + l * a.s_btc;
    float* fch = a.fch + l * a.s_btf;
    float* fch_act = a.fch_act + l * a.s_btf;
    float* fcproj = a.fcproj + l * a.s_btc;
    float* residual3 = a.residual3 + l * a.s_btc;
    cpu::layernorm_forward(ln1, a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt, residual, y.ln1w, y.ln1b, BT, C, eps);
    linear_forward(qkv, ln1, y.qkvw, y.qkvb, BT);
    if (m.position == ModelConfig::Position::rotary) cpu::rotary_forward(qkv, B, T, C, NH, m.rotary_dims(), rotary_base);
    if (cache != nullptr) cache->store(l, 0, qkv, T);
    cpu::attention_forward(atty, a.att + l * a.s_att, qkv, B, T, C, NH);
    linear_forward(attproj, atty, y.attprojw, y.attprojb, BT);
    cpu::residual_forward(residual2, residual, attproj, BT * C);
    // A parallel residual (GPT-NeoX) feeds the MLP the layer's input, not input + attention.
    const float* mlp_in = m.parallel_residual ? residual : residual2;
    cpu::layernorm_forward(ln2, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt, mlp_in, y.ln2w, y.ln2b, BT, C, eps);
    linear_forward(fch, ln2, y.fcw, y.fcb, BT);
    detail::activation_forward(m.activation, fch_act, fch, BT * F);
    linear_forward(fcproj, fch_act, y.fcprojw, y.fcprojb, BT);
    cpu::residual_forward(residual3, residual2, fcproj, BT * C);
    residual = residual3;
  }
  cpu::layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, w.lnfw, w.lnfb, BT, C, eps);
}

void gpt_logits(const GptWeights& w, float* logits, const float* x, std::size_t N) {
  linear_forward(logits, x, w.head, nullptr, N);
}

StepBuffers::StepBuffers(const ModelConfig& m)
    : x(m.n_embd), ln(m.n_embd), ln2(m.n_embd), qkv(3 * m.n_embd), atty(m.n_embd), proj(m.n_embd),
      fch(m.ffn_width()), fch_act(m.ffn_width()) {}

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
    cpu::attention_decode(s.atty.data(), s.scores.data(), s.qkv.data(), cache.keys(l), cache.values(l), pos + 1, C, NH);
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
