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

// The backward in one pass over the rows, for rows of up to P 16-byte packs per lane (P ≤
// kLnMaxPacks): block b takes the kLnSlab rows of slab b, warp w its rows w, w + kLnWarps, …;
// each lane keeps its columns' Σ dout and Σ dout·xhat in registers, the block adds its warps in
// order into partial[0][b] (dbias) and partial[1][b] (dweight), and column_finish adds the slabs
// in order. dinp as layernorm_dinp_kernel, from the same registers. Slabs are short so that a
// batch of rows gives many blocks.
constexpr int kLnWarps = 4, kLnMaxPacks = 4, kLnSlab = 32;

template <class T, int P>
__global__ void __launch_bounds__(32 * kLnWarps)
    layernorm_backward_fused(T* dinp, float* partial, const T* dout, const T* inp, const T* weight, const float* mean,
                             const float* rstd, std::size_t N, std::size_t C, std::size_t slabs) {
  constexpr int K = detail::Pack<T>::kSize;
  extern __shared__ float warp_sums[];  // [kLnWarps][2][C]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::size_t slab = blockIdx.x, n0 = slab * kLnSlab;
  const std::size_t n1 = n0 + kLnSlab < N ? n0 + kLnSlab : N;
  const int packs = static_cast<int>(C / K);
  float acc_b[P][K] = {}, acc_w[P][K] = {};
  detail::Pack<T> wp[P];
#pragma unroll
  for (int j = 0; j < P; ++j)
    if (lane + 32 * j < packs) wp[j] = detail::load_pack(weight + (lane + 32 * j) * K);
  for (std::size_t n = n0 + warp; n < n1; n += kLnWarps) {
    const float m = mean[n], r = rstd[n];
    detail::Pack<T> xp[P], dp[P];
    float g_sum = 0.0f, gx_sum = 0.0f;
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int p = lane + 32 * j;
      if (p >= packs) continue;
      xp[j] = detail::load_pack(inp + n * C + p * K);
      dp[j] = detail::load_pack(dout + n * C + p * K);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const float d = to_float(dp[j].v[k]), xhat = (to_float(xp[j].v[k]) - m) * r;
        const float g = d * to_float(wp[j].v[k]);
        g_sum += g;
        gx_sum += g * xhat;
        acc_b[j][k] += d;
        acc_w[j][k] += d * xhat;
      }
    }
    const float g_mean = warp_sum(g_sum) / static_cast<float>(C);
    const float gx_mean = warp_sum(gx_sum) / static_cast<float>(C);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int p = lane + 32 * j;
      if (p >= packs) continue;
      T* dx = dinp + n * C + p * K;
      detail::Pack<T> o = detail::load_pack(dx);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const float xhat = (to_float(xp[j].v[k]) - m) * r;
        const float g = to_float(dp[j].v[k]) * to_float(wp[j].v[k]);
        o.v[k] = from_float<T>(to_float(o.v[k]) + r * (g - g_mean - xhat * gx_mean));
      }
      detail::store_pack(dx, o);
    }
  }
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int p = lane + 32 * j;
    if (p >= packs) continue;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      warp_sums[(warp * 2) * C + p * K + k] = acc_b[j][k];
      warp_sums[(warp * 2 + 1) * C + p * K + k] = acc_w[j][k];
    }
  }
  __syncthreads();
  for (std::size_t c = threadIdx.x; c < C; c += 32 * kLnWarps) {
    float b = 0.0f, w = 0.0f;
    for (int i = 0; i < kLnWarps; ++i) {
      b += warp_sums[(i * 2) * C + c];
      w += warp_sums[(i * 2 + 1) * C + c];
    }
    partial[slab * C + c] = b;
    partial[(slabs + slab) * C + c] = w;
  }
}

template <class T>
bool fused_backward_fits(std::size_t C, std::initializer_list<const void*> pointers) {
  return detail::packable<T>(C, pointers) && C / detail::Pack<T>::kSize <= 32 * kLnMaxPacks;
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

std::size_t layernorm_backward_scratch_floats(std::size_t N, std::size_t C) {
  return 2 * ((N + kLnSlab - 1) / kLnSlab) * C;  // the fused path's two partial sums (more than the other's)
}

template <class T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, float* scratch, const T* dout, const T* inp,
                        const T* weight, const float* mean, const float* rstd, std::size_t N, std::size_t C,
                        cudaStream_t stream) {
  if (N == 0 || C == 0) return;
  if (fused_backward_fits<T>(C, {dinp, dout, inp, weight})) {
    const std::size_t slabs = (N + kLnSlab - 1) / kLnSlab;
    if (slabs > 0x7fffffffu) fail_op("layernorm_backward: ", N, " rows are too many");
    const std::size_t smem = 2 * kLnWarps * C * sizeof(float);
    const std::size_t per_lane = (C / detail::Pack<T>::kSize + 31) / 32;  // packs each lane holds
    const auto launch = [&](auto kernel) {
      kernel<<<static_cast<unsigned>(slabs), 32 * kLnWarps, smem, stream>>>(dinp, scratch, dout, inp, weight, mean,
                                                                            rstd, N, C, slabs);
    };
    if (per_lane <= 1) launch(layernorm_backward_fused<T, 1>);
    else if (per_lane == 2) launch(layernorm_backward_fused<T, 2>);
    else if (per_lane == 3) launch(layernorm_backward_fused<T, 3>);
    else launch(layernorm_backward_fused<T, 4>);
    MINITX_CUDA_LAUNCHED();
    const unsigned grid = detail::grid_for(C, detail::kColThreads);
    detail::column_finish<<<grid, detail::kColThreads, 0, stream>>>(dbias, scratch, slabs, C, true);
    MINITX_CUDA_LAUNCHED();
    detail::column_finish<<<grid, detail::kColThreads, 0, stream>>>(dweight, scratch + slabs * C, slabs, C, true);
    MINITX_CUDA_LAUNCHED();
    return;
  }
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
