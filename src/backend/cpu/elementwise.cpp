// GELU, residual and the small vector helpers: element-wise, split in fixed chunks.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"
#include "simd_math.h"

namespace minitx::cpu {
namespace {

constexpr std::size_t kChunk = 4096;  // elements per work unit: big enough to amortise a wake-up
const float kGeluScale = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
constexpr float kGeluCubic = 0.044715f;

template <class Fn>
void for_each_chunk(std::size_t n, const Fn& fn) {
  parallel_for(n, [&](std::size_t begin, std::size_t end) { fn(begin, end); }, kChunk);
}

// 0.5·(1 + tanh(u)) = sigmoid(2u): one vectorised exp per element and no cancellation near 0.
// s[i] = sigmoid(2·u(x[i])) for a chunk of at most kChunk elements.
void gelu_gate(float* s, const float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) s[i] = kGeluScale * (x[i] + kGeluCubic * x[i] * x[i] * x[i]);
  detail::sigmoid_scaled(s, s, n, 2.0f);
}

}  // namespace

void gelu_forward(float* out, const float* inp, std::size_t n) {
  for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t c = begin; c < end; c += kChunk) {
      float s[kChunk];
      const std::size_t len = std::min(kChunk, end - c);
      gelu_gate(s, inp + c, len);
      for (std::size_t i = 0; i < len; ++i) out[c + i] = inp[c + i] * s[i];
    }
  });
}

void gelu_backward(float* dinp, const float* inp, const float* dout, std::size_t n) {
  for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t c = begin; c < end; c += kChunk) {
      float s[kChunk];
      const std::size_t len = std::min(kChunk, end - c);
      gelu_gate(s, inp + c, len);
      for (std::size_t i = 0; i < len; ++i) {
        // d/dx [x·sigmoid(2u)] = s + 2·x·s·(1 - s)·u'(x)
        const float x = inp[c + i];
        const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
        dinp[c + i] += (s[i] + 2.0f * x * s[i] * (1.0f - s[i]) * du) * dout[c + i];
      }
    }
  });
}

void residual_forward(float* out, const float* a, const float* b, std::size_t n) {
  for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
  });
}

void residual_backward(float* da, float* db, const float* dout, std::size_t n) {
  for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      da[i] += dout[i];
      db[i] += dout[i];
    }
  });
}

void sum_of_squares_chunks(const float* x, std::size_t n, double* partial) {
  constexpr std::size_t chunk = kSumOfSquaresChunk;
  parallel_for((n + chunk - 1) / chunk, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      double s = 0.0;
      const std::size_t end = std::min(n, (c + 1) * chunk);
      for (std::size_t i = c * chunk; i < end; ++i) s += static_cast<double>(x[i]) * x[i];
      partial[c] = s;
    }
  });
}

double sum_of_squares(const float* x, std::size_t n) {
  std::vector<double> partial((n + kSumOfSquaresChunk - 1) / kSumOfSquaresChunk, 0.0);
  sum_of_squares_chunks(x, n, partial.data());
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void scale_in_place(float* x, std::size_t n, float factor) {
  for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) x[i] *= factor;
  });
}

}  // namespace minitx::cpu
