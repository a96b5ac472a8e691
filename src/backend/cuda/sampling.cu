// The CUDA sampler (minitx/backend/cuda/sampling.h). Each step is sample_token's, made parallel
// without changing a single integer:
//  - greedy: a max over (order key, complement of the id) packed into 64 bits, whose largest value
//    is the first largest logit whatever the reduction tree;
//  - otherwise: sort the row by its order keys (CUB radix sort, stable, on ids in increasing
//    order, so ties keep the lower id first: sample_token's total order), weigh the first
//    min(top_k, V) with sampling_math.h's weight, turn the weights into their inclusive prefix
//    sums in place (CUB scan of uint64, exact in any order), then find the top-p cut and the
//    drawn token as the one position where a cumulative weight crosses its threshold: exactly
//    one thread matches, so it alone writes, and no atomics are needed.
// Rows are sorted and scanned one CUB call each (the scratch's temporary storage is reused in
// stream order); the other kernels take every row at once (grid y = row).
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>

#include "common.cuh"
#include "minitx/backend/cuda/sampling.h"
#include "minitx/infer/sampling_math.h"

namespace minitx::cuda {
namespace {

namespace sm = minitx::sampling;

constexpr int kThreads = 256;
constexpr std::size_t kArgmaxChunk = 8 * kThreads;  // logits per block of the argmax: 25 blocks for 50k
constexpr std::size_t kMaxRows = 65535;              // rows are the grid's y dimension

// The largest packed value is the largest key at the lowest id (V ≤ 2^24, so ids fit the low word).
__device__ __forceinline__ std::uint64_t pack_best(std::uint32_t key, std::size_t id) {
  return (static_cast<std::uint64_t>(key) << 32) | (0xffffffffu - static_cast<std::uint32_t>(id));
}
__device__ __forceinline__ std::uint32_t unpack_id(std::uint64_t best) {
  return 0xffffffffu - static_cast<std::uint32_t>(best);
}

__device__ __forceinline__ std::uint64_t larger(std::uint64_t a, std::uint64_t b) { return a > b ? a : b; }

// The block's maximum, valid in thread 0. 0 is below every packed candidate, so it pads.
__device__ __forceinline__ std::uint64_t block_max(std::uint64_t x) {
  __shared__ std::uint64_t warp_best[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) x = larger(x, __shfl_xor_sync(0xffffffffu, x, offset));
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_best[warp] = x;
  __syncthreads();
  if (warp == 0) {
    x = lane < kThreads / 32 ? warp_best[lane] : 0;
    for (int offset = 16; offset > 0; offset >>= 1) x = larger(x, __shfl_xor_sync(0xffffffffu, x, offset));
  }
  return x;
}

// Block (chunk, row) takes the best of its kArgmaxChunk logits; a row that is one chunk writes
// its token at once, otherwise argmax_finish combines the chunks.
__global__ void __launch_bounds__(kThreads)
    argmax_partial(std::uint64_t* partial, std::uint32_t* out, const float* logits, std::size_t V, std::size_t ld) {
  const std::size_t row = blockIdx.y;
  const float* x = logits + row * ld;
  const std::size_t begin = blockIdx.x * kArgmaxChunk;
  const std::size_t end = begin + kArgmaxChunk < V ? begin + kArgmaxChunk : V;
  std::uint64_t best = 0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += kThreads) best = larger(best, pack_best(sm::order_key(x[i]), i));
  best = block_max(best);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1)
    out[row] = unpack_id(best);
  else
    partial[row * gridDim.x + blockIdx.x] = best;
}

__global__ void __launch_bounds__(kThreads)
    argmax_finish(std::uint32_t* out, const std::uint64_t* partial, std::size_t chunks) {
  const std::size_t row = blockIdx.x;
  std::uint64_t best = 0;
  for (std::size_t c = threadIdx.x; c < chunks; c += kThreads) best = larger(best, partial[row * chunks + c]);
  best = block_max(best);
  if (threadIdx.x == 0) out[row] = unpack_id(best);
}

// Sort keys: the complement of the order key, so that CUB's increasing sort puts the largest
// logit first. ids: 0 … V-1, the values sorted along (one copy serves every row).
__global__ void __launch_bounds__(kThreads)
    make_sort_keys(std::uint32_t* keys, std::uint32_t* ids, const float* logits, std::size_t V, std::size_t ld) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x, row = blockIdx.y;
  if (i >= V) return;
  keys[row * V + i] = ~sm::order_key(logits[row * ld + i]);
  if (row == 0) ids[i] = static_cast<std::uint32_t>(i);
}

