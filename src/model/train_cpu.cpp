// The CPU's training engine: GptTrainer's forward and backward, the clip and AdamW of cpu/ops.h.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/memory.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#include "minitx/model/train_engine.h"

namespace minitx {

bool bf16_attention_fits(const ModelConfig& config) {
  const std::size_t head = config.n_embd / config.n_head;
  return config.n_embd % config.n_head == 0 && (head == 64 || head == 128);
}

std::string default_precision(const ModelConfig& config, const std::string& device) {
  return device == "cuda" && bf16_attention_fits(config) ? "bf16" : "fp32";
}

double model_flops_per_token(const ModelConfig& config, std::size_t T) {
  return 6.0 * static_cast<double>(param_count(config)) +
         6.0 * static_cast<double>(config.n_layer * T * config.n_embd);
}

std::vector<AdamWSlice> adamw_slices(const ModelConfig& config, const TrainConfig& tc, double lr, std::size_t step) {
  std::vector<AdamWSlice> slices;
  std::size_t offset = 0;
  for (const ParamTensor& t : param_tensors(config)) {
    const std::size_t n = t.size(config.n_layer);
    slices.push_back({offset, n, static_cast<float>(lr), static_cast<float>(tc.beta1), static_cast<float>(tc.beta2),
                      static_cast<float>(tc.eps), t.decay ? static_cast<float>(tc.weight_decay) : 0.0f, step});
    offset += n;
  }
  return slices;
}

TrainingMemory cpu_training_memory(const ModelConfig& m, std::size_t batch, std::size_t time) {
  const auto d = [](std::size_t n) { return static_cast<double>(n); };
  const double P = d(param_count(m)), L = d(m.n_layer), C = d(m.n_embd), F = d(m.ffn_width()), V = d(m.vocab_size);
  const double BT = d(batch) * d(time);
  // As bind_activations, bind_gradients and CpuBlockOps::attention_state lay them out (block.h,
  // cpu_block_ops.h), without their rounding of each buffer to 256 bytes.
  const double attention = d(batch) * d(m.n_head) * d(time) * d(time);
  const auto activations = [&](double layers) {
    return BT * C * 2 + layers * (BT * C * 10 + BT * F * 2 + BT * 4 + attention) + BT * 2;
  };
  const double gradients = BT * C * (m.parallel_residual ? 8 : 7) + BT * F * 2 + attention;
  TrainingMemory out;
  out.state = 4 * P * sizeof(float);
  out.step = (activations(L) + gradients + BT * V + BT) * sizeof(float) + 3 * BT * sizeof(std::uint32_t);
  // evaluate_loss packs the matrices (about P floats) and runs batches without per-layer activations.
  const double evaluation = (P + activations(1) + BT * V) * sizeof(float);
  out.occasional = std::max(3 * P * sizeof(float), evaluation);
  return out;
}

TrainingMemory cuda_training_memory(const ModelConfig& m, const std::string& precision, std::size_t batch,
                                    std::size_t time, double scratch) {
  const auto d = [](std::size_t n) { return static_cast<double>(n); };
  const double P = d(param_count(m)), L = d(m.n_layer), C = d(m.n_embd), F = d(m.ffn_width()), V = d(m.vocab_size);
  const double BT = d(batch) * d(time), act = precision == "bf16" ? 2.0 : 4.0;
  // As bind_activations and bind_gradients lay them out (block.h) for Act of `act` bytes, with
  // CudaBlockOps::attention_state's B·H·T floats per layer for the attention (its log-sum-exp).
  const double attention = d(batch) * d(m.n_head) * d(time);
  const double activations = (BT * C * 2 + L * (BT * C * 10 + BT * F * 2)) * act + (L * (BT * 4 + attention) + BT * 2) * 4;
  const double gradients = (BT * C * (m.parallel_residual ? 8 : 7) + BT * F * 2) * act;
  TrainingMemory out;
  out.state = 4 * P * sizeof(float) + (precision == "bf16" ? P * 2 : 0.0);
  // The logits (B·T × V, in Act), the losses, ids and targets, and embed_backward's token rows
  // (rows, offsets and positions: min(B·T, V), one more, and B·T int32s).
  const double rows = std::min(BT, V);
  out.step = activations + gradients + BT * V * act + BT * 4 * 3 + (rows * 2 + 1 + BT) * 4 + scratch;
  out.occasional = 0;
  return out;
}

void check_gpu_memory(const TrainingMemory& need, std::uint64_t free, std::uint64_t total, const std::string& gpu,
                      const ModelConfig& config, const std::string& precision, std::size_t B, std::size_t T) {
  if (need.total() <= static_cast<double>(free)) return;
  const auto gib = [](double bytes) { return fmt::format("{:.1f} GiB", bytes / (1024.0 * 1024.0 * 1024.0)); };
  fail("train: training this model on {} in {} needs {} of GPU memory, and {} of its {} are free ({} for its {} "
       "parameters with their gradients and AdamW moments{}, {} for the activations, logits and scratch of a batch "
       "of {} × {}); make [model] smaller, or [train] batch_size or seq_len, or free the GPU",
       gpu, precision, gib(need.total()), gib(static_cast<double>(free)), gib(static_cast<double>(total)),
       gib(need.state), param_count(config), precision == "bf16" ? " and their bf16 copy" : "", gib(need.step), B, T);
}

namespace {

class CpuEngine final : public TrainEngine {
 public:
  CpuEngine(const ModelConfig& config, std::size_t B, std::size_t T, TrainState state)
      : model_(config), m_(std::move(state.m)), v_(std::move(state.v)) {
    model_.storage = std::move(state.params);
    model_.params = bind_params(model_.data(), config);
    grads_ = zeros<float>(model_.size(), "the gradients");
    trainer_.emplace(model_, B, T);
  }

  StepStats forward_backward(const std::uint32_t* ids, const std::uint32_t* targets) override {
    StepStats s;
    s.loss = trainer_->forward(ids, targets);
    trainer_->backward(grads_.data());
    s.norm = std::sqrt(cpu::sum_of_squares(grads_.data(), grads_.size()));
    return s;
  }

  void update(const TrainConfig& tc, double lr, const StepStats& stats, std::size_t step) override {
    if (tc.grad_clip > 0 && stats.norm > tc.grad_clip)
      cpu::scale_in_place(grads_.data(), grads_.size(), static_cast<float>(tc.grad_clip / stats.norm));
    for (const AdamWSlice& a : adamw_slices(model_.config, tc, lr, step)) {
      const cpu::AdamWStep s{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.t};
      cpu::adamw_update(model_.data() + a.offset, grads_.data() + a.offset, m_.data() + a.offset,
                        v_.data() + a.offset, a.count, s);
    }
  }

  double evaluate(const std::vector<std::uint32_t>& val, std::size_t T, std::size_t B,
                  std::size_t max_windows) override {
    return evaluate_loss(model_, val, T, B, max_windows).mean_loss();
  }

  TrainState state() const override { return {model_.storage, m_, v_}; }
  std::string device() const override { return "cpu"; }
  std::string precision() const override { return "fp32"; }

 private:
  GptModel model_;
  std::vector<float> grads_, m_, v_;
  std::optional<GptTrainer> trainer_;
};

}  // namespace

std::unique_ptr<TrainEngine> make_cpu_engine(const ModelConfig& config, std::size_t B, std::size_t T,
                                             TrainState state) {
  return std::make_unique<CpuEngine>(config, B, T, std::move(state));
}

}  // namespace minitx
