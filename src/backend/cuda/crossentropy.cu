// Fused softmax cross-entropy over the vocabulary. N = rows, V = vocabulary, Vp = padded row length.
// One block per row: each thread keeps an online (max, Σexp) over its strided columns, the block
// combines them in a fixed tree (warp butterfly, then warp 0 over the warps in order), and a
// second sweep writes the gradient. The row is read twice and written once.
#include <cmath>

#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

struct MaxSum {
  float max, sum;  // sum = Σ exp(x - max) over the elements seen
};

__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.max, b.max);
  // A side that saw nothing has max = -inf and sum = 0; comparing avoids exp(-inf - -inf) = NaN.
  const float sa = a.max == m ? a.sum : a.sum * expf(a.max - m);
  const float sb = b.max == m ? b.sum : b.sum * expf(b.max - m);
  return {m, sa + sb};
}

__device__ __forceinline__ void online_add(MaxSum& part, float xv) {
  if (xv > part.max) {
    part.sum = part.sum * expf(part.max - xv) + 1.0f;
    part.max = xv;
  } else {
    part.sum += expf(xv - part.max);
  }
}

// kPacked: each thread reads and writes 16-byte packs (Vp a multiple of the pack, rows aligned);
// the elements a thread sees, and so every sum, are in a fixed order either way.
template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads) crossentropy_kernel(float* losses, T* dlogits, const T* logits,
                                                                const std::uint32_t* targets, std::size_t V,
                                                                std::size_t Vp, float scale) {
  constexpr int K = detail::Pack<T>::kSize;
  __shared__ MaxSum warp_part[kWarps];
  __shared__ MaxSum row_total;
  const std::size_t n = blockIdx.x;
  const T* x = logits + n * Vp;
  const std::size_t target = targets[n];
  // Read before any thread can overwrite the row in place (the block barrier below orders it).
  const float target_logit = threadIdx.x == 0 ? to_float(x[target]) : 0.0f;

  MaxSum part{-INFINITY, 0.0f};
  if constexpr (kPacked) {
    for (std::size_t v0 = threadIdx.x * K; v0 < V; v0 += kThreads * K) {
      const detail::Pack<T> p = detail::load_pack(x + v0);
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (v0 + k < V) online_add(part, to_float(p.v[k]));
    }
  } else {
    for (std::size_t v = threadIdx.x; v < V; v += kThreads) online_add(part, to_float(x[v]));
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    const MaxSum other{__shfl_xor_sync(0xffffffffu, part.max, offset), __shfl_xor_sync(0xffffffffu, part.sum, offset)};
    part = combine(part, other);
  }
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_part[warp] = part;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum total = warp_part[0];
    for (int w = 1; w < kWarps; ++w) total = combine(total, warp_part[w]);
    row_total = total;
    losses[n] = logf(total.sum) - (target_logit - total.max);
  }
  __syncthreads();
  if (dlogits == nullptr) return;
  const MaxSum total = row_total;
  const float factor = scale / total.sum;  // as the CPU: exp(x - max)·(scale/Σ), then -scale at the target
  T* d = dlogits + n * Vp;
  const auto grad = [&](std::size_t v, float xv) {
    float g = 0.0f;  // the padding gets a zero gradient
    if (v < V) {
      g = expf(xv - total.max) * factor;
      if (v == target) g -= scale;
    }
    return from_float<T>(g);
  };
  if constexpr (kPacked) {
    for (std::size_t v0 = threadIdx.x * K; v0 < Vp; v0 += kThreads * K) {
      detail::Pack<T> p = detail::load_pack(x + v0);
#pragma unroll
      for (int k = 0; k < K; ++k) p.v[k] = grad(v0 + k, to_float(p.v[k]));
      detail::store_pack(d + v0, p);
    }
  } else {
    for (std::size_t v = threadIdx.x; v < Vp; v += kThreads) d[v] = grad(v, to_float(x[v]));
  }
}

}  // namespace

template <class T>
void crossentropy_forward_backward(float* losses, T* dlogits, const T* logits, const std::uint32_t* targets,
                                   std::size_t N, std::size_t V, std::size_t Vp, float scale, cudaStream_t stream) {
  if (V == 0 || V > Vp) fail_op("crossentropy: need 0 < V <= Vp, got V = ", V, ", Vp = ", Vp);
  if (N == 0) return;
  if (N > 0x7fffffffu) fail_op("crossentropy: N = ", N, " rows is too many");
  if (Vp % detail::Pack<T>::kSize == 0 && detail::packable<T>(0, {logits, dlogits}))
    crossentropy_kernel<T, true><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(losses, dlogits, logits, targets, V,
                                                                                    Vp, scale);
  else
    crossentropy_kernel<T, false><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(losses, dlogits, logits, targets,
                                                                                     V, Vp, scale);
  MINITX_CUDA_LAUNCHED();
}

#define MINITX_INSTANTIATE(T)                                                                                  \
  template void crossentropy_forward_backward<T>(float*, T*, const T*, const std::uint32_t*, std::size_t,     \
                                                 std::size_t, std::size_t, float, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
