// Device helpers shared by the op files: fp32 loads and stores of the storage types, fixed-order
// warp and block reductions, and the deterministic column sums used by LayerNorm and matmul.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "minitx/backend/cuda/check.h"

namespace minitx::cuda::detail {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// The butterfly gives every lane the same sum, added in the same order on every run.
__device__ __forceinline__ float warp_sum(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// Raises Kernel's dynamic shared-memory limit on the current device, once per device: the
// attribute belongs to the device's context, so each GPU of a data-parallel run needs its own
// call, and asking again before every launch would put a host round trip into every timed run.
template <auto Kernel>
cudaError_t allow_dynamic_smem(int bytes) {
  static std::atomic<std::uint64_t> done{0};  // bit d: set on device d (past 63: set every time)
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const std::uint64_t bit = device < 64 ? std::uint64_t{1} << device : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess) done.fetch_or(bit, std::memory_order_acq_rel);
  return e;
}

// 16 bytes of T, the unit of the vector loads and stores (LDG.128/STG.128) of memory-bound ops:
// 8 bf16 or 4 floats. An op takes its vector path when every pointer is 16-byte aligned and the
// element count divides into packs (the tensors our buffers carve always do), else its scalar one.
template <class T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};
template <class T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T>*>(p);
}
template <class T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& x) {
  *reinterpret_cast<Pack<T>*>(p) = x;
}
template <class T>
inline bool packable(std::size_t n, std::initializer_list<const void*> pointers) {
  if (n % Pack<T>::kSize != 0) return false;
  for (const void* p : pointers)
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return false;
  return true;
}

inline unsigned grid_for(std::size_t work, std::size_t per_block) {
  const std::size_t blocks = (work + per_block - 1) / per_block;
  if (blocks > 0x7fffffffu) fail_op("cuda: a grid of ", blocks, " blocks is too large");
  return static_cast<unsigned>(blocks);
}

// Column sums of an (N, C) matrix given by a functor, in two passes with no atomics: block
// (x = column tile, y = row slab of kColSlab rows) sums its slab for each column in row order into
// partial[y][c]; then one thread per column adds the slabs in order. The slab size is fixed, so
// the order depends on N and C alone.
inline constexpr int kColSlab = 128;
inline constexpr int kColThreads = 128;

inline std::size_t column_slabs(std::size_t N) { return (N + kColSlab - 1) / kColSlab; }

template <class Value>
__global__ void __launch_bounds__(kColThreads) column_partials(float* partial, std::size_t N, std::size_t C, Value value) {
  const std::size_t c = static_cast<std::size_t>(blockIdx.x) * kColThreads + threadIdx.x;
  if (c >= C) return;
  const std::size_t n0 = static_cast<std::size_t>(blockIdx.y) * kColSlab;
  const std::size_t n1 = n0 + kColSlab < N ? n0 + kColSlab : N;
  float s = 0.0f;
  for (std::size_t n = n0; n < n1; ++n) s += value(n, c);
  partial[static_cast<std::size_t>(blockIdx.y) * C + c] = s;
}

// out[c] = (accumulate ? out[c] : 0) + Σ_slab partial[slab][c].
// static: each op file gets its own copy, so no relocatable device code is needed.
static __global__ void __launch_bounds__(kColThreads)
    column_finish(float* out, const float* partial, std::size_t slabs, std::size_t C, bool accumulate) {
  const std::size_t c = static_cast<std::size_t>(blockIdx.x) * kColThreads + threadIdx.x;
  if (c >= C) return;
  float s = accumulate ? out[c] : 0.0f;
  // Unrolled so that several loads are in flight; the additions stay in slab order.
#pragma unroll 8
  for (std::size_t k = 0; k < slabs; ++k) s += partial[k * C + c];
  out[c] = s;
}

template <class Value>
void column_sums(float* out, float* partial, std::size_t N, std::size_t C, bool accumulate, Value value,
                 cudaStream_t stream) {
  const std::size_t slabs = column_slabs(N);
  if (slabs > 65535) fail_op("cuda: column sums over ", N, " rows need more than 65535 slabs");
  if (slabs > 0) {
    column_partials<<<dim3(grid_for(C, kColThreads), static_cast<unsigned>(slabs)), kColThreads, 0, stream>>>(
        partial, N, C, value);
    MINITX_CUDA_LAUNCHED();
  }
  column_finish<<<grid_for(C, kColThreads), kColThreads, 0, stream>>>(out, partial, slabs, C, accumulate);
  MINITX_CUDA_LAUNCHED();
}

}  // namespace minitx::cuda::detail