__global__ void __launch_bounds__(kThreads) weigh(std::uint64_t* weights, const std::uint32_t* sorted_ids,
                                                  const float* logits, std::size_t V, std::size_t ld,
                                                  std::size_t kept, double temperature) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x, row = blockIdx.y;
  if (j >= kept) return;
  const std::uint32_t* ids = sorted_ids + row * V;
  const float* x = logits + row * ld;
  weights[row * V + j] = sm::weight(j, x[ids[j]], x[ids[0]], temperature);
}

// keep[row] = 1 + the first j whose cumulative weight reaches the top-p threshold.
__global__ void __launch_bounds__(kThreads)
    top_p_cut(std::uint32_t* keep, const std::uint64_t* cumulative, std::size_t V, std::size_t kept, std::uint64_t top_p32) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x, row = blockIdx.y;
  if (j >= kept) return;
  const std::uint64_t* c = cumulative + row * V;
  const std::uint64_t threshold = sm::top_p_threshold(c[kept - 1], top_p32);
  if (c[j] >= threshold && (j == 0 || c[j - 1] < threshold)) keep[row] = static_cast<std::uint32_t>(j + 1);
}

// out[row] = the first kept candidate whose cumulative weight exceeds the draw point. keep: the
// top-p cut per row, or null for all `kept`.
__global__ void __launch_bounds__(kThreads)
    draw(std::uint32_t* out, const std::uint32_t* sorted_ids, const std::uint64_t* cumulative, const std::uint32_t* keep,
         const std::uint64_t* index, std::size_t V, std::size_t kept, std::uint64_t seed) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x, row = blockIdx.y;
  const std::size_t n = keep != nullptr ? keep[row] : kept;
  if (j >= n) return;
  const std::uint64_t* c = cumulative + row * V;
  const std::uint64_t point = sm::draw_point(c[n - 1], sm::draw_bits(seed, index[row]));
  if (c[j] > point && (j == 0 || c[j - 1] <= point)) out[row] = sorted_ids[row * V + j];
}

__global__ void add_to_indices(std::uint64_t* index, std::size_t rows, std::uint64_t step) {
  const std::size_t r = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r < rows) index[r] += step;
}

std::size_t argmax_chunks(std::size_t V) { return (V + kArgmaxChunk - 1) / kArgmaxChunk; }

std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

// Where each buffer of the sampling path lies in the scratch, in bytes from its start. Every
// per-row buffer has V entries per row, whatever top_k, so one size serves every config.
struct Layout {
  std::size_t keys_in, keys_out, ids_in, ids_out, cumulative, keep, temp, temp_bytes, total;
};

Layout sampling_layout(std::size_t rows, std::size_t V) {
  const int n = static_cast<int>(V);  // ≤ 2^24, checked by the callers
  std::size_t sort_bytes = 0, scan_bytes = 0;
  MINITX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const std::uint32_t*>(nullptr),
                                                    static_cast<std::uint32_t*>(nullptr),
                                                    static_cast<const std::uint32_t*>(nullptr),
                                                    static_cast<std::uint32_t*>(nullptr), n));
  MINITX_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, static_cast<const std::uint64_t*>(nullptr),
                                                  static_cast<std::uint64_t*>(nullptr), n));
  Layout l{};
  std::size_t at = 0;
  const auto take = [&](std::size_t bytes) {
    const std::size_t here = at;
    at += aligned(bytes);
    return here;
  };
  l.keys_in = take(rows * V * sizeof(std::uint32_t));
  l.keys_out = take(rows * V * sizeof(std::uint32_t));
  l.ids_in = take(V * sizeof(std::uint32_t));
  l.ids_out = take(rows * V * sizeof(std::uint32_t));
  l.cumulative = take(rows * V * sizeof(std::uint64_t));
  l.keep = take(rows * sizeof(std::uint32_t));
  l.temp_bytes = std::max(sort_bytes, scan_bytes);
  l.temp = take(l.temp_bytes);
  l.total = at;
  return l;
}

std::size_t greedy_bytes(std::size_t rows, std::size_t V) {
  const std::size_t chunks = argmax_chunks(V);
  return chunks > 1 ? aligned(rows * chunks * sizeof(std::uint64_t)) : 0;
}

void check_shape(std::size_t rows, std::size_t V, const SamplingConfig& config) {
  check_sampling(V, config);
  if (rows > kMaxRows) fail_op("sample_tokens: rows = ", rows, " is more than the ", kMaxRows, " supported");
}

template <class T>
T* at(void* scratch, std::size_t offset) {
  return reinterpret_cast<T*>(static_cast<unsigned char*>(scratch) + offset);
}

}  // namespace

