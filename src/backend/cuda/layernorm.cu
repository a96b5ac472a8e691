// LayerNorm forward and backward. N = rows, C = channels.
// One warp per row: a row's statistics are warp reductions with a fixed butterfly order, and
// consecutive lanes read consecutive channels (coalesced). Rows are re-read from global memory
// rather than held in registers, so any C works; the second read hits L1/L2.
#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;
using detail::warp_sum;

constexpr int kWarpsPerBlock = 4;
constexpr int kThreads = 32 * kWarpsPerBlock;

template <class T>
__global__ void __launch_bounds__(kThreads) layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* inp,
                                                                     const T* weight, const T* bias, std::size_t N,
                                                                     std::size_t C, float eps) {
  const std::size_t n = static_cast<std::size_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together: the shuffles below see all 32 lanes
  const unsigned lane = threadIdx.x % 32;
  const T* x = inp + n * C;
  float s = 0.0f;
  for (std::size_t c = lane; c < C; c += 32) s += to_float(x[c]);
  const float m = warp_sum(s) / static_cast<float>(C);
  // Two passes (mean, then squared deviations) rather than Σx² - mean²: no cancellation.
  float v = 0.0f;
  for (std::size_t c = lane; c < C; c += 32) {
    const float d = to_float(x[c]) - m;
    v += d * d;
  }
  const float r = 1.0f / sqrtf(warp_sum(v) / static_cast<float>(C) + eps);
  T* o = out + n * C;
  for (std::size_t c = lane; c < C; c += 32)
    o[c] = from_float<T>((to_float(x[c]) - m) * r * to_float(weight[c]) + to_float(bias[c]));
  if (lane == 0) {
    if (mean != nullptr) mean[n] = m;
    if (rstd != nullptr) rstd[n] = r;
  }
}

// dinp += rstd·(g - mean(g) - xhat·mean(g·xhat)), g = dout·weight; one warp per row.
template <class T>
__global__ void __launch_bounds__(kThreads) layernorm_dinp_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
                                                                  const float* mean, const float* rstd, std::size_t N,
                                                                  std::size_t C) {
  const std::size_t n = static_cast<std::size_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= N) return;
  const unsigned lane = threadIdx.x % 32;
  const T* x = inp + n * C;
  const T* d = dout + n * C;
  const float m = mean[n], r = rstd[n];
  float g_sum = 0.0f, gx_sum = 0.0f;
  for (std::size_t c = lane; c < C; c += 32) {
    const float g = to_float(d[c]) * to_float(weight[c]);
    g_sum += g;
    gx_sum += g * (to_float(x[c]) - m) * r;
  }
  const float g_mean = warp_sum(g_sum) / static_cast<float>(C);
  const float gx_mean = warp_sum(gx_sum) / static_cast<float>(C);
  T* dx = dinp + n * C;
  for (std::size_t c = lane; c < C; c += 32) {
    const float xhat = (to_float(x[c]) - m) * r;
    const float g = to_float(d[c]) * to_float(weight[c]);
    dx[c] = from_float<T>(to_float(dx[c]) + r * (g - g_mean - xhat * gx_mean));
  }
}

template <class T>
struct DoutAt {
  const T* dout;
  std::size_t C;
  __device__ float operator()(std::size_t n, std::size_t c) const { return to_float(dout[n * C + c]); }
};
template <class T>
struct DoutXhatAt {
  const T* dout;
  const T* inp;
  const float* mean;
  const float* rstd;
  std::size_t C;
  __device__ float operator()(std::size_t n, std::size_t c) const {
    return (to_float(inp[n * C + c]) - mean[n]) * rstd[n] * to_float(dout[n * C + c]);
  }
};

}  // namespace

template <class T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, std::size_t N,
                       std::size_t C, float eps, cudaStream_t stream) {
  if (N == 0) return;
  if (C == 0) fail_op("layernorm_forward: C = 0");
  layernorm_forward_kernel<T><<<detail::grid_for(N, kWarpsPerBlock), kThreads, 0, stream>>>(out, mean, rstd, inp, weight,
                                                                                             bias, N, C, eps);
  MINITX_CUDA_LAUNCHED();
}

std::size_t layernorm_backward_scratch_floats(std::size_t N, std::size_t C) { return detail::column_slabs(N) * C; }

template <class T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, float* scratch, const T* dout, const T* inp,
                        const T* weight, const float* mean, const float* rstd, std::size_t N, std::size_t C,
                        cudaStream_t stream) {
  if (N == 0 || C == 0) return;
  // The two column sums share one scratch, one after the other on the stream.
  detail::column_sums(dbias, scratch, N, C, true, DoutAt<T>{dout, C}, stream);
  detail::column_sums(dweight, scratch, N, C, true, DoutXhatAt<T>{dout, inp, mean, rstd, C}, stream);
  layernorm_dinp_kernel<T><<<detail::grid_for(N, kWarpsPerBlock), kThreads, 0, stream>>>(dinp, dout, inp, weight, mean,
                                                                                          rstd, N, C);
  MINITX_CUDA_LAUNCHED();
}

#define MINITX_INSTANTIATE(T)                                                                                     \
  template void layernorm_forward<T>(T*, float*, float*, const T*, const T*, const T*, std::size_t, std::size_t, \
                                     float, cudaStream_t);                                                        \
  template void layernorm_backward<T>(T*, float*, float*, float*, const T*, const T*, const T*, const float*,    \
                                      const float*, std::size_t, std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
