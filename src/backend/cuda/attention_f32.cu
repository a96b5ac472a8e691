// The fp32 checking path: one thread per query row (forward, dQ) or key row (dK/dV), plain FMA
// loops over the same tile walks as the tensor-core kernels, K and V read through the cache.
// Slow by design; it shares no fragment code with the bf16 kernels, so when both agree with
// the CPU oracle the layout handling is right independently of the MMA plumbing.
#include <climits>
#include <cmath>

#include "attention_launch.h"
#include "attention_tiles.h"

namespace minitx::cuda::attn {
namespace {

__device__ __forceinline__ bool keep(std::uint8_t kind, int q, int k, int T, const std::uint8_t* global) {
  return kind == kFull ? q < T : allowed(kind, q, k, T, global);
}

template <int D>
__device__ __forceinline__ float dot(const float* a, const float* b) {
  float s = 0.f;
#pragma unroll 8
  for (int d = 0; d < D; ++d) s = fmaf(a[d], b[d], s);
  return s;
}

template <int D>
__global__ void forward_f32_kernel(const ParamsF32 p) {
  const int T = p.T, block = p.L.block, q0 = blockIdx.x * block, q = q0 + threadIdx.x;
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  if (q >= T) return;  // no barriers below
  const std::int64_t base = static_cast<std::int64_t>(b) * T;
  const float* qr = p.q + (base + q) * p.ld_qkv + h * D;
  const KeyWalk walk(p.L.row_ptr, p.L.cols, (p.L.heads == 1 ? 0 : h) * p.L.nb + q0 / block, block, block, q0, block, T);
  float o[D] = {};
  float m = -INFINITY, l = 0.f;
  for (int j = 0, k0 = walk.start(0);; ++j) {
    const std::uint8_t kind = p.L.kinds[walk.entry(j)];
    for (int k = k0; k < k0 + block; ++k) {
      if (!keep(kind, q, k, T, p.L.global)) continue;
      const float s = dot<D>(qr, p.k + (base + k) * p.ld_qkv + h * D) * p.scale;
      const float m_new = fmaxf(m, s), alpha = expf(m - m_new), w = expf(s - m_new);
      const float* vr = p.v + (base + k) * p.ld_qkv + h * D;
      for (int d = 0; d < D; ++d) o[d] = fmaf(w, vr[d], o[d] * alpha);
      l = l * alpha + w;
      m = m_new;
    }
    const int next = walk.next(j);
    if (next == INT_MAX) break;
    k0 = next;
  }
  float* out = p.out + (base + q) * p.ld_out + h * D;
  for (int d = 0; d < D; ++d) out[d] = o[d] / l;
  p.lse[static_cast<std::int64_t>(bh) * T + q] = m + logf(l);
}

template <int D>
__global__ void delta_f32_kernel(const ParamsF32 p) {
  const int q = blockIdx.x * blockDim.x + threadIdx.x, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  if (q >= p.T) return;
  const std::int64_t tok = static_cast<std::int64_t>(b) * p.T + q;
  p.delta[static_cast<std::int64_t>(bh) * p.T + q] =
      dot<D>(p.out + tok * p.ld_out + h * D, p.dout + tok * p.ld_dout + h * D);
}

template <int D>
__global__ void dkdv_f32_kernel(const ParamsF32 p) {
  const int T = p.T, block = p.L.block, k0 = blockIdx.x * block, k = k0 + threadIdx.x;
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  if (k >= T) return;
  const std::int64_t base = static_cast<std::int64_t>(b) * T;
  const float* kr = p.k + (base + k) * p.ld_qkv + h * D;
  const float* vr = p.v + (base + k) * p.ld_qkv + h * D;
  const QueryWalk walk(p.L.t_row_ptr, p.L.t_rows, (p.L.heads == 1 ? 0 : h) * p.L.nb + k0 / block, block, block, T);
  float dk[D] = {}, dv[D] = {};
  int j = walk.first(k0);
  for (int q0 = walk.start(j);; ++j) {
    const std::uint8_t kind = p.L.t_kinds[walk.entry(j)];
    for (int q = q0; q < q0 + block; ++q) {
      if (!keep(kind, q, k, T, p.L.global)) continue;
      const float* qr = p.q + (base + q) * p.ld_qkv + h * D;
      const float* dor = p.dout + (base + q) * p.ld_dout + h * D;
      const std::int64_t at = static_cast<std::int64_t>(bh) * T + q;
      const float pr = expf(dot<D>(qr, kr) * p.scale - p.lse[at]);
      const float ds = pr * (dot<D>(dor, vr) - p.delta[at]) * p.scale;
      for (int d = 0; d < D; ++d) {
        dv[d] = fmaf(pr, dor[d], dv[d]);
        dk[d] = fmaf(ds, qr[d], dk[d]);
      }
    }
    const int next = walk.next(j);
    if (next == INT_MAX) break;
    q0 = next;
  }
  float* dkr = p.dk + (base + k) * p.ld_dqkv + h * D;
  float* dvr = p.dv + (base + k) * p.ld_dqkv + h * D;
  for (int d = 0; d < D; ++d) {
    dkr[d] = dk[d];
    dvr[d] = dv[d];
  }
}

template <int D>
__global__ void dq_f32_kernel(const ParamsF32 p) {
  const int T = p.T, block = p.L.block, q0 = blockIdx.x * block, q = q0 + threadIdx.x;
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  if (q >= T) return;
  const std::int64_t base = static_cast<std::int64_t>(b) * T, at = static_cast<std::int64_t>(bh) * T + q;
  const float* qr = p.q + (base + q) * p.ld_qkv + h * D;
  const float* dor = p.dout + (base + q) * p.ld_dout + h * D;
  const float lse = p.lse[at], delta = p.delta[at];
  const KeyWalk walk(p.L.row_ptr, p.L.cols, (p.L.heads == 1 ? 0 : h) * p.L.nb + q0 / block, block, block, q0, block, T);
  float dq[D] = {};
  for (int j = 0, k0 = walk.start(0);; ++j) {
    const std::uint8_t kind = p.L.kinds[walk.entry(j)];
    for (int k = k0; k < k0 + block; ++k) {
      if (!keep(kind, q, k, T, p.L.global)) continue;
      const float* kr = p.k + (base + k) * p.ld_qkv + h * D;
      const float pr = expf(dot<D>(qr, kr) * p.scale - lse);
      const float ds = pr * (dot<D>(dor, p.v + (base + k) * p.ld_qkv + h * D) - delta) * p.scale;
      for (int d = 0; d < D; ++d) dq[d] = fmaf(ds, kr[d], dq[d]);
    }
    const int next = walk.next(j);
    if (next == INT_MAX) break;
    k0 = next;
  }
  float* out = p.dq + (base + q) * p.ld_dqkv + h * D;
  for (int d = 0; d < D; ++d) out[d] = dq[d];
}

template <int D>
cudaError_t forward_d(const ParamsF32& p, cudaStream_t stream) {
  const dim3 grid((p.T + p.L.block - 1) / p.L.block, p.B * p.H);
  forward_f32_kernel<D><<<grid, p.L.block, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int D>
cudaError_t backward_d(const ParamsF32& p, cudaStream_t stream) {
  const dim3 grid((p.T + p.L.block - 1) / p.L.block, p.B * p.H);
  delta_f32_kernel<D><<<grid, p.L.block, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  dkdv_f32_kernel<D><<<grid, p.L.block, 0, stream>>>(p);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  dq_f32_kernel<D><<<grid, p.L.block, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

// Calls run<D> for the head size D (a multiple of 16 up to kMaxHeadF32, checked by the host).
template <int D = 16, class Run>
cudaError_t dispatch_head(int head, Run&& run) {
  if constexpr (D > kMaxHeadF32) {
    return cudaErrorInvalidValue;
  } else {
    if (head == D) return run.template operator()<D>();
    return dispatch_head<D + 16>(head, run);
  }
}

cudaError_t forward_f32(const ParamsF32& p, int D, cudaStream_t stream) {
  return dispatch_head(D, [&]<int H>() { return forward_d<H>(p, stream); });
}

cudaError_t backward_f32(const ParamsF32& p, int D, cudaStream_t stream) {
  return dispatch_head(D, [&]<int H>() { return backward_d<H>(p, stream); });
}

}  // namespace minitx::cuda::attn
