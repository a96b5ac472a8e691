// The layers of a GPT as forward/backward pairs of free functions on the CPU (llm.c style):
// outputs first, gradients named with a leading d, and the backward passes *accumulate* (+=)
// into the gradients they write, so a tensor used twice (residual stream, tied embedding)
// collects both contributions. Callers zero gradients once per step.
//
// Shape letters: N = rows (B·T), B = batch, T = time, C = channels, NH = heads, V = vocab,
// OC = output channels. Everything is row-major float.
//
// Determinism: every reduction runs in an order fixed by the shapes alone (never by the
// thread count), and the forward passes compute each row from that row's inputs only, so a
// row's result does not depend on the batch it is in.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minitx::cpu {

// out[n] = wte[ids[n]] + wpe[n % T + offset]: row n is position n % T of its sequence, and the
// table's row for position t is t + offset (OPT's learned positions start at row 2). wpe null:
// no learned positions (rotary models). ids: (N), wte: (V, C), wpe: (T + offset, C), out: (N, C).
void encoder_forward(float* out, const std::uint32_t* ids, const float* wte, const float* wpe, std::size_t N,
                     std::size_t T, std::size_t C, std::size_t offset = 0);
// dwpe may be null (no learned positions).
void encoder_backward(float* dwte, float* dwpe, const float* dout, const std::uint32_t* ids, std::size_t N,
                      std::size_t T, std::size_t C, std::size_t offset = 0);

// out = (inp - mean) · rstd · weight + bias per row; mean, rstd: (N) saved for the backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, std::size_t N, std::size_t C, float eps = 1e-5f);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, std::size_t N, std::size_t C);

// out (N, OC) = inp (N, C) · weightᵀ (OC, C) + bias (OC, may be null).
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, std::size_t N,
                    std::size_t C, std::size_t OC);
// dbias may be null when there is no bias.
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, std::size_t N, std::size_t C, std::size_t OC);

// Causal multi-head self-attention. inp: (B, T, 3C) holding q, k, v; out: (B, T, C);
// att: (B, NH, T, T) softmax probabilities, saved for the backward (entries j > i are 0).
void attention_forward(float* out, float* att, const float* inp, std::size_t B, std::size_t T, std::size_t C,
                       std::size_t NH);
// datt: scratch of the size of att.
void attention_backward(float* dinp, float* datt, const float* dout, const float* inp, const float* att,
                        std::size_t B, std::size_t T, std::size_t C, std::size_t NH);

// One query against cached keys/values of positions [0, T) (decoding with a KV cache).
// q: (C), keys and values: (T, C) rows, out: (C), scores: scratch of NH·T floats.
void attention_decode(float* out, float* scores, const float* q, const float* keys, const float* values,
                      std::size_t T, std::size_t C, std::size_t NH);

// GELU, tanh approximation (GPT-2): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void gelu_forward(float* out, const float* inp, std::size_t n);
void gelu_backward(float* dinp, const float* inp, const float* dout, std::size_t n);

// GELU, exact (erf) form (GPT-NeoX, BERT): 0.5·x·(1 + erf(x/√2)).
void gelu_erf_forward(float* out, const float* inp, std::size_t n);
void gelu_erf_backward(float* dinp, const float* inp, const float* dout, std::size_t n);
// ReLU (OPT): max(x, 0); the gradient at 0 is 0, as in PyTorch.
void relu_forward(float* out, const float* inp, std::size_t n);
void relu_backward(float* dinp, const float* inp, const float* dout, std::size_t n);

// Rotary positions (GPT-NeoX's rotate-half layout) on the first `dims` of each head's D
// dimensions of q and k, in place in rows of q|k|v (B, T, 3C); row (b, t) is at position
// pos0 + t. For i < dims/2, with θ = pos · base^(-2i/dims):
//   x[i] ← x[i]·cos θ − x[i + dims/2]·sin θ,   x[i + dims/2] ← x[i + dims/2]·cos θ + x[i]·sin θ.
// The backward applies the inverse rotation to the gradients of q and k (v is untouched).
void rotary_forward(float* qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims,
                    float base, std::size_t pos0 = 0);
void rotary_backward(float* dqkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims,
                     float base, std::size_t pos0 = 0);

// out = a + b.
void residual_forward(float* out, const float* a, const float* b, std::size_t n);
void residual_backward(float* da, float* db, const float* dout, std::size_t n);

// Softmax cross-entropy over logits (N, V): losses[n] = logsumexp(logits[n]) - logits[n][targets[n]].
void crossentropy_forward(float* losses, const float* logits, const std::uint32_t* targets, std::size_t N,
                          std::size_t V);
// The same losses, then overwrites logits with dloss/dlogits = (softmax - onehot) · scale, so the
// (N, V) logits are read and written once.
void crossentropy_forward_backward(float* losses, float* logits_to_dlogits, const std::uint32_t* targets,
                                   std::size_t N, std::size_t V, float scale);

struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;
  std::uint64_t t;  // 1-based step, for the bias correction
};
// Decoupled weight decay (Loshchilov & Hutter): param -= lr·(m̂/(√v̂+eps) + weight_decay·param).
void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, const AdamWStep& step);

// Σ x² in double, summed in fixed blocks whatever the thread count.
double sum_of_squares(const float* x, std::size_t n);
// The blocks of sum_of_squares: partial[c] = Σ x² over [c·kSumOfSquaresChunk, (c+1)·…) ∩ [0, n),
// each in index order; sum_of_squares adds them in block order, from 0.0.
inline constexpr std::size_t kSumOfSquaresChunk = 4096;
void sum_of_squares_chunks(const float* x, std::size_t n, double* partial);
void scale_in_place(float* x, std::size_t n, float factor);

}  // namespace minitx::cpu
