// A GPT of any architecture the descriptor (config.h) describes: its parameters, the activations
// of a forward pass, and the block — one forward and one backward (block.h's templates, run with
// the CPU's op table) and one decode step. Training, evaluation, prefill, generation and
// quantized models all run these.
//
// B = batch, T = time (≤ context), C = channels, F = FFN width, L = layers, V = vocab rows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "minitx/model/block.h"
#include "minitx/model/config.h"
#include "minitx/model/params.h"
#include "minitx/model/weights.h"

namespace minitx {

struct KvCache;

struct GptModel {
  ModelConfig config;
  std::vector<float> storage;  // param_count(config) floats
  GptParams params{};

  explicit GptModel(const ModelConfig& config);  // zero parameters; call init_params or load
  GptModel(const GptModel&) = delete;
  GptModel& operator=(const GptModel&) = delete;
  float* data() { return storage.data(); }
  const float* data() const { return storage.data(); }
  std::size_t size() const { return storage.size(); }
};

// Activations of one forward pass over (B, T) in host memory (block.h's layout). For training
// every layer keeps its own buffers for the backward; for inference (`keep_layers` false) the
// layers share one set.
struct GptActivations : BlockActivations<float> {
  GptActivations(const ModelConfig& config, std::size_t B, std::size_t T, bool keep_layers);
  std::vector<float> storage;
};

// Every token id that enters a model goes through this check first: an id at or past the
// embedding's rows would read other memory. `source` names where the ids came from.
void check_token_ids(const std::uint32_t* ids, std::size_t n, const ModelConfig& config, const char* source);

// The forward: the transformer up to the final LayerNorm (acts.lnf) over ids (B, T), T ≤
// context, row t at position t. With a cache (B must be 1) the keys and values of positions
// [0, T) are stored in it (after rotary positions), as a prefill.
void gpt_forward(const GptWeights& w, GptActivations& acts, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache = nullptr);
inline void gpt_forward(const GptModel& model, GptActivations& acts, const std::uint32_t* ids, std::size_t B,
                        std::size_t T, KvCache* cache = nullptr) {
  gpt_forward(weights_of(model), acts, ids, B, T, cache);
}

// logits (N, V) = x (N, C) · headᵀ.
void gpt_logits(const GptWeights& w, float* logits, const float* x, std::size_t N);

// Scratch of one decode step: one token's activations.
struct StepBuffers {
  explicit StepBuffers(const ModelConfig& config);
  std::vector<float> x, ln, ln2, qkv, atty, proj, fch, fch_act;
  std::vector<float> scores;  // NH · positions, grown with the sequence
  // A sparse pattern's layout over the whole context: the decode step reads the keys of its
  // position's row only. Empty for dense attention.
  std::optional<sparse::BlockLayout> layout;
};

// The decode step: token `id` at position cache.length, its keys and values appended to the
// cache, the logits (V) after it written to `logits`. The same arithmetic as the forward's row
// for that position, with matrix-vector products.
void gpt_step(const GptWeights& w, KvCache& cache, StepBuffers& buffers, std::uint32_t id, float* logits);

// Gradient scratch of the backward, shared by the layers, in host memory.
struct BackwardBuffers : BlockGradients<float> {
  BackwardBuffers(const ModelConfig& config, std::size_t B, std::size_t T);
  std::vector<float> storage;
  std::vector<float> datt;  // the attention backward's scratch, (B, NH, T, T)
};

// The backward of gpt_forward + gpt_logits over acts (kept layers): dlogits (B·T, V) in, the
// parameters' gradients accumulated into `grads` (the caller zeroes them once per step).
void gpt_backward(const GptModel& model, const GptParams& grads, const GptActivations& acts,
                  const std::uint32_t* ids, const float* dlogits, BackwardBuffers& buffers);

// Training step pieces: forward over (B, T) with loss, then the backward into `grads`
// (same layout as the parameters; zeroed here first).
class GptTrainer {
 public:
  // `mean_over`: the token count the loss is a mean over, B·T when 0. A micro-batch of a larger
  // step passes the step's token count, so that its loss and gradient are its share of the
  // step's mean and the micro-batches' sum is that mean.
  GptTrainer(const GptModel& model, std::size_t B, std::size_t T, std::size_t mean_over = 0);
  // Σ of the cross-entropy of predicting targets[b][t] from ids[b][..t], over mean_over (the
  // mean when it is B·T); keeps what backward needs.
  double forward(const std::uint32_t* ids, const std::uint32_t* targets);
  void backward(float* grads);

 private:
  const GptModel& model_;
  std::size_t B_, T_, mean_over_;
  GptActivations acts_;
  std::vector<float> logits_;  // (B, T, V): logits, then their gradient
  std::vector<float> losses_;  // (B, T)
  std::vector<std::uint32_t> ids_;
  BackwardBuffers buffers_;
};

}  // namespace minitx
