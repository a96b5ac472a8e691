// The GPT forward and backward passes on the CPU, composed from the ops in
// minitx/backend/cpu/ops.h. B = batch, T = time (≤ context), C = channels, L = layers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/model/config.h"
#include "minitx/model/params.h"

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

// Activations of one forward pass over (B, T). For training every layer keeps its own
// buffers for the backward; for inference (`keep_layers` false) the layers share one set.
struct GptActivations {
  GptActivations(const ModelConfig& config, std::size_t B, std::size_t T, bool keep_layers);
  std::size_t B, T;
  bool keep_layers;
  std::vector<float> storage;
  float* encoded;    // (B, T, C)
  float* ln1;        // (L, B, T, C)
  float* ln1_mean;   // (L, B, T)
  float* ln1_rstd;   // (L, B, T)
  float* qkv;        // (L, B, T, 3C)
  float* atty;       // (L, B, T, C)
  float* att;        // (L, B, NH, T, T)
  float* attproj;    // (L, B, T, C)
  float* residual2;  // (L, B, T, C)
  float* ln2;        // (L, B, T, C)
  float* ln2_mean;   // (L, B, T)
  float* ln2_rstd;   // (L, B, T)
  float* fch;        // (L, B, T, 4C)
  float* fch_gelu;   // (L, B, T, 4C)
  float* fcproj;     // (L, B, T, C)
  float* residual3;  // (L, B, T, C)
  float* lnf;        // (B, T, C)
  float* lnf_mean;   // (B, T)
  float* lnf_rstd;   // (B, T)
  // Per-layer strides in floats: zero when the layers share buffers.
  std::size_t s_btc, s_bt, s_bt3c, s_att, s_bt4c;
};

// Runs the transformer up to the final LayerNorm (acts.lnf). ids: (B, T) with T ≤ context.
// With a cache (B must be 1) the keys and values of positions [0, T) are stored in it.
void gpt_forward(const GptModel& model, GptActivations& acts, const std::uint32_t* ids, std::size_t B,
                 std::size_t T, KvCache* cache = nullptr);

// logits (N, V) = x (N, C) · wteᵀ.
void gpt_logits(const GptModel& model, float* logits, const float* x, std::size_t N);

// Training step pieces: forward over (B, T) with loss, then the backward into `grads`
// (same layout as the parameters; zeroed here first).
class GptTrainer {
 public:
  GptTrainer(const GptModel& model, std::size_t B, std::size_t T);
  // Mean cross-entropy of predicting targets[b][t] from ids[b][..t]; keeps what backward needs.
  double forward(const std::uint32_t* ids, const std::uint32_t* targets);
  void backward(float* grads);

 private:
  const GptModel& model_;
  std::size_t B_, T_;
  GptActivations acts_;
  std::vector<float> logits_;  // (B, T, V): logits, then their gradient
  std::vector<float> losses_;  // (B, T)
  std::vector<std::uint32_t> ids_;
  // Gradient scratch shared by the layers: the residual stream and one layer's intermediates.
  std::vector<float> dresidual_, dln_, dqkv_, datty_, datt_, dfch_, dfch_gelu_, dlnf_;
};

}  // namespace minitx
