// Causal attention as small matrix products per (batch, head), split by query blocks of kQb
// rows: the block [i0, i1) needs keys [0, i1) only, so the masked upper triangle is skipped
// except inside the diagonal block. Probabilities above the diagonal are stored as exact zeros,
// which makes every row's result independent of T and of the block it falls in.
#include <algorithm>
#include <cmath>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/matvec.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"
#include "simd_math.h"

namespace minitx::cpu {
namespace {

constexpr std::size_t kQb = 64;

// In place over row[0, len): softmax; row[len, width) becomes 0.
void causal_softmax_row(float* row, std::size_t len, std::size_t width) {
  float max = row[0];
  for (std::size_t j = 1; j < len; ++j) max = std::max(max, row[j]);
  const float sum = detail::exp_shifted_sum(row, len, max);  // row[j] = exp(row[j] - max)
  const float inv = 1.0f / sum;
  for (std::size_t j = 0; j < len; ++j) row[j] *= inv;
  std::fill(row + len, row + width, 0.0f);
}

}  // namespace

void attention_forward(float* out, float* att, const float* inp, std::size_t B, std::size_t T, std::size_t C,
                       std::size_t NH) {
  const std::size_t hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  parallel_for(B * NH, [&](std::size_t begin, std::size_t end) {
    for (std::size_t bh = begin; bh < end; ++bh) {
      const std::size_t b = bh / NH, h = bh % NH;
      const float* q = inp + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* p = att + bh * T * T;
      float* o = out + b * T * C + h * hs;
      for (std::size_t i0 = 0; i0 < T; i0 += kQb) {
        const std::size_t i1 = std::min(T, i0 + kQb), rows = i1 - i0;
        sgemm(Trans::no, Trans::yes, rows, i1, hs, scale, q + i0 * C3, C3, k, C3, 0.0f, p + i0 * T, T);
        for (std::size_t i = i0; i < i1; ++i) causal_softmax_row(p + i * T, i + 1, T);
        sgemm(Trans::no, Trans::no, rows, hs, i1, 1.0f, p + i0 * T, T, v, C3, 0.0f, o + i0 * C, C);
      }
    }
  });
}

void attention_backward(float* dinp, float* datt, const float* dout, const float* inp, const float* att,
                        std::size_t B, std::size_t T, std::size_t C, std::size_t NH) {
  const std::size_t hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  parallel_for(B * NH, [&](std::size_t begin, std::size_t end) {
    for (std::size_t bh = begin; bh < end; ++bh) {
      const std::size_t b = bh / NH, h = bh % NH;
      const float* q = inp + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* dq = dinp + b * T * C3 + h * hs;
      float* dk = dq + C;
      float* dv = dq + 2 * C;
      const float* p = att + bh * T * T;
      float* ds = datt + bh * T * T;
      const float* d_o = dout + b * T * C + h * hs;
      // dP = dO·Vᵀ, then dS = P ⊙ (dP - Σ_j dP⊙P) row by row, and dQ += scale·dS·K.
      for (std::size_t i0 = 0; i0 < T; i0 += kQb) {
        const std::size_t i1 = std::min(T, i0 + kQb), rows = i1 - i0;
        sgemm(Trans::no, Trans::yes, rows, i1, hs, 1.0f, d_o + i0 * C, C, v, C3, 0.0f, ds + i0 * T, T);
        for (std::size_t i = i0; i < i1; ++i) {
          const float* pr = p + i * T;
          float* dr = ds + i * T;
          float dot = 0.0f;
          for (std::size_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
          for (std::size_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot);
          std::fill(dr + i + 1, dr + i1, 0.0f);
        }
        sgemm(Trans::no, Trans::no, rows, hs, i1, scale, ds + i0 * T, T, k, C3, 1.0f, dq + i0 * C3, C3);
      }
      // Key block [j0, j1) receives from queries [j0, T): dV += Pᵀ·dO, dK += scale·dSᵀ·Q.
      for (std::size_t j0 = 0; j0 < T; j0 += kQb) {
        const std::size_t j1 = std::min(T, j0 + kQb), rows = j1 - j0, queries = T - j0;
        sgemm(Trans::yes, Trans::no, rows, hs, queries, 1.0f, p + j0 * T + j0, T, d_o + j0 * C, C, 1.0f,
              dv + j0 * C3, C3);
        sgemm(Trans::yes, Trans::no, rows, hs, queries, scale, ds + j0 * T + j0, T, q + j0 * C3, C3, 1.0f,
              dk + j0 * C3, C3);
      }
    }
  });
}

void attention_decode(float* out, float* scores, const float* q, const float* keys, const float* values,
                      std::size_t T, std::size_t C, std::size_t NH) {
  const std::size_t hs = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  // Heads in parallel only when the window is long enough to pay for waking the pool.
  auto heads = [&](std::size_t h0, std::size_t h1) {
    for (std::size_t h = h0; h < h1; ++h) {
      float* s = scores + h * T;
      const float* qh = q + h * hs;
      for (std::size_t j = 0; j < T; ++j) s[j] = scale * dot(qh, keys + j * C + h * hs, hs);
      causal_softmax_row(s, T, T);
      float* o = out + h * hs;
      std::fill(o, o + hs, 0.0f);
      for (std::size_t j = 0; j < T; ++j) {
        const float p = s[j];
        const float* v = values + j * C + h * hs;
        for (std::size_t e = 0; e < hs; ++e) o[e] += p * v[e];
      }
    }
  };
  if (T * C < 32768)
    heads(0, NH);
  else
    parallel_for(NH, heads);
}

}  // namespace minitx::cpu
