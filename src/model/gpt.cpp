#include "minitx/model/gpt.h"

#include <algorithm>

#include "minitx/backend/cpu/ops.h"

namespace minitx {

GptModel::GptModel(const ModelConfig& model_config)
    : config(model_config), storage(param_count(model_config), 0.0f), params(bind_params(storage.data(), config)) {}

GptActivations::GptActivations(const ModelConfig& m, std::size_t batch, std::size_t time, bool keep)
    : B(batch), T(time), keep_layers(keep) {
  const std::size_t C = m.n_embd, F = m.ffn_width(), NH = m.n_head, Ls = keep ? m.n_layer : 1, BT = B * T;
  s_btc = keep ? BT * C : 0;
  s_bt = keep ? BT : 0;
  s_bt3c = keep ? BT * 3 * C : 0;
  s_att = keep ? B * NH * T * T : 0;
  s_btf = keep ? BT * F : 0;
  const std::size_t sizes[] = {BT * C,      Ls * BT * C,     Ls * BT,     Ls * BT,     Ls * BT * 3 * C,
                               Ls * BT * C, Ls * B * NH * T * T, Ls * BT * C, Ls * BT * C, Ls * BT * C,
                               Ls * BT,     Ls * BT,         Ls * BT * F, Ls * BT * F, Ls * BT * C,
                               Ls * BT * C, BT * C,          BT,          BT};
  float** fields[] = {&encoded, &ln1,       &ln1_mean, &ln1_rstd, &qkv,    &atty,      &att,
                      &attproj, &residual2, &ln2,      &ln2_mean, &ln2_rstd, &fch,     &fch_act,
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

GptTrainer::GptTrainer(const GptModel& model, std::size_t B, std::size_t T)
    : model_(model), B_(B), T_(T), acts_(model.config, B, T, true), buffers_(model.config, B, T) {
  logits_.resize(B * T * model.config.vocab_size);
  losses_.resize(B * T);
}

double GptTrainer::forward(const std::uint32_t* ids, const std::uint32_t* targets) {
  const std::size_t BT = B_ * T_;
  check_token_ids(targets, BT, model_.config, "training targets");
  ids_.assign(ids, ids + BT);
  const GptWeights w = weights_of(model_);
  gpt_forward(w, acts_, ids, B_, T_);
  gpt_logits(w, logits_.data(), acts_.lnf, BT);
  // The mean loss's gradient is 1/(B·T) per position; computed now while the logits are hot.
  cpu::crossentropy_forward_backward(losses_.data(), logits_.data(), targets, BT, model_.config.vocab_size,
                                     1.0f / static_cast<float>(BT));
  double sum = 0.0;
  for (float loss : losses_) sum += loss;
  return sum / static_cast<double>(BT);
}

void GptTrainer::backward(float* grad_base) {
  std::fill(grad_base, grad_base + param_count(model_.config), 0.0f);
  gpt_backward(model_, bind_params(grad_base, model_.config), acts_, ids_.data(), logits_.data(), buffers_);
}

}  // namespace minitx
