// The [model] and [train] sections of an experiment.
//
// GPT-2 style today: learned positions, pre-LayerNorm, GELU, tied input/output embeddings. The
// fields for rotary positions (full or partial), parallel residual and ReLU are already part of
// the config so that Pythia/OPT-style models can be added without reshaping it; until their
// kernels exist, choosing them is an error that says so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace minitx {

class ConfigSection;

struct ModelConfig {
  enum class Position { learned, rotary };
  enum class Activation { gelu, relu };

  std::size_t n_layer = 4, n_embd = 256, n_head = 4;
  std::size_t context = 256;  // positions the model can see (block size)
  std::size_t vocab_size = 0;  // from the tokenizer (token file header), not the config
  Position position = Position::learned;
  double rotary_fraction = 1.0;  // with rotary: share of each head's dimensions rotated
  bool parallel_residual = false;
  Activation activation = Activation::gelu;
  double dropout = 0.0;  // only 0 is supported: training is deterministic
  double init_std = 0.02;

  std::size_t head_size() const { return n_embd / n_head; }
  // Throws unless the shape is usable (heads divide the width, vocab known, ...).
  void validate(const std::string& where) const;
};

struct TrainConfig {
  std::size_t batch_size = 8;
  std::size_t seq_len = 0;  // 0: the model's context
  std::size_t steps = 1000;
  double learning_rate = 1e-3, min_lr_fraction = 0.1;
  std::size_t warmup_steps = 100;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // global-norm clip; 0 disables
  std::size_t eval_every = 100, eval_batches = 8;
  std::size_t checkpoint_every = 500;
  std::uint64_t seed = 1337;
};

ModelConfig parse_model_config(const ConfigSection& section);
TrainConfig parse_train_config(const ConfigSection& section);

// Learning rate at 0-based step `step`: linear warmup to learning_rate over warmup_steps, then
// cosine decay to min_lr_fraction·learning_rate at the last step.
double learning_rate_at(const TrainConfig& train, std::size_t step);

const char* to_string(ModelConfig::Position position);
const char* to_string(ModelConfig::Activation activation);

}  // namespace minitx
