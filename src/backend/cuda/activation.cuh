// The three architectures' activations and their derivatives at one point, as the CPU computes
// them: shared by the element-wise ops (activation.cu) and the decode step's fused epilogues.
#pragma once
#include <cuda_runtime.h>

#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda::detail {

constexpr float kGeluScale = 0.7978845608028654f;    // √(2/π)
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;     // 1/√2
constexpr float kInvSqrt2Pi = 0.3989422804014327f;   // 1/√(2π)

// gelu-tanh as the CPU computes it: 0.5·(1 + tanh(u)) = sigmoid(2u), which has no cancellation near 0.
__device__ __forceinline__ float gelu_tanh_gate(float x) {
  const float u = kGeluScale * (x + kGeluCubic * x * x * x);
  return 1.0f / (1.0f + expf(-2.0f * u));
}

__device__ __forceinline__ float act_forward(float x, Activation act) {
  switch (act) {
    case Activation::gelu_tanh: return x * gelu_tanh_gate(x);
    // erfc(-x/√2) = 1 + erf(x/√2) without the cancellation for negative x.
    case Activation::gelu_erf: return 0.5f * x * erfcf(-x * kInvSqrt2);
    case Activation::relu: return x > 0.0f ? x : 0.0f;
  }
  return 0.0f;
}

__device__ __forceinline__ float act_derivative(float x, Activation act) {
  switch (act) {
    case Activation::gelu_tanh: {
      // d/dx [x·sigmoid(2u)] = s + 2·x·s·(1 - s)·u'(x)
      const float s = gelu_tanh_gate(x);
      const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
      return s + 2.0f * x * s * (1.0f - s) * du;
    }
    case Activation::gelu_erf: return 0.5f * erfcf(-x * kInvSqrt2) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    case Activation::relu: return x > 0.0f ? 1.0f : 0.0f;
  }
  return 0.0f;
}

}  // namespace minitx::cuda::detail
