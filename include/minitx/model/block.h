// The transformer written once for every backend: the forward of the blocks (up to the final
// LayerNorm) and its backward, as templates over an op table `Ops` that the backend supplies
// (src/model/cpu_block_ops.h for the CPU, src/backend/cuda/block_ops.h for CUDA). The
// architecture (positions, residual, activation, biases) is read from the descriptor here, once;
// an op only computes. Training, evaluation and prefill on either device run these two functions.
//
// What an op table provides (Act is its activation storage: float, or bf16 on the GPU; weights,
// gradients, scratch and the meaning of `ids` — host or device memory — are the table's own):
//
//   using Act;  const ModelConfig& config() const;
//   static std::size_t attention_state(const ModelConfig&, B, T)  floats saved per layer
//   embed(out, ids, B, T)                      token rows (+ learned positions)
//   layernorm(out, mean, rstd, inp, BlockNorm, layer, N)
//   linear(out, inp, BlockLinear, layer, N)    out = inp · Wᵀ + bias
//   rotary(qkv, B, T)                          in place on q and k
//   attention(out, state, qkv, B, T)           causal softmax attention, state for the backward
//   add(out, a, b, n), copy(dst, src, n), zero(x, n), activation(out, inp, n)
//   store_kv(layer, qkv, T)                    optional: a KV cache filled by the forward
//   -- the backward: `din` of linear, activation and attention is overwritten; a LayerNorm's is
//   -- accumulated into (it is the residual stream's gradient). Parameter gradients accumulate.
//   linear_backward(din, inp, dout, BlockLinear, layer, N)
//   layernorm_backward(din, inp, dout, mean, rstd, BlockNorm, layer, N)
//   activation_backward(din, inp, dout, n), rotary_backward(dqkv, B, T)
//   attention_backward(dqkv, dout, qkv, out, state, B, T)
//   embed_backward(dout, ids, B, T)
#pragma once
#include <cstddef>
#include <cstdint>

#include "minitx/core/error.h"
#include "minitx/model/config.h"
#include "minitx/model/params.h"

namespace minitx {

// A layer's four matrices (each with its bias when the architecture has biases) and the norms.
enum class BlockLinear { qkv, attproj, fc, fcproj };
enum class BlockNorm { ln1, ln2, final };

// Which tensors of the table a linear layer or a norm uses, and the matrix's shape (out × in).
struct LinearTensors {
  Param weight, bias;
  std::size_t out, in;
};
inline LinearTensors linear_tensors(BlockLinear k, const ModelConfig& m) {
  const std::size_t C = m.n_embd, F = m.ffn_width();
  switch (k) {
    case BlockLinear::qkv: return {Param::qkvw, Param::qkvb, 3 * C, C};
    case BlockLinear::attproj: return {Param::attprojw, Param::attprojb, C, C};
    case BlockLinear::fc: return {Param::fcw, Param::fcb, F, C};
    case BlockLinear::fcproj: break;
  }
  return {Param::fcprojw, Param::fcprojb, C, F};
}
inline Param norm_weight(BlockNorm k) {
  return k == BlockNorm::ln1 ? Param::ln1w : k == BlockNorm::ln2 ? Param::ln2w : Param::lnfw;
}
inline Param norm_bias(BlockNorm k) {
  return k == BlockNorm::ln1 ? Param::ln1b : k == BlockNorm::ln2 ? Param::ln2b : Param::lnfb;
}

// The activations of one forward pass over (B, T). With `keep_layers` every layer has its own
// buffers (for the backward); without, the layers share one set (inference). The `s_*` strides
// (elements per layer) are zero when shared.
template <class Act>
struct BlockActivations {
  std::size_t B = 0, T = 0;
  bool keep_layers = false;
  Act* encoded = nullptr;    // (B, T, C)
  Act* ln1 = nullptr;        // (L, B, T, C)
  Act* qkv = nullptr;        // (L, B, T, 3C)  q and k after rotary positions, if any
  Act* atty = nullptr;       // (L, B, T, C)
  Act* attproj = nullptr;    // (L, B, T, C)
  Act* residual2 = nullptr;  // (L, B, T, C)  the layer's input + attention
  Act* ln2 = nullptr;        // (L, B, T, C)  of residual2, or of the layer's input with a parallel residual
  Act* fch = nullptr;        // (L, B, T, F)
  Act* fch_act = nullptr;    // (L, B, T, F)
  Act* fcproj = nullptr;     // (L, B, T, C)
  Act* residual3 = nullptr;  // (L, B, T, C)  the layer's output: residual2 + MLP
  Act* lnf = nullptr;        // (B, T, C)
  float *ln1_mean = nullptr, *ln1_rstd = nullptr;  // (L, B, T)
  float *ln2_mean = nullptr, *ln2_rstd = nullptr;  // (L, B, T)
  float *lnf_mean = nullptr, *lnf_rstd = nullptr;  // (B, T)
  float* att = nullptr;  // (L, state): what the backend's attention keeps for its backward
  std::size_t s_btc = 0, s_bt = 0, s_bt3c = 0, s_att = 0, s_btf = 0;
};

// Gradient scratch of the backward, shared by the layers.
template <class Act>
struct BlockGradients {
  Act *dresidual = nullptr, *dres2 = nullptr, *dln = nullptr, *dqkv = nullptr, *datty = nullptr, *dfch = nullptr,
      *dfch_act = nullptr, *dlnf = nullptr;
};

namespace detail {
// Hands out 256-byte aligned pieces of one buffer (or, with a null base, only counts bytes), so
// every tensor suits the GPU's vector loads and cuBLASLt's preferred alignment.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<unsigned char*>(base)) {}
  template <class X>
  void take(X*& field, std::size_t count) {
    field = base_ == nullptr ? nullptr : reinterpret_cast<X*>(base_ + used_);
    used_ += (count * sizeof(X) + 255) / 256 * 256;
  }
  std::size_t bytes() const { return used_; }

