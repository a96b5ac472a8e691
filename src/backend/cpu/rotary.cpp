// Rotary position embedding, GPT-NeoX layout: the rotated part of a head is split in two halves
// that form (cos, sin) pairs, x[i] with x[i + dims/2]. Angles are computed in double from the
// position and frequency, then rounded once, so every position's table is exact to float
// precision however long the sequence (a float angle loses digits past a few thousand tokens).
#include <cmath>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"

namespace minitx::cpu {
namespace {

// cos and sin of position pos for the dims/2 frequencies.
void angles(float* cos_out, float* sin_out, std::size_t pos, std::size_t dims, float base) {
  const std::size_t half = dims / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const double freq = std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(dims));
    const double theta = static_cast<double>(pos) * static_cast<double>(static_cast<float>(freq));
    cos_out[i] = static_cast<float>(std::cos(theta));
    sin_out[i] = static_cast<float>(std::sin(theta));
  }
}

// sign +1 rotates by +θ (forward), -1 by -θ (the backward: Rᵀ = R(-θ)).
void rotate(float* qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims, float base,
            std::size_t pos0, float sign) {
  const std::size_t D = C / NH, half = dims / 2;
  parallel_for(B * T, [&](std::size_t begin, std::size_t end) {
    std::vector<float> cs(half), sn(half);
    for (std::size_t row = begin; row < end; ++row) {
      angles(cs.data(), sn.data(), pos0 + row % T, dims, base);
      float* r = qkv + row * 3 * C;
      for (std::size_t part = 0; part < 2; ++part)  // q, then k
        for (std::size_t h = 0; h < NH; ++h) {
          float* x = r + part * C + h * D;
          for (std::size_t i = 0; i < half; ++i) {
            const float a = x[i], b = x[i + half], s = sign * sn[i];
            x[i] = a * cs[i] - b * s;
            x[i + half] = b * cs[i] + a * s;
          }
        }
    }
  }, 4);
}

}  // namespace

void rotary_forward(float* qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims,
                    float base, std::size_t pos0) {
  rotate(qkv, B, T, C, NH, dims, base, pos0, 1.0f);
}

void rotary_backward(float* dqkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims,
                     float base, std::size_t pos0) {
  rotate(dqkv, B, T, C, NH, dims, base, pos0, -1.0f);
}

}  // namespace minitx::cpu
