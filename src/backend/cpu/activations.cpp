// The activations other than GPT-2's tanh GELU (elementwise.cpp): exact GELU (GPT-NeoX) and ReLU
// (OPT). Element-wise, so any split over threads gives the same bits.
#include <cmath>
#include <numbers>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"

namespace minitx::cpu {
namespace {

constexpr std::size_t kChunk = 4096;
const float kInvSqrt2 = static_cast<float>(1.0 / std::numbers::sqrt2);
const float kInvSqrt2Pi = static_cast<float>(1.0 / std::sqrt(2.0 * std::numbers::pi));

template <class Fn>
void for_each(std::size_t n, const Fn& fn) {
  parallel_for(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) fn(i);
  }, kChunk);
}

}  // namespace

void gelu_erf_forward(float* out, const float* inp, std::size_t n) {
  for_each(n, [&](std::size_t i) { out[i] = 0.5f * inp[i] * (1.0f + std::erf(inp[i] * kInvSqrt2)); });
}

void gelu_erf_backward(float* dinp, const float* inp, const float* dout, std::size_t n) {
  // d/dx [x·Φ(x)] = Φ(x) + x·φ(x)
  for_each(n, [&](std::size_t i) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + std::erf(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x * x);
    dinp[i] += (cdf + x * pdf) * dout[i];
  });
}

void relu_forward(float* out, const float* inp, std::size_t n) {
  for_each(n, [&](std::size_t i) { out[i] = inp[i] > 0.0f ? inp[i] : 0.0f; });
}

void relu_backward(float* dinp, const float* inp, const float* dout, std::size_t n) {
  for_each(n, [&](std::size_t i) {
    if (inp[i] > 0.0f) dinp[i] += dout[i];
  });
}

}  // namespace minitx::cpu
