// The CPU's op table for block.h: the forward reads the weights through the inference view
// (fp32 or quantized matrices, weights.h); the backward reads fp32 parameters and accumulates
// into fp32 gradients of the same layout. Every op is a call into minitx/backend/cpu/ops.h, in
// the order and with the arguments the CPU trainer has always used, so the bits are unchanged.
#pragma once
#include <algorithm>
#include <optional>
#include <vector>

#include "activation.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/backend/cpu/sparse_attention.h"
#include "minitx/core/threads.h"
#include "minitx/model/block.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"

namespace minitx {

class CpuBlockOps {
 public:
  using Act = float;
  // The block size of a dense layout, which the CPU's dense kernel never reads: any valid size.
  static constexpr std::int32_t kDenseBlock = 64;

  // For a forward (optionally filling a KV cache, as a prefill of one sequence).
  CpuBlockOps(const GptWeights& w, KvCache* cache) : w_(w), cache_(cache) {}
  // For a forward and backward: parameters p, gradients g (same layout), attention scratch.
  CpuBlockOps(const GptWeights& w, const GptParams& p, const GptParams& g, std::vector<float>& datt)
      : w_(w), p_(&p), g_(&g), datt_(&datt) {}

  const ModelConfig& config() const { return w_.config; }
  static std::size_t attention_state(const ModelConfig& m, std::size_t B, std::size_t T) {
    return B * m.n_head * T * T;  // the softmax probabilities
  }

  void embed(float* out, const std::uint32_t* ids, std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    const std::size_t C = m.n_embd, offset = m.position_offset, BT = B * T;
    const bool learned = m.position == ModelConfig::Position::learned;
    if (w_.wte.format == quant::Format::f32 && (!learned || w_.wpe.format == quant::Format::f32)) {
      cpu::encoder_forward(out, ids, f32(w_.wte), learned ? f32(w_.wpe) : nullptr, BT, T, C, offset);
      return;
    }
    // Quantized tables: one row of each dequantized per token, never the whole table.
    parallel_for(BT, [&](std::size_t begin, std::size_t end) {
      std::vector<float> pos(C);
      for (std::size_t n = begin; n < end; ++n) {
        float* o = out + n * C;
        linear_row(o, w_.wte, ids[n]);
        if (!learned) continue;
        linear_row(pos.data(), w_.wpe, n % T + offset);
        for (std::size_t c = 0; c < C; ++c) o[c] += pos[c];
      }
    });
  }
  void layernorm(float* out, float* mean, float* rstd, const float* inp, BlockNorm k, std::size_t l,
                 std::size_t N) const {
    const float *weight = w_.lnfw, *bias = w_.lnfb;
    if (k != BlockNorm::final) {
      const GptLayerWeights& y = w_.layers[l];
      weight = k == BlockNorm::ln1 ? y.ln1w : y.ln2w;
      bias = k == BlockNorm::ln1 ? y.ln1b : y.ln2b;
    }
    cpu::layernorm_forward(out, mean, rstd, inp, weight, bias, N, config().n_embd, static_cast<float>(config().ln_eps));
  }
  void linear(float* out, const float* inp, BlockLinear k, std::size_t l, std::size_t N) const {
    const GptLayerWeights& y = w_.layers[l];
    switch (k) {
      case BlockLinear::qkv: linear_forward(out, inp, y.qkvw, y.qkvb, N); return;
      case BlockLinear::attproj: linear_forward(out, inp, y.attprojw, y.attprojb, N); return;
      case BlockLinear::fc: linear_forward(out, inp, y.fcw, y.fcb, N); return;
      case BlockLinear::fcproj: linear_forward(out, inp, y.fcprojw, y.fcprojb, N); return;
    }
  }
  void rotary(float* qkv, std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    cpu::rotary_forward(qkv, B, T, m.n_embd, m.n_head, m.rotary_dims(), static_cast<float>(m.rotary_base));
  }
  void store_kv(std::size_t l, const float* qkv, std::size_t T) const {
    if (cache_ != nullptr) cache_->store(l, 0, qkv, T);
  }
  void attention(float* out, float* state, const float* qkv, std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    if (m.attention.dense())
      cpu::attention_forward(out, state, qkv, B, T, m.n_embd, m.n_head);
    else
      cpu::sparse_attention_forward(out, state, qkv, layout(T), B, T, m.n_embd, m.n_head);
  }
  void add(float* out, const float* a, const float* b, std::size_t n) const { cpu::residual_forward(out, a, b, n); }
  void copy(float* dst, const float* src, std::size_t n) const { std::copy(src, src + n, dst); }
  void zero(float* x, std::size_t n) const { std::fill(x, x + n, 0.0f); }
  void activation(float* out, const float* inp, std::size_t n) const {
    detail::activation_forward(config().activation, out, inp, n);
  }