 private:
  unsigned char* base_;
  std::size_t used_ = 0;
};
}  // namespace detail

// Lays out the activations in `base` (null: only measure) and returns the bytes they take.
// `state` is the op table's attention_state(config, B, T).
template <class Act>
std::size_t bind_activations(BlockActivations<Act>& a, void* base, const ModelConfig& m, std::size_t B,
                             std::size_t T, bool keep_layers, std::size_t state) {
  const std::size_t C = m.n_embd, F = m.ffn_width(), Ls = keep_layers ? m.n_layer : 1, BT = B * T;
  a.B = B;
  a.T = T;
  a.keep_layers = keep_layers;
  a.s_btc = keep_layers ? BT * C : 0;
  a.s_bt = keep_layers ? BT : 0;
  a.s_bt3c = keep_layers ? BT * 3 * C : 0;
  a.s_att = keep_layers ? state : 0;
  a.s_btf = keep_layers ? BT * F : 0;
  detail::Carver c(base);
  c.take(a.encoded, BT * C);
  for (Act** f : {&a.ln1, &a.atty, &a.attproj, &a.residual2, &a.ln2, &a.fcproj, &a.residual3}) c.take(*f, Ls * BT * C);
  c.take(a.qkv, Ls * BT * 3 * C);
  c.take(a.fch, Ls * BT * F);
  c.take(a.fch_act, Ls * BT * F);
  c.take(a.lnf, BT * C);
  for (float** f : {&a.ln1_mean, &a.ln1_rstd, &a.ln2_mean, &a.ln2_rstd}) c.take(*f, Ls * BT);
  c.take(a.lnf_mean, BT);
  c.take(a.lnf_rstd, BT);
  c.take(a.att, Ls * state);
  return c.bytes();
}

template <class Act>
std::size_t bind_gradients(BlockGradients<Act>& g, void* base, const ModelConfig& m, std::size_t B, std::size_t T) {
  const std::size_t C = m.n_embd, F = m.ffn_width(), BT = B * T;
  detail::Carver c(base);
  for (Act** f : {&g.dresidual, &g.dln, &g.datty, &g.dlnf}) c.take(*f, BT * C);
  if (m.parallel_residual) c.take(g.dres2, BT * C);
  c.take(g.dqkv, BT * 3 * C);
  c.take(g.dfch, BT * F);
  c.take(g.dfch_act, BT * F);
  return c.bytes();
}

