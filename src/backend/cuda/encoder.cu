// Token + position embedding, forward and a backward without atomics.
// B = batch, T_ = time, C = channels, V = vocabulary; N = B·T_ rows.
#include <algorithm>

#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kThreads = 256;

// One thread per (row, channel): consecutive threads read consecutive channels of one row.
template <class T>
__global__ void __launch_bounds__(kThreads) encoder_forward_kernel(T* out, const std::uint32_t* ids, const T* wte, const T* wpe,
                                                                   std::size_t N, std::size_t T_, std::size_t C,
                                                                   std::size_t pos_offset) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= N * C) return;
  const std::size_t n = i / C, c = i % C;
  float x = to_float(wte[static_cast<std::size_t>(ids[n]) * C + c]);
  if (wpe != nullptr) x += to_float(wpe[(n % T_ + pos_offset) * C + c]);
  out[i] = from_float<T>(x);
}

// Block (u, channel tile): vocabulary row rows[u] is written by this block alone, and each
// channel adds its positions in increasing order starting from the gradient already there, the
// order of the CPU's encoder_backward (so fp32 results match it bit for bit).
template <class T>
__global__ void __launch_bounds__(kThreads) dwte_kernel(float* dwte, const T* dout, const std::int32_t* rows,
                                                        const std::int32_t* offsets, const std::int32_t* positions,
                                                        std::size_t C) {
  const std::size_t c = static_cast<std::size_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= C) return;
  const std::size_t u = blockIdx.x;
  float* row = dwte + static_cast<std::size_t>(rows[u]) * C;
  float s = row[c];
  for (std::int32_t k = offsets[u]; k < offsets[u + 1]; ++k)
    s += to_float(dout[static_cast<std::size_t>(positions[k]) * C + c]);
  row[c] = s;
}

// One thread per (t, c), summing over the batch in order.
template <class T>
__global__ void __launch_bounds__(kThreads) dwpe_kernel(float* dwpe, const T* dout, std::size_t B, std::size_t T_,
                                                        std::size_t C, std::size_t pos_offset) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= T_ * C) return;
  const std::size_t t = i / C, c = i % C;
  float* p = dwpe + (t + pos_offset) * C + c;
  float s = *p;
  for (std::size_t b = 0; b < B; ++b) s += to_float(dout[(b * T_ + t) * C + c]);
  *p = s;
}

}  // namespace

template <class T>
void encoder_forward(T* out, const std::uint32_t* ids, const T* wte, const T* wpe, std::size_t B, std::size_t T_,
                     std::size_t C, std::size_t pos_offset, cudaStream_t stream) {
  const std::size_t N = B * T_;
  if (N * C == 0) return;
  encoder_forward_kernel<T><<<detail::grid_for(N * C, kThreads), kThreads, 0, stream>>>(out, ids, wte, wpe, N, T_, C,
                                                                                          pos_offset);
  MINITX_CUDA_LAUNCHED();
}

TokenRows token_rows(const std::uint32_t* ids, std::size_t N, std::size_t V) {
  if (N > 0x7fffffff) fail_op("encoder_backward: ", N, " rows do not fit the int32 positions");
  std::vector<std::int32_t> count(V + 1, 0);
  for (std::size_t n = 0; n < N; ++n) {
    if (ids[n] >= V) fail_op("encoder_backward: token id ", ids[n], " at row ", n, " is outside the vocabulary of ", V);
    ++count[ids[n] + 1];
  }
  TokenRows r;
  r.offsets.push_back(0);
  for (std::size_t v = 0; v < V; ++v) {
    if (count[v + 1] == 0) continue;
    r.rows.push_back(static_cast<std::int32_t>(v));
    r.offsets.push_back(r.offsets.back() + count[v + 1]);
  }
  // Counting sort, stable: the positions of one token stay in increasing order.
  std::vector<std::int32_t> start(V, 0);
  for (std::size_t u = 0; u < r.rows.size(); ++u) start[static_cast<std::size_t>(r.rows[u])] = r.offsets[u];
  r.positions.resize(N);
  for (std::size_t n = 0; n < N; ++n) r.positions[static_cast<std::size_t>(start[ids[n]]++)] = static_cast<std::int32_t>(n);
  return r;
}

template <class T>
void encoder_backward(float* dwte, float* dwpe, const T* dout, const std::int32_t* rows, const std::int32_t* offsets,
                      const std::int32_t* positions, std::size_t num_rows, std::size_t B, std::size_t T_, std::size_t C,
                      std::size_t pos_offset, cudaStream_t stream) {
  if (C == 0) return;
  if (num_rows > 0) {
    if (num_rows > 0x7fffffffu) fail_op("encoder_backward: ", num_rows, " vocabulary rows are too many");
    const dim3 grid(static_cast<unsigned>(num_rows), detail::grid_for(C, kThreads));
    if (grid.y > 65535) fail_op("encoder_backward: C = ", C, " is too wide");
    dwte_kernel<T><<<grid, kThreads, 0, stream>>>(dwte, dout, rows, offsets, positions, C);
    MINITX_CUDA_LAUNCHED();
  }
  if (dwpe != nullptr && T_ * C > 0) {
    dwpe_kernel<T><<<detail::grid_for(T_ * C, kThreads), kThreads, 0, stream>>>(dwpe, dout, B, T_, C, pos_offset);
    MINITX_CUDA_LAUNCHED();
  }
}

#define MINITX_INSTANTIATE(T)                                                                                      \
  template void encoder_forward<T>(T*, const std::uint32_t*, const T*, const T*, std::size_t, std::size_t,         \
                                   std::size_t, std::size_t, cudaStream_t);                                        \
  template void encoder_backward<T>(float*, float*, const T*, const std::int32_t*, const std::int32_t*,            \
                                    const std::int32_t*, std::size_t, std::size_t, std::size_t, std::size_t,       \
                                    std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
