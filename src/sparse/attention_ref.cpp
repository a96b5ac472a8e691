// One query row at a time: scores over the allowed keys, softmax, weighted sums, all in double,
// so the only float rounding is the final store. Slow on purpose; it is the oracle.
#include "minitx/sparse/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "minitx/core/error.h"

namespace minitx::sparse {
namespace {

void check_args(const BlockLayout& layout, std::size_t T, std::size_t C, std::size_t H) {
  MINITX_CHECK(H >= 1 && C % H == 0, "attention_ref: C = {} is not a multiple of H = {}", C, H);
  MINITX_CHECK(static_cast<std::size_t>(layout.T) == T, "attention_ref: the layout is for T = {}, not {}", layout.T, T);
  MINITX_CHECK(layout.heads == 1 || static_cast<std::size_t>(layout.heads) == H,
               "attention_ref: the layout has {} heads, the input {}", layout.heads, H);
}

// Softmax probabilities of row q over keys [0, q] (0 where not allowed); returns the log-sum-exp.
double row_probs(std::vector<double>& p, const float* q, const float* kbase, std::size_t C3, std::size_t D,
                 double scale, const BlockLayout& layout, std::size_t h, std::size_t i) {
  double max = -INFINITY;
  for (std::size_t j = 0; j <= i; ++j) {
    p[j] = -INFINITY;
    if (!layout.allowed(static_cast<std::int32_t>(h), static_cast<std::int32_t>(i), static_cast<std::int32_t>(j)))
      continue;
    const float* k = kbase + j * C3;
    double s = 0;
    for (std::size_t d = 0; d < D; ++d) s += static_cast<double>(q[d]) * k[d];
    p[j] = s * scale;
    max = std::max(max, p[j]);
  }
  double sum = 0;
  for (std::size_t j = 0; j <= i; ++j) sum += p[j] = std::exp(p[j] - max);
  for (std::size_t j = 0; j <= i; ++j) p[j] /= sum;
  return max + std::log(sum);
}

}  // namespace

void attention_ref_forward(float* out, float* lse, const float* qkv, const BlockLayout& layout, std::size_t B,
                           std::size_t T, std::size_t C, std::size_t H) {
  check_args(layout, T, C, H);
  const std::size_t D = C / H, C3 = 3 * C;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> p(T), o(D);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i) {
        const float* q = qkv + (b * T + i) * C3 + h * D;
        const float* kbase = qkv + b * T * C3 + C + h * D;
        const double l = row_probs(p, q, kbase, C3, D, scale, layout, h, i);
        if (lse) lse[(b * H + h) * T + i] = static_cast<float>(l);
        std::fill(o.begin(), o.end(), 0.0);
        for (std::size_t j = 0; j <= i; ++j) {
          if (p[j] == 0) continue;
          const float* v = kbase + C + j * C3;
          for (std::size_t d = 0; d < D; ++d) o[d] += p[j] * v[d];
        }
        for (std::size_t d = 0; d < D; ++d) out[(b * T + i) * C + h * D + d] = static_cast<float>(o[d]);
      }
}

void attention_ref_backward(float* dqkv, const float* dout, const float* qkv, const BlockLayout& layout, std::size_t B,
                            std::size_t T, std::size_t C, std::size_t H) {
  check_args(layout, T, C, H);
  const std::size_t D = C / H, C3 = 3 * C;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> grad(B * T * C3, 0.0), p(T), dp(T);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i) {
        const std::size_t row = (b * T + i) * C3 + h * D;
        const float* q = qkv + row;
        const float* kbase = qkv + b * T * C3 + C + h * D;
        const float* d_o = dout + (b * T + i) * C + h * D;
        row_probs(p, q, kbase, C3, D, scale, layout, h, i);
        // dP = dO·v, D_i = Σ P·dP, dS = P·(dP − D_i).
        double di = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          dp[j] = 0;
          if (p[j] == 0) continue;
          const float* v = kbase + C + j * C3;
          for (std::size_t d = 0; d < D; ++d) dp[j] += static_cast<double>(d_o[d]) * v[d];
          di += p[j] * dp[j];
        }
        for (std::size_t j = 0; j <= i; ++j) {
          if (p[j] == 0) continue;
          const double ds = p[j] * (dp[j] - di) * scale;
          const std::size_t krow = (b * T + j) * C3 + C + h * D;
          for (std::size_t d = 0; d < D; ++d) {
            grad[row + d] += ds * qkv[krow + d];
            grad[krow + d] += ds * q[d];
            grad[krow + C + d] += p[j] * d_o[d];
          }
        }
      }
  for (std::size_t n = 0; n < grad.size(); ++n) dqkv[n] = static_cast<float>(grad[n]);
}

}  // namespace minitx::sparse
