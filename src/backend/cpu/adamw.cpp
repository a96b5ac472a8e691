#include <cmath>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"

namespace minitx::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, const AdamWStep& s) {
  const float correction1 = 1.0f - std::pow(s.beta1, static_cast<float>(s.t));
  const float correction2 = 1.0f - std::pow(s.beta2, static_cast<float>(s.t));
  // One pass over params, grads and both moments.
  parallel_for(
      n,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          const float g = grads[i];
          const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * g;
          const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
          m[i] = mi;
          v[i] = vi;
          const float m_hat = mi / correction1, v_hat = vi / correction2;
          params[i] -= s.lr * (m_hat / (std::sqrt(v_hat) + s.eps) + s.weight_decay * params[i]);
        }
      },
      4096);
}

}  // namespace minitx::cpu