// The forward over ids (B, T): the blocks and the final LayerNorm into a.lnf.
template <class Ops>
void block_forward(Ops& ops, BlockActivations<typename Ops::Act>& a, const std::uint32_t* ids, std::size_t B,
                   std::size_t T) {
  using Act = typename Ops::Act;
  const ModelConfig& m = ops.config();
  const std::size_t C = m.n_embd, F = m.ffn_width(), BT = B * T;
  ops.embed(a.encoded, ids, B, T);
  const Act* residual = a.encoded;
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    Act* ln1 = a.ln1 + l * a.s_btc;
    Act* qkv = a.qkv + l * a.s_bt3c;
    Act* atty = a.atty + l * a.s_btc;
    Act* attproj = a.attproj + l * a.s_btc;
    Act* residual2 = a.residual2 + l * a.s_btc;
    Act* ln2 = a.ln2 + l * a.s_btc;
    Act* fch = a.fch + l * a.s_btf;
    Act* fch_act = a.fch_act + l * a.s_btf;
    Act* fcproj = a.fcproj + l * a.s_btc;
    Act* residual3 = a.residual3 + l * a.s_btc;
    ops.layernorm(ln1, a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt, residual, BlockNorm::ln1, l, BT);
    ops.linear(qkv, ln1, BlockLinear::qkv, l, BT);
    if (m.position == ModelConfig::Position::rotary) ops.rotary(qkv, B, T);
    if constexpr (requires { ops.store_kv(l, qkv, T); }) ops.store_kv(l, qkv, T);
    ops.attention(atty, a.att + l * a.s_att, qkv, B, T);
    ops.linear(attproj, atty, BlockLinear::attproj, l, BT);
    ops.add(residual2, residual, attproj, BT * C);
    // A parallel residual (GPT-NeoX) feeds the MLP the layer's input, not input + attention.
    const Act* mlp_in = m.parallel_residual ? residual : residual2;
    ops.layernorm(ln2, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt, mlp_in, BlockNorm::ln2, l, BT);
    ops.linear(fch, ln2, BlockLinear::fc, l, BT);
    ops.activation(fch_act, fch, BT * F);
    ops.linear(fcproj, fch_act, BlockLinear::fcproj, l, BT);
    ops.add(residual3, residual2, fcproj, BT * C);
    residual = residual3;
  }
  ops.layernorm(a.lnf, a.lnf_mean, a.lnf_rstd, residual, BlockNorm::final, 0, BT);
}

// The backward of block_forward (kept layers) given dlnf, the gradient of a.lnf, in g.dlnf (the
// caller's head backward wrote it): the parameters' gradients accumulate in the op table's.
template <class Ops>
void block_backward(Ops& ops, const BlockActivations<typename Ops::Act>& a, BlockGradients<typename Ops::Act>& g,
                    const std::uint32_t* ids) {
  using Act = typename Ops::Act;
  const ModelConfig& m = ops.config();
  const std::size_t L = m.n_layer, C = m.n_embd, F = m.ffn_width(), B = a.B, T = a.T, BT = B * T;
  MINITX_CHECK(a.keep_layers, "backward: the forward kept no per-layer activations (keep_layers was false)");
  ops.zero(g.dresidual, BT * C);
  ops.layernorm_backward(g.dresidual, a.residual3 + (L - 1) * a.s_btc, g.dlnf, a.lnf_mean, a.lnf_rstd,
                         BlockNorm::final, 0, BT);
  // dresidual holds d(residual3[l]) on entry to layer l and d(its input) on exit: the residual
  // connections pass it through unchanged and the branches add to it. With a parallel residual
  // both branches read d(residual3), kept in dres2 while the norms add to dresidual.
  for (std::size_t l = L; l-- > 0;) {
    const Act* residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * a.s_btc;
    Act* dbranch = g.dresidual;
    if (m.parallel_residual) {
      ops.copy(g.dres2, g.dresidual, BT * C);
      dbranch = g.dres2;
    }
    ops.linear_backward(g.dfch_act, a.fch_act + l * a.s_btf, dbranch, BlockLinear::fcproj, l, BT);
    ops.activation_backward(g.dfch, a.fch + l * a.s_btf, g.dfch_act, BT * F);
    ops.linear_backward(g.dln, a.ln2 + l * a.s_btc, g.dfch, BlockLinear::fc, l, BT);
    const Act* mlp_in = m.parallel_residual ? residual : a.residual2 + l * a.s_btc;
    ops.layernorm_backward(g.dresidual, mlp_in, g.dln, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt,
                           BlockNorm::ln2, l, BT);
    ops.linear_backward(g.datty, a.atty + l * a.s_btc, dbranch, BlockLinear::attproj, l, BT);
    ops.attention_backward(g.dqkv, g.datty, a.qkv + l * a.s_bt3c, a.atty + l * a.s_btc, a.att + l * a.s_att, B, T);
    if (m.position == ModelConfig::Position::rotary) ops.rotary_backward(g.dqkv, B, T);
    ops.linear_backward(g.dln, a.ln1 + l * a.s_btc, g.dqkv, BlockLinear::qkv, l, BT);
    ops.layernorm_backward(g.dresidual, residual, g.dln, a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt,
                           BlockNorm::ln1, l, BT);
  }
  ops.embed_backward(g.dresidual, ids, B, T);
}

}  // namespace minitx
