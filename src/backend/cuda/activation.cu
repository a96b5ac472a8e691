// Element-wise ops: the activations of the three architectures, and the residual add.
// One thread per element in a grid-stride loop; every element is computed from its own inputs
// only, so the order of the threads cannot change a bit.
#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kThreads = 256;
constexpr float kGeluScale = 0.7978845608028654f;    // √(2/π)
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;     // 1/√2
constexpr float kInvSqrt2Pi = 0.3989422804014327f;   // 1/√(2π)

// Fixed grid: at most 2^16 blocks, each striding; large n reuses threads rather than growing the grid.
inline unsigned elementwise_grid(std::size_t n) {
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

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

template <class T>
__global__ void __launch_bounds__(kThreads) activation_forward_kernel(T* out, const T* inp, std::size_t n, Activation act) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads)
    out[i] = from_float<T>(act_forward(to_float(inp[i]), act));
}

template <class T>
__global__ void __launch_bounds__(kThreads) activation_backward_kernel(T* dinp, const T* inp, const T* dout, std::size_t n,
                                                                       Activation act, bool accumulate) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const float d = act_derivative(to_float(inp[i]), act) * to_float(dout[i]);
    dinp[i] = from_float<T>(accumulate ? to_float(dinp[i]) + d : d);
  }
}

// The vector paths: one 16-byte pack per thread and iteration, the activation a template
// argument (one kernel per kind, no switch per element). Same arithmetic per element as above.
template <class T, Activation A>
__global__ void __launch_bounds__(kThreads) activation_forward_packs(T* out, const T* inp, std::size_t packs) {
  constexpr int K = detail::Pack<T>::kSize;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < packs;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const detail::Pack<T> x = detail::load_pack(inp + i * K);
    detail::Pack<T> y;
#pragma unroll
    for (int k = 0; k < K; ++k) y.v[k] = from_float<T>(act_forward(to_float(x.v[k]), A));
    detail::store_pack(out + i * K, y);
  }
}

template <class T, Activation A>
__global__ void __launch_bounds__(kThreads) activation_backward_packs(T* dinp, const T* inp, const T* dout,
                                                                      std::size_t packs, bool accumulate) {
  constexpr int K = detail::Pack<T>::kSize;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < packs;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const detail::Pack<T> x = detail::load_pack(inp + i * K), d = detail::load_pack(dout + i * K);
    detail::Pack<T> g;
    if (accumulate) g = detail::load_pack(dinp + i * K);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const float v = act_derivative(to_float(x.v[k]), A) * to_float(d.v[k]);
      g.v[k] = from_float<T>(accumulate ? to_float(g.v[k]) + v : v);
    }
    detail::store_pack(dinp + i * K, g);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) residual_forward_packs(T* out, const T* a, const T* b, std::size_t packs) {
  constexpr int K = detail::Pack<T>::kSize;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < packs;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const detail::Pack<T> x = detail::load_pack(a + i * K), y = detail::load_pack(b + i * K);
    detail::Pack<T> z;
#pragma unroll
    for (int k = 0; k < K; ++k) z.v[k] = from_float<T>(to_float(x.v[k]) + to_float(y.v[k]));
    detail::store_pack(out + i * K, z);
  }
}

// Calls f.template operator()<A>() with the activation as a compile-time value.
template <class F>
void with_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::gelu_tanh: f.template operator()<Activation::gelu_tanh>(); return;
    case Activation::gelu_erf: f.template operator()<Activation::gelu_erf>(); return;
    case Activation::relu: f.template operator()<Activation::relu>(); return;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) residual_forward_kernel(T* out, const T* a, const T* b, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads)
    out[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}

template <class T>
__global__ void __launch_bounds__(kThreads) residual_backward_kernel(T* da, T* db, const T* dout, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const float d = to_float(dout[i]);
    da[i] = from_float<T>(to_float(da[i]) + d);
    db[i] = from_float<T>(to_float(db[i]) + d);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) from_fp32_kernel(T* out, const float* inp, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads)
    out[i] = from_float<T>(inp[i]);
}

void check_activation(Activation act, const char* op) {
  if (act != Activation::gelu_tanh && act != Activation::gelu_erf && act != Activation::relu)
    fail_op(op, ": unknown activation ", static_cast<int>(act));
}

}  // namespace

template <class T>
void activation_forward(T* out, const T* inp, std::size_t n, Activation act, cudaStream_t stream) {
  check_activation(act, "activation_forward");
  if (n == 0) return;
  if (detail::packable<T>(n, {out, inp})) {
    const std::size_t packs = n / detail::Pack<T>::kSize;
    with_activation(act, [&]<Activation A>() {
      activation_forward_packs<T, A><<<elementwise_grid(packs), kThreads, 0, stream>>>(out, inp, packs);
    });
    MINITX_CUDA_LAUNCHED();
    return;
  }
  activation_forward_kernel<T><<<elementwise_grid(n), kThreads, 0, stream>>>(out, inp, n, act);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void activation_backward(T* dinp, const T* inp, const T* dout, std::size_t n, Activation act, cudaStream_t stream,
                         bool accumulate) {
  check_activation(act, "activation_backward");
  if (n == 0) return;
  if (detail::packable<T>(n, {dinp, inp, dout})) {
    const std::size_t packs = n / detail::Pack<T>::kSize;
    with_activation(act, [&]<Activation A>() {
      activation_backward_packs<T, A><<<elementwise_grid(packs), kThreads, 0, stream>>>(dinp, inp, dout, packs,
                                                                                         accumulate);
    });
    MINITX_CUDA_LAUNCHED();
    return;
  }
  activation_backward_kernel<T><<<elementwise_grid(n), kThreads, 0, stream>>>(dinp, inp, dout, n, act, accumulate);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void residual_forward(T* out, const T* a, const T* b, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (detail::packable<T>(n, {out, a, b})) {
    const std::size_t packs = n / detail::Pack<T>::kSize;
    residual_forward_packs<T><<<elementwise_grid(packs), kThreads, 0, stream>>>(out, a, b, packs);
    MINITX_CUDA_LAUNCHED();
    return;
  }
  residual_forward_kernel<T><<<elementwise_grid(n), kThreads, 0, stream>>>(out, a, b, n);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void residual_backward(T* da, T* db, const T* dout, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (da == db) fail_op("residual_backward: da and db must be different buffers");
  residual_backward_kernel<T><<<elementwise_grid(n), kThreads, 0, stream>>>(da, db, dout, n);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void convert_from_fp32(T* out, const float* inp, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  from_fp32_kernel<T><<<elementwise_grid(n), kThreads, 0, stream>>>(out, inp, n);
  MINITX_CUDA_LAUNCHED();
}

#define MINITX_INSTANTIATE(T)                                                                              \
  template void activation_forward<T>(T*, const T*, std::size_t, Activation, cudaStream_t);                \
  template void activation_backward<T>(T*, const T*, const T*, std::size_t, Activation, cudaStream_t, bool); \
  template void residual_forward<T>(T*, const T*, const T*, std::size_t, cudaStream_t);                    \
  template void residual_backward<T>(T*, T*, const T*, std::size_t, cudaStream_t);                        \
  template void convert_from_fp32<T>(T*, const float*, std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
