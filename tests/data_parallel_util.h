// What the CPU and GPU data-parallel tests share: the training settings and a fresh state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/model/config.h"
#include "minitx/model/params.h"
#include "minitx/model/train_engine.h"

namespace minitx::test {

// A short run with a low clip (steps clip, so the global norm must agree across ranks), an
// evaluation and checkpoints inside it, B = 8 sequences of `seq_len` in M micro-batches.
inline TrainConfig dp_train_config(std::size_t steps, std::size_t micro_batches, std::size_t seq_len) {
  TrainConfig t;
  t.batch_size = 8;
  t.seq_len = seq_len;
  t.micro_batches = micro_batches;
  t.steps = steps;
  t.learning_rate = 3e-3;
  t.warmup_steps = 2;
  t.eval_every = 3;
  t.eval_batches = 1;
  t.checkpoint_every = 4;
  t.grad_clip = 0.5;
  t.seed = 11;
  return t;
}

// Initialised parameters (from `seed`) and zero moments.
inline TrainState seeded_state(const ModelConfig& m, std::uint64_t seed) {
  const std::size_t P = param_count(m);
  TrainState s{std::vector<float>(P), std::vector<float>(P), std::vector<float>(P)};
  init_params(s.params.data(), m, seed);
  return s;
}

}  // namespace minitx::test
