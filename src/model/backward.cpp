// The block's backward: gpt_forward and gpt_logits reversed, for every architecture.
#include <algorithm>

#include "activation.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/model/gpt.h"

namespace minitx {

BackwardBuffers::BackwardBuffers(const ModelConfig& m, std::size_t B, std::size_t T) {
  const std::size_t C = m.n_embd, F = m.ffn_width(), NH = m.n_head, BT = B * T;
  dresidual.resize(BT * C);
  if (m.parallel_residual) dres2.resize(BT * C);
  dln.resize(BT * C);
  dqkv.resize(BT * 3 * C);
  datty.resize(BT * C);
  datt.resize(B * NH * T * T);
  dfch.resize(BT * F);
  dfch_act.resize(BT * F);
  dlnf.resize(BT * C);
}

void gpt_backward(const GptModel& model, const GptParams& g, const GptActivations& a, const std::uint32_t* ids,
                  const float* dlogits, BackwardBuffers& buf) {
  const ModelConfig& m = model.config;
  const GptParams& p = model.params;
  const std::size_t L = m.n_layer, C = m.n_embd, F = m.ffn_width(), NH = m.n_head, V = m.vocab_size, B = a.B,
                    T = a.T, BT = B * T;
  const float rotary_base = static_cast<float>(m.rotary_base);
  auto zero = [](std::vector<float>& v) { std::fill(v.begin(), v.end(), 0.0f); };
  // Per-layer slices of a stacked tensor (bias pointers stay null when there are no biases).
  const auto slice = [](float* base, std::size_t l, std::size_t n) { return base == nullptr ? nullptr : base + l * n; };

  zero(buf.dlnf);
  float* g_head = m.tied_head ? g.wte : g.head;
  const float* p_head = m.tied_head ? p.wte : p.head;
  cpu::matmul_backward(buf.dlnf.data(), g_head, nullptr, dlogits, a.lnf, p_head, BT, C, V);
  zero(buf.dresidual);
  const float* last = a.residual3 + (L - 1) * a.s_btc;
  cpu::layernorm_backward(buf.dresidual.data(), g.lnfw, g.lnfb, buf.dlnf.data(), last, p.lnfw, a.lnf_mean, a.lnf_rstd,
                          BT, C);
  // dresidual holds d(residual3[l]) on entry to layer l and d(its input) on exit: the residual
  // connections pass it through unchanged and the branches add to it. With a parallel residual
  // both branches read d(residual3), kept in dres2 while the norms add to dresidual.
  for (std::size_t l = L; l-- > 0;) {
    const float* residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * a.s_btc;
    float* dbranch = buf.dresidual.data();
    if (m.parallel_residual) {
      std::copy(buf.dresidual.begin(), buf.dresidual.end(), buf.dres2.begin());
      dbranch = buf.dres2.data();
    }
    zero(buf.dfch_act);
    cpu::matmul_backward(buf.dfch_act.data(), g.fcprojw + l * C * F, slice(g.fcprojb, l, C), dbranch,
                         a.fch_act + l * a.s_btf, p.fcprojw + l * C * F, BT, F, C);
    zero(buf.dfch);
    detail::activation_backward(m.activation, buf.dfch.data(), a.fch + l * a.s_btf, buf.dfch_act.data(), BT * F);
    zero(buf.dln);
    cpu::matmul_backward(buf.dln.data(), g.fcw + l * F * C, slice(g.fcb, l, F), buf.dfch.data(), a.ln2 + l * a.s_btc,
                         p.fcw + l * F * C, BT, C, F);
    const float* mlp_in = m.parallel_residual ? residual : a.residual2 + l * a.s_btc;
    cpu::layernorm_backward(buf.dresidual.data(), g.ln2w + l * C, g.ln2b + l * C, buf.dln.data(), mlp_in,
                            p.ln2w + l * C, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt, BT, C);
    zero(buf.datty);
    cpu::matmul_backward(buf.datty.data(), g.attprojw + l * C * C, slice(g.attprojb, l, C), dbranch,
                         a.atty + l * a.s_btc, p.attprojw + l * C * C, BT, C, C);
    zero(buf.dqkv);
    cpu::attention_backward(buf.dqkv.data(), buf.datt.data(), buf.datty.data(), a.qkv + l * a.s_bt3c,
                            a.att + l * a.s_att, B, T, C, NH);
    if (m.position == ModelConfig::Position::rotary)
      cpu::rotary_backward(buf.dqkv.data(), B, T, C, NH, m.rotary_dims(), rotary_base);
    zero(buf.dln);
    cpu::matmul_backward(buf.dln.data(), g.qkvw + l * 3 * C * C, slice(g.qkvb, l, 3 * C), buf.dqkv.data(),
                         a.ln1 + l * a.s_btc, p.qkvw + l * 3 * C * C, BT, C, 3 * C);
    cpu::layernorm_backward(buf.dresidual.data(), g.ln1w + l * C, g.ln1b + l * C, buf.dln.data(), residual,
                            p.ln1w + l * C, a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt, BT, C);
  }
  cpu::encoder_backward(g.wte, g.wpe, buf.dresidual.data(), ids, BT, T, C, m.position_offset);
}

}  // namespace minitx
