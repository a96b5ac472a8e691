// Rotary position embedding, GPT-NeoX layout (rotate-half), on the q and k of a (B, T_, 3C) qkv
// buffer. NH = heads, D = C/NH dims per head, of which the first rotary_dim are rotated.
// One thread per (row, pair i): its angle is computed once and applied to that pair in every
// head of q and of k, so the double-precision sincos is amortised over 2·NH rotations.
#include <cmath>

#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kThreads = 128;

// sign = +1 applies R(θ), sign = -1 its transpose R(-θ), the backward.
template <class T>
__global__ void __launch_bounds__(kThreads) rotary_kernel(T* qkv, std::size_t N, std::size_t T_, std::size_t C,
                                                          std::size_t NH, std::size_t rotary_dim, double log2_base,
                                                          std::size_t pos_offset, float sign) {
  const std::size_t half = rotary_dim / 2;
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= N * half) return;
  const std::size_t n = idx / half, i = idx % half;
  const double pos = static_cast<double>(n % T_ + pos_offset);
  // θ = pos · base^(-2i/rotary_dim), in double: an fp32 product would lose ~pos·2^-24 radians.
  const double inv_freq = exp2(-log2_base * static_cast<double>(2 * i) / static_cast<double>(rotary_dim));
  double sin_d, cos_d;
  sincos(pos * inv_freq, &sin_d, &cos_d);
  const float c = static_cast<float>(cos_d), s = sign * static_cast<float>(sin_d);
  const std::size_t D = C / NH;
  T* row = qkv + n * 3 * C;
  for (std::size_t part = 0; part < 2; ++part) {  // q, then k
    for (std::size_t h = 0; h < NH; ++h) {
      T* head = row + part * C + h * D;
      const float x1 = to_float(head[i]), x2 = to_float(head[i + half]);
      head[i] = from_float<T>(x1 * c - x2 * s);
      head[i + half] = from_float<T>(x2 * c + x1 * s);
    }
  }
}

template <class T>
void rotary(T* out, const T* inp, std::size_t B, std::size_t T_, std::size_t C, std::size_t NH, std::size_t rotary_dim,
            float base, std::size_t pos_offset, float sign, const char* op, cudaStream_t stream) {
  if (NH == 0 || C % NH != 0) fail_op(op, ": C = ", C, " is not a multiple of NH = ", NH);
  if (rotary_dim % 2 != 0 || rotary_dim > C / NH)
    fail_op(op, ": rotary_dim = ", rotary_dim, " must be even and at most the head size ", C / NH);
  if (!(base > 1.0f)) fail_op(op, ": base = ", base, " must be > 1");
  const std::size_t N = B * T_;
  if (N == 0) return;
  // The dims that are not rotated (v, and q/k past rotary_dim) are copied whole, then rotated in place.
  if (out != inp) MINITX_CUDA_CHECK(cudaMemcpyAsync(out, inp, N * 3 * C * sizeof(T), cudaMemcpyDeviceToDevice, stream));
  if (rotary_dim == 0) return;
  rotary_kernel<T><<<detail::grid_for(N * (rotary_dim / 2), kThreads), kThreads, 0, stream>>>(
      out, N, T_, C, NH, rotary_dim, std::log2(static_cast<double>(base)), pos_offset, sign);
  MINITX_CUDA_LAUNCHED();
}

}  // namespace

template <class T>
void rotary_forward(T* out, const T* inp, std::size_t B, std::size_t T_, std::size_t C, std::size_t NH,
                    std::size_t rotary_dim, float base, std::size_t pos_offset, cudaStream_t stream) {
  rotary(out, inp, B, T_, C, NH, rotary_dim, base, pos_offset, 1.0f, "rotary_forward", stream);
}

template <class T>
void rotary_backward(T* dinp, const T* dout, std::size_t B, std::size_t T_, std::size_t C, std::size_t NH,
                     std::size_t rotary_dim, float base, std::size_t pos_offset, cudaStream_t stream) {
  rotary(dinp, dout, B, T_, C, NH, rotary_dim, base, pos_offset, -1.0f, "rotary_backward", stream);
}

#define MINITX_INSTANTIATE(T)                                                                                \
  template void rotary_forward<T>(T*, const T*, std::size_t, std::size_t, std::size_t, std::size_t,          \
                                  std::size_t, float, std::size_t, cudaStream_t);                            \
  template void rotary_backward<T>(T*, const T*, std::size_t, std::size_t, std::size_t, std::size_t,         \
                                   std::size_t, float, std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