std::size_t sample_scratch_bytes(std::size_t rows, std::size_t V, const SamplingConfig& config) {
  check_shape(rows, V, config);
  if (rows == 0) return 0;
  return sampling_is_greedy(config) ? greedy_bytes(rows, V) : sampling_layout(rows, V).total;
}

void sample_tokens(std::uint32_t* out, const float* logits, std::size_t rows, std::size_t V, std::size_t ld,
                   const SamplingConfig& config, const std::uint64_t* index, void* scratch, cudaStream_t stream) {
  check_shape(rows, V, config);
  if (ld < V) fail_op("sample_tokens: the row length ld = ", ld, " is less than V = ", V);
  if (rows == 0) return;
  if (out == nullptr || logits == nullptr) fail_op("sample_tokens: out and logits must be device pointers, not null");
  const unsigned row_grid = static_cast<unsigned>(rows);
  if (sampling_is_greedy(config)) {
    const std::size_t chunks = argmax_chunks(V);
    if (chunks > 1 && scratch == nullptr)
      fail_op("sample_tokens: scratch is null, but V = ", V, " needs ", greedy_bytes(rows, V), " bytes");
    auto* partial = static_cast<std::uint64_t*>(scratch);
    argmax_partial<<<dim3(detail::grid_for(V, kArgmaxChunk), row_grid), kThreads, 0, stream>>>(partial, out, logits, V, ld);
    MINITX_CUDA_LAUNCHED();
    if (chunks > 1) {
      argmax_finish<<<row_grid, kThreads, 0, stream>>>(out, partial, chunks);
      MINITX_CUDA_LAUNCHED();
    }
    return;
  }
  if (index == nullptr) fail_op("sample_tokens: index is null, but a config that is not greedy draws");
  if (scratch == nullptr) fail_op("sample_tokens: scratch is null; sample_scratch_bytes says how much is needed");
  const Layout l = sampling_layout(rows, V);
  auto* keys_in = at<std::uint32_t>(scratch, l.keys_in);
  auto* keys_out = at<std::uint32_t>(scratch, l.keys_out);
  auto* ids_in = at<std::uint32_t>(scratch, l.ids_in);
  auto* ids_out = at<std::uint32_t>(scratch, l.ids_out);
  auto* cumulative = at<std::uint64_t>(scratch, l.cumulative);
  auto* keep = at<std::uint32_t>(scratch, l.keep);
  void* temp = at<unsigned char>(scratch, l.temp);
  const std::size_t kept = config.top_k > 0 ? std::min(config.top_k, V) : V;
  const int n = static_cast<int>(V), n_kept = static_cast<int>(kept);

  make_sort_keys<<<dim3(detail::grid_for(V, kThreads), row_grid), kThreads, 0, stream>>>(keys_in, ids_in, logits, V, ld);
  MINITX_CUDA_LAUNCHED();
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t temp_bytes = l.temp_bytes;
    MINITX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in + r * V, keys_out + r * V, ids_in,
                                                      ids_out + r * V, n, 0, 32, stream));
  }
  const dim3 kept_grid(detail::grid_for(kept, kThreads), row_grid);
  weigh<<<kept_grid, kThreads, 0, stream>>>(cumulative, ids_out, logits, V, ld, kept, config.temperature);
  MINITX_CUDA_LAUNCHED();
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t temp_bytes = l.temp_bytes;
    std::uint64_t* row_weights = cumulative + r * V;  // scanned in place
    MINITX_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp, temp_bytes, row_weights, row_weights, n_kept, stream));
  }
  const std::uint64_t top_p32 = sampling::top_p_fixed(config.top_p);
  const bool cut = top_p32 < sampling::kTopPOne;
  if (cut) {
    top_p_cut<<<kept_grid, kThreads, 0, stream>>>(keep, cumulative, V, kept, top_p32);
    MINITX_CUDA_LAUNCHED();
  }
  draw<<<kept_grid, kThreads, 0, stream>>>(out, ids_out, cumulative, cut ? keep : nullptr, index, V, kept, config.seed);
  MINITX_CUDA_LAUNCHED();
}

void advance_indices(std::uint64_t* index, std::size_t rows, std::uint64_t step, cudaStream_t stream) {
  if (rows == 0) return;
  if (index == nullptr) fail_op("advance_indices: index is null");
  add_to_indices<<<detail::grid_for(rows, kThreads), kThreads, 0, stream>>>(index, rows, step);
  MINITX_CUDA_LAUNCHED();
}

}  // namespace minitx::cuda