  void linear_backward(float* dinp, const float* inp, const float* dout, BlockLinear k, std::size_t l,
                       std::size_t N) const {
    const LinearTensors t = linear_tensors(k, config());
    const std::size_t size = t.out * t.in;
    zero(dinp, N * t.in);
    cpu::matmul_backward(dinp, g_->at(t.weight) + l * size, slice(g_->at(t.bias), l, t.out), dout, inp,
                         p_->at(t.weight) + l * size, N, t.in, t.out);
  }
  void layernorm_backward(float* dinp, const float* inp, const float* dout, const float* mean, const float* rstd,
                          BlockNorm k, std::size_t l, std::size_t N) const {
    const std::size_t C = config().n_embd;
    cpu::layernorm_backward(dinp, g_->at(norm_weight(k)) + l * C, g_->at(norm_bias(k)) + l * C, dout, inp,
                            p_->at(norm_weight(k)) + l * C, mean, rstd, N, C);
  }
  void activation_backward(float* dinp, const float* inp, const float* dout, std::size_t n) const {
    zero(dinp, n);
    detail::activation_backward(config().activation, dinp, inp, dout, n);
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* /*out*/, const float* state,
                          std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    zero(dqkv, B * T * 3 * m.n_embd);
    datt_->resize(attention_state(m, B, T));
    if (m.attention.dense())
      cpu::attention_backward(dqkv, datt_->data(), dout, qkv, state, B, T, m.n_embd, m.n_head);
    else
      cpu::sparse_attention_backward(dqkv, datt_->data(), dout, qkv, state, layout(T), B, T, m.n_embd, m.n_head);
  }
  void rotary_backward(float* dqkv, std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    cpu::rotary_backward(dqkv, B, T, m.n_embd, m.n_head, m.rotary_dims(), static_cast<float>(m.rotary_base));
  }
  void embed_backward(const float* dout, const std::uint32_t* ids, std::size_t B, std::size_t T) const {
    const ModelConfig& m = config();
    cpu::encoder_backward(g_->wte, g_->wpe, dout, ids, B * T, T, m.n_embd, m.position_offset);
  }

 private:
  // The pattern's layout for T tokens, built once per length (layers and steps share it).
  const sparse::BlockLayout& layout(std::size_t T) const {
    if (!layout_ || static_cast<std::size_t>(layout_->T) != T)
      layout_ = sparse::build_layout(config().attention, static_cast<std::int32_t>(T),
                                     static_cast<std::int32_t>(config().n_head), kDenseBlock);
    return *layout_;
  }
  static const float* f32(const Linear& w) { return reinterpret_cast<const float*>(w.data); }
  static float* slice(float* base, std::size_t l, std::size_t n) { return base == nullptr ? nullptr : base + l * n; }

  const GptWeights& w_;
  KvCache* cache_ = nullptr;
  const GptParams* p_ = nullptr;
  const GptParams* g_ = nullptr;
  std::vector<float>* datt_ = nullptr;
  mutable std::optional<sparse::BlockLayout> layout_;
};

}  // namespace minitx
