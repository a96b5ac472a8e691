#include "minitx/model/gpt.h"

#include <algorithm>

#include "cpu_block_ops.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/memory.h"

namespace minitx {

GptModel::GptModel(const ModelConfig& model_config)
    : config(model_config),
      storage(zeros<float>(param_count(model_config),
                           fmt::format("the parameters of a model of {} layers of width {}", model_config.n_layer,
                                       model_config.n_embd))),
      params(bind_params(storage.data(), config)) {}

GptActivations::GptActivations(const ModelConfig& m, std::size_t batch, std::size_t time, bool keep) {
  const std::size_t state = CpuBlockOps::attention_state(m, batch, time);
  storage = zeros<float>(bind_activations<float>(*this, nullptr, m, batch, time, keep, state) / sizeof(float),
                         fmt::format("the activations of batch {} × {}", batch, time));
  bind_activations<float>(*this, storage.data(), m, batch, time, keep, state);
}

BackwardBuffers::BackwardBuffers(const ModelConfig& m, std::size_t B, std::size_t T) {
  const std::string what = fmt::format("the backward's buffers of batch {} × {}", B, T);
  storage = zeros<float>(bind_gradients<float>(*this, nullptr, m, B, T) / sizeof(float), what);
  bind_gradients<float>(*this, storage.data(), m, B, T);
  // Sized here rather than at the first backward, so that a step that cannot get it fails before
  // training starts, under this name.
  datt = zeros<float>(CpuBlockOps::attention_state(m, B, T), what);
}

GptTrainer::GptTrainer(const GptModel& model, std::size_t B, std::size_t T, std::size_t mean_over)
    : model_(model), B_(B), T_(T), mean_over_(mean_over == 0 ? B * T : mean_over), acts_(model.config, B, T, true), buffers_(model.config, B, T) {
  logits_ = zeros<float>(B * T * model.config.vocab_size,
                         fmt::format("the logits of batch {} × {} over {} tokens", B, T, model.config.vocab_size));
  losses_.resize(B * T);
}

double GptTrainer::forward(const std::uint32_t* ids, const std::uint32_t* targets) {
  const std::size_t BT = B_ * T_;
  check_token_ids(targets, BT, model_.config, "training targets");
  ids_.assign(ids, ids + BT);
  const GptWeights w = weights_of(model_);
  gpt_forward(w, acts_, ids, B_, T_);
  gpt_logits(w, logits_.data(), acts_.lnf, BT);
  // The mean loss's gradient is 1/mean_over per position; computed now while the logits are hot.
  cpu::crossentropy_forward_backward(losses_.data(), logits_.data(), targets, BT, model_.config.vocab_size,
                                     1.0f / static_cast<float>(mean_over_));
  double sum = 0.0;
  for (float loss : losses_) sum += loss;
  return sum / static_cast<double>(mean_over_);
}

void GptTrainer::backward(float* grad_base) {
  std::fill(grad_base, grad_base + param_count(model_.config), 0.0f);
  gpt_backward(model_, bind_params(grad_base, model_.config), acts_, ids_.data(), logits_.data(), buffers_);
}

}  // namespace minitx
