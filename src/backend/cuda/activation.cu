// Element-wise ops: the activations of the three architectures, and the residual add.
// One thread per element in a grid-stride loop; every element is computed from its own inputs
// only, so the order of the threads cannot change a bit.
#include "activation.cuh"
#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;
using detail::act_derivative;
using detail::act_forward;

constexpr int kThreads = 256;

// Fixed grid: at most 2^16 blocks, each striding; large n reuses threads rather than growing the grid.
inline unsigned elementwise_grid(std::size_t n) {
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
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
