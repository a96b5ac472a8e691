#include <algorithm>
#include <cmath>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"
#include "simd_math.h"

namespace minitx::cpu {
namespace {

struct RowSoftmax {
  float sum;   // Σ exp(row - max); the row now holds the numerators exp(row - max)
  float loss;  // log Σ - (logit[target] - max)
};

RowSoftmax softmax_numerators(float* row, std::size_t V, std::uint32_t target) {
  const float max = *std::max_element(row, row + V);
  const float target_logit = row[target];
  const float sum = detail::exp_shifted_sum(row, V, max);
  return {sum, std::log(sum) - (target_logit - max)};
}

}  // namespace

void crossentropy_forward(float* losses, const float* logits, const std::uint32_t* targets, std::size_t N,
                          std::size_t V) {
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    std::vector<float> row(V);
    for (std::size_t n = begin; n < end; ++n) {
      std::copy(logits + n * V, logits + (n + 1) * V, row.begin());
      losses[n] = softmax_numerators(row.data(), V, targets[n]).loss;
    }
  });
}

void crossentropy_forward_backward(float* losses, float* logits, const std::uint32_t* targets, std::size_t N,
                                   std::size_t V, float scale) {
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    for (std::size_t n = begin; n < end; ++n) {
      float* row = logits + n * V;
      const RowSoftmax s = softmax_numerators(row, V, targets[n]);
      losses[n] = s.loss;
      const float factor = scale / s.sum;
      for (std::size_t v = 0; v < V; ++v) row[v] *= factor;
      row[targets[n]] -= scale;
    }
  });
}

}  // namespace minitx::cpu
