#include <cmath>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"
#include "reduce_rows.h"

namespace minitx::cpu {
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, std::size_t N, std::size_t C, float eps) {
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    for (std::size_t n = begin; n < end; ++n) {
      const float* x = inp + n * C;
      float sum = 0.0f;
      for (std::size_t c = 0; c < C; ++c) sum += x[c];
      const float m = sum / static_cast<float>(C);
      float var = 0.0f;
      for (std::size_t c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
      const float s = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
      float* o = out + n * C;
      for (std::size_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
      if (mean != nullptr) mean[n] = m;
      if (rstd != nullptr) rstd[n] = s;
    }
  });
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, std::size_t N, std::size_t C) {
  detail::accumulate_column_sums(dbias, N, C, [&](std::size_t n, std::size_t c) { return dout[n * C + c]; });
  detail::accumulate_column_sums(dweight, N, C, [&](std::size_t n, std::size_t c) {
    return (inp[n * C + c] - mean[n]) * rstd[n] * dout[n * C + c];
  });
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    for (std::size_t n = begin; n < end; ++n) {
      const float* x = inp + n * C;
      const float* d = dout + n * C;
      const float m = mean[n], s = rstd[n];
      // dx = s·(g - mean(g) - xhat·mean(g·xhat)) with g = dout·weight.
      float g_mean = 0.0f, gx_mean = 0.0f;
      for (std::size_t c = 0; c < C; ++c) {
        const float g = d[c] * weight[c];
        g_mean += g;
        gx_mean += g * (x[c] - m) * s;
      }
      g_mean /= static_cast<float>(C);
      gx_mean /= static_cast<float>(C);
      float* dx = dinp + n * C;
      for (std::size_t c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * s;
        dx[c] += s * (d[c] * weight[c] - g_mean - xhat * gx_mean);
      }
    }
  });
}

}  // namespace minitx::cpu
