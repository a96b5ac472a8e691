#include "minitx/model/gpt.h"

#include <algorithm>
#include <cstring>

#include "minitx/backend/cpu/ops.h"
#include "minitx/infer/kv_cache.h"
#include "minitx/infer/linear.h"

namespace minitx {

GptModel::GptModel(const ModelConfig& model_config)
    : config(model_config), storage(param_count(model_config), 0.0f), params(bind_params(storage.data(), config)) {}

GptActivations::GptActivations(const ModelConfig& m, std::size_t batch, std::size_t time, bool keep)
    : B(batch), T(time), keep_layers(keep) {
  const std::size_t C = m.n_embd, NH = m.n_head, Ls = keep ? m.n_layer : 1, BT = B * T;
  s_btc = keep ? BT * C : 0;
  s_bt = keep ? BT : 0;
  s_bt3c = keep ? BT * 3 * C : 0;
  s_att = keep ? B * NH * T * T : 0;
  s_bt4c = keep ? BT * 4 * C : 0;
  const std::size_t sizes[] = {BT * C,      Ls * BT * C,     Ls * BT,     Ls * BT,     Ls * BT * 3 * C,
                               Ls * BT * C, Ls * B * NH * T * T, Ls * BT * C, Ls * BT * C, Ls * BT * C,
                               Ls * BT,     Ls * BT,         Ls * BT * 4 * C, Ls * BT * 4 * C, Ls * BT * C,
                               Ls * BT * C, BT * C,          BT,          BT};
  float** fields[] = {&encoded, &ln1,       &ln1_mean, &ln1_rstd, &qkv,    &atty,      &att,
                      &attproj, &residual2, &ln2,      &ln2_mean, &ln2_rstd, &fch,     &fch_gelu,
                      &fcproj,  &residual3, &lnf,      &lnf_mean, &lnf_rstd};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  storage.assign(total, 0.0f);
  float* p = storage.data();
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    *fields[i] = p;
    p += sizes[i];
  }
}

// One forward for training, evaluation and decoding, fp32 or quantized: infer/linear.cpp.
void gpt_forward(const GptModel& model, GptActivations& a, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache) {
  gpt_forward(weights_of(model), a, ids, B, T, cache);
}

void gpt_logits(const GptModel& model, float* logits, const float* x, std::size_t N) {
  gpt_logits(weights_of(model), logits, x, N);
}

GptTrainer::GptTrainer(const GptModel& model, std::size_t B, std::size_t T)
    : model_(model), B_(B), T_(T), acts_(model.config, B, T, true) {
  const std::size_t C = model.config.n_embd, NH = model.config.n_head, BT = B * T;
  logits_.resize(BT * model.config.vocab_size);
  losses_.resize(BT);
  dresidual_.resize(BT * C);
  dln_.resize(BT * C);
  dqkv_.resize(BT * 3 * C);
  datty_.resize(BT * C);
  datt_.resize(B * NH * T * T);
  dfch_.resize(BT * 4 * C);
  dfch_gelu_.resize(BT * 4 * C);
  dlnf_.resize(BT * C);
}

double GptTrainer::forward(const std::uint32_t* ids, const std::uint32_t* targets) {
  const std::size_t BT = B_ * T_;
  ids_.assign(ids, ids + BT);
  gpt_forward(model_, acts_, ids, B_, T_);
  gpt_logits(model_, logits_.data(), acts_.lnf, BT);
  // The mean loss's gradient is 1/(B·T) per position; computed now while the logits are hot.
  cpu::crossentropy_forward_backward(losses_.data(), logits_.data(), targets, BT, model_.config.vocab_size,
                                     1.0f / static_cast<float>(BT));
  double sum = 0.0;
  for (float loss : losses_) sum += loss;
  return sum / static_cast<double>(BT);
}

void GptTrainer::backward(float* grad_base) {
  const ModelConfig& m = model_.config;
  const GptParams& p = model_.params;
  const GptActivations& a = acts_;
  const std::size_t L = m.n_layer, C = m.n_embd, NH = m.n_head, V = m.vocab_size, B = B_, T = T_, BT = B * T;
  std::fill(grad_base, grad_base + param_count(m), 0.0f);
  const GptParams g = bind_params(grad_base, m);
  auto zero = [](std::vector<float>& v) { std::fill(v.begin(), v.end(), 0.0f); };

  zero(dlnf_);
  cpu::matmul_backward(dlnf_.data(), g.wte, nullptr, logits_.data(), a.lnf, p.wte, BT, C, V);
  zero(dresidual_);
  const float* last = L > 0 ? a.residual3 + (L - 1) * a.s_btc : a.encoded;
  cpu::layernorm_backward(dresidual_.data(), g.lnfw, g.lnfb, dlnf_.data(), last, p.lnfw, a.lnf_mean, a.lnf_rstd, BT, C);
  // dresidual_ holds d(residual3[l]) on entry to layer l and d(its input) on exit: the
  // residual connections pass it through unchanged and the branches add to it.
  for (std::size_t l = L; l-- > 0;) {
    const float* residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * a.s_btc;
    zero(dfch_gelu_);
    cpu::matmul_backward(dfch_gelu_.data(), g.fcprojw + l * 4 * C * C, g.fcprojb + l * C, dresidual_.data(),
                         a.fch_gelu + l * a.s_bt4c, p.fcprojw + l * 4 * C * C, BT, 4 * C, C);
    zero(dfch_);
    cpu::gelu_backward(dfch_.data(), a.fch + l * a.s_bt4c, dfch_gelu_.data(), BT * 4 * C);
    zero(dln_);
    cpu::matmul_backward(dln_.data(), g.fcw + l * 4 * C * C, g.fcb + l * 4 * C, dfch_.data(), a.ln2 + l * a.s_btc,
                         p.fcw + l * 4 * C * C, BT, C, 4 * C);
    cpu::layernorm_backward(dresidual_.data(), g.ln2w + l * C, g.ln2b + l * C, dln_.data(), a.residual2 + l * a.s_btc,
                            p.ln2w + l * C, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt, BT, C);
    zero(datty_);
    cpu::matmul_backward(datty_.data(), g.attprojw + l * C * C, g.attprojb + l * C, dresidual_.data(),
                         a.atty + l * a.s_btc, p.attprojw + l * C * C, BT, C, C);
    zero(dqkv_);
    cpu::attention_backward(dqkv_.data(), datt_.data(), datty_.data(), a.qkv + l * a.s_bt3c, a.att + l * a.s_att, B,
                            T, C, NH);
    zero(dln_);
    cpu::matmul_backward(dln_.data(), g.qkvw + l * 3 * C * C, g.qkvb + l * 3 * C, dqkv_.data(), a.ln1 + l * a.s_btc,
                         p.qkvw + l * 3 * C * C, BT, C, 3 * C);
    cpu::layernorm_backward(dresidual_.data(), g.ln1w + l * C, g.ln1b + l * C, dln_.data(), residual, p.ln1w + l * C,
                            a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt, BT, C);
  }
  cpu::encoder_backward(g.wte, g.wpe, dresidual_.data(), ids_.data(), BT, T, C);
}

}  // namespace minitx
