#include "minitx/model/config.h"

#include <cmath>
#include <numbers>

#include "minitx/core/config.h"
#include "minitx/core/error.h"

namespace minitx {

const char* to_string(ModelConfig::Position position) {
  return position == ModelConfig::Position::learned ? "learned" : "rotary";
}
const char* to_string(ModelConfig::Activation activation) {
  return activation == ModelConfig::Activation::gelu ? "gelu" : "relu";
}

void ModelConfig::validate(const std::string& where) const {
  MINITX_CHECK(n_layer >= 1 && n_embd >= 1 && n_head >= 1 && context >= 1, "{}: the model needs at least one layer, channel, head and position", where);
  MINITX_CHECK(n_embd % n_head == 0, "{}: n_embd = {} is not a multiple of n_head = {}", where, n_embd, n_head);
  MINITX_CHECK(vocab_size >= 2 && vocab_size <= (1u << 24), "{}: vocab size {} out of range 2..16777216", where, vocab_size);
  MINITX_CHECK(position == Position::learned, "{}: position = \"{}\" is not implemented yet in the CPU backend (use \"learned\")", where, to_string(position));
  MINITX_CHECK(!parallel_residual, "{}: parallel_residual = true is not implemented yet in the CPU backend", where);
  MINITX_CHECK(activation == Activation::gelu, "{}: activation = \"{}\" is not implemented yet in the CPU backend (use \"gelu\")", where, to_string(activation));
  MINITX_CHECK(dropout == 0.0, "{}: dropout = {} is not supported: training is deterministic, use 0", where, dropout);
}

ModelConfig parse_model_config(const ConfigSection& s) {
  ModelConfig m;
  m.n_layer = static_cast<std::size_t>(s.integer("n_layer", 1, 256));
  m.n_embd = static_cast<std::size_t>(s.integer("n_embd", 8, 16384));
  m.n_head = static_cast<std::size_t>(s.integer("n_head", 1, 256));
  m.context = static_cast<std::size_t>(s.integer("context", 2, 65536));
  if (m.n_embd % m.n_head != 0)
    s.error("n_head", fmt::format("must divide n_embd = {}, got {}", m.n_embd, m.n_head));
  m.position = s.choice("position", {"learned", "rotary"}, "learned") == "learned" ? ModelConfig::Position::learned
                                                                                   : ModelConfig::Position::rotary;
  m.rotary_fraction = s.number("rotary_fraction", 0.0, 1.0, 1.0);
  m.parallel_residual = s.boolean("parallel_residual", false);
  m.activation = s.choice("activation", {"gelu", "relu"}, "gelu") == "gelu" ? ModelConfig::Activation::gelu
                                                                           : ModelConfig::Activation::relu;
  m.dropout = s.number("dropout", 0.0, 1.0, 0.0);
  m.init_std = s.number("init_std", 1e-6, 1.0, 0.02);
  if (m.position != ModelConfig::Position::learned) s.error("position", "\"rotary\" is not implemented yet in the CPU backend (use \"learned\")");
  if (m.parallel_residual) s.error("parallel_residual", "true is not implemented yet in the CPU backend");
  if (m.activation != ModelConfig::Activation::gelu) s.error("activation", "\"relu\" is not implemented yet in the CPU backend (use \"gelu\")");
  if (m.dropout != 0.0) s.error("dropout", "only 0 is supported: training is deterministic");
  s.finish();
  return m;
}

TrainConfig parse_train_config(const ConfigSection& s) {
  TrainConfig t;
  t.batch_size = static_cast<std::size_t>(s.integer("batch_size", 1, 4096));
  t.seq_len = static_cast<std::size_t>(s.integer("seq_len", 0, 65536, 0));
  t.steps = static_cast<std::size_t>(s.integer("steps", 1, 100000000));
  t.learning_rate = s.number("learning_rate", 0.0, 10.0);
  t.min_lr_fraction = s.number("min_lr_fraction", 0.0, 1.0, 0.1);
  t.warmup_steps = static_cast<std::size_t>(s.integer("warmup_steps", 0, 100000000, 0));
  t.weight_decay = s.number("weight_decay", 0.0, 10.0, 0.1);
  t.beta1 = s.number("beta1", 0.0, 0.999999, 0.9);
  t.beta2 = s.number("beta2", 0.0, 0.999999, 0.95);
  t.eps = s.number("eps", 0.0, 1.0, 1e-8);
  t.grad_clip = s.number("grad_clip", 0.0, 1e6, 1.0);
  t.eval_every = static_cast<std::size_t>(s.integer("eval_every", 1, 100000000, 100));
  t.eval_batches = static_cast<std::size_t>(s.integer("eval_batches", 1, 1000000, 8));
  t.checkpoint_every = static_cast<std::size_t>(s.integer("checkpoint_every", 1, 100000000, 500));
  t.seed = static_cast<std::uint64_t>(s.integer("seed", 0, INT64_MAX, 1337));
  s.finish();
  return t;
}

double learning_rate_at(const TrainConfig& t, std::size_t step) {
  if (step < t.warmup_steps) return t.learning_rate * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  const double min_lr = t.learning_rate * t.min_lr_fraction;
  const std::size_t decay_steps = t.steps > t.warmup_steps + 1 ? t.steps - t.warmup_steps - 1 : 1;
  const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / static_cast<double>(decay_steps));
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (t.learning_rate - min_lr);
}

}  // namespace minitx
