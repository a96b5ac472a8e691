// AdamW on fp32 master weights, the gradient norm's chunk sums, and the elementwise add and scale
// of gradient sums.
#include <cmath>

#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

constexpr int kThreads = 256;

// The CPU's adamw_update, operation for operation: __fmul_rn/__fadd_rn/__fsub_rn keep nvcc from
// contracting a*b + c into an FMA (the CPU build uses -ffp-contract=off), and IEEE division and
// sqrt are nvcc's default (no fast math). Bias corrections come from the host, computed as the CPU does.
__global__ void __launch_bounds__(kThreads) adamw_kernel(float* params, __nv_bfloat16* params_bf16, const float* grads,
                                                         float* m, float* v, std::size_t n, float lr, float beta1,
                                                         float beta2, float eps, float weight_decay, float correction1,
                                                         float correction2) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const float g = grads[i];
    const float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(__fsub_rn(1.0f, beta1), g));
    const float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, beta2), g), g));
    m[i] = mi;
    v[i] = vi;
    const float m_hat = __fdiv_rn(mi, correction1), v_hat = __fdiv_rn(vi, correction2);
    const float p = params[i];
    const float step = __fadd_rn(__fdiv_rn(m_hat, __fadd_rn(__fsqrt_rn(v_hat), eps)), __fmul_rn(weight_decay, p));
    const float updated = __fsub_rn(p, __fmul_rn(lr, step));
    params[i] = updated;
    if (params_bf16 != nullptr) params_bf16[i] = __float2bfloat16_rn(updated);
  }
}

// The norm's partial sums: block c sums x² over chunk c (kNormChunk elements: thread t takes
// t, t + kThreads, ... in order), then its threads are added in a fixed tree. The chunks are
// data_parallel.h's kShardChunk: shards start on chunk boundaries, so a shard's chunk sums are
// the whole vector's, and the host adds them in chunk order (the one order for any rank count).
constexpr std::size_t kNormChunk = 4096;

__device__ double block_sum(double s, double* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = s;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  return total;  // valid in thread 0
}

__global__ void __launch_bounds__(kThreads) norm_chunks_kernel(double* sums, const float* x, std::size_t n) {
  __shared__ double shared[kThreads / 32];
  const std::size_t begin = static_cast<std::size_t>(blockIdx.x) * kNormChunk;
  const std::size_t end = begin + kNormChunk < n ? begin + kNormChunk : n;
  double s = 0.0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const double xi = x[i];
    s += xi * xi;
  }
  const double total = block_sum(s, shared);
  if (threadIdx.x == 0) sums[blockIdx.x] = total;
}

__global__ void __launch_bounds__(kThreads) add_kernel(float* a, const float* b, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads)
    a[i] = __fadd_rn(a[i], b[i]);
}

__global__ void __launch_bounds__(kThreads) scale_kernel(float* x, std::size_t n, float factor) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads)
    x[i] *= factor;
}

inline unsigned elementwise_grid(std::size_t n) {
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

}  // namespace

void adamw_update(float* params, bf16* params_bf16, const float* grads, float* m, float* v, std::size_t n,
                  const AdamWStep& s, cudaStream_t stream) {
  if (s.t == 0) fail_op("adamw_update: the step t is 1-based, got 0");
  if (n == 0) return;
  // Exactly the CPU's expressions (std::pow on floats), so the kernel divides by the same numbers.
  const float correction1 = 1.0f - std::pow(s.beta1, static_cast<float>(s.t));
  const float correction2 = 1.0f - std::pow(s.beta2, static_cast<float>(s.t));
  adamw_kernel<<<elementwise_grid(n), kThreads, 0, stream>>>(params, params_bf16, grads, m, v, n, s.lr, s.beta1, s.beta2,
                                                             s.eps, s.weight_decay, correction1, correction2);
  MINITX_CUDA_LAUNCHED();
}

std::size_t grad_norm_chunk_count(std::size_t n) { return (n + kNormChunk - 1) / kNormChunk; }

void grad_norm_chunks(double* sums, const float* x, std::size_t n, cudaStream_t stream) {
  const std::size_t chunks = grad_norm_chunk_count(n);
  if (chunks == 0) return;
  if (chunks > 0x7fffffffu) fail_op("grad_norm_chunks: ", chunks, " chunks exceed a grid");
  norm_chunks_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(sums, x, n);
  MINITX_CUDA_LAUNCHED();
}

void add_in_place(float* a, const float* b, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_kernel<<<elementwise_grid(n), kThreads, 0, stream>>>(a, b, n);
  MINITX_CUDA_LAUNCHED();
}

void scale_in_place(float* x, std::size_t n, float factor, cudaStream_t stream) {
  if (n == 0) return;
  scale_kernel<<<elementwise_grid(n), kThreads, 0, stream>>>(x, n, factor);
  MINITX_CUDA_LAUNCHED();
}

}  // namespace minitx::cuda
