// What the attention kernels take, and their entry points. Plain C++ (bf16 as 16-bit patterns),
// so the checking host code in attention.cpp is compiled by the C++ compiler (nvcc cannot
// compile fmt's compile-time format checks) and the .cu files hold only kernels and launches.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace minitx::cuda::attn {

// The layout as the kernels read it (device pointers; see sparse::BlockLayout).
struct LayoutArgs {
  const std::int32_t* row_ptr;
  const std::int32_t* cols;
  const std::uint8_t* kinds;
  const std::int32_t* t_row_ptr;
  const std::int32_t* t_rows;
  const std::uint8_t* t_kinds;
  const std::uint8_t* global;  // null when no block is of kind global
  std::int32_t block, nb, heads;
};

// The backward's plan on the device (attention_plan.h) and where its fp32 partials go. The item
// lists are int4-shaped records (KvItem, KvSplit), n_* of them per layout head.
struct BwdPlanArgs {
  const std::int32_t* kv;      // KvItem: kt, j0, j1, slot
  const std::int32_t* splits;  // KvSplit: kt, slot0, n, -
  const std::int32_t* dq;      // query tiles, longest walk first
  std::int32_t n_kv, n_split, n_slots, n_dq;
  std::int32_t log2_group;  // heads a launch group (grid y), side by side in grid x
  std::int32_t kv_direct;   // kv is key tile = item: not read
  std::int32_t dq_step;     // dq is query tile = item (1) or n_dq - 1 - item (-1): not read; 0 read
  float* partials;  // (B·H, n_slots, 2 [dK, dV], kv_k, D)
};

struct Params {
  const std::uint16_t *q, *k, *v;
  std::int64_t ld_qkv;     // elements between consecutive tokens; a batch is T such rows
  const std::uint16_t* out;  // forward output (read by the backward's row sums)
  std::uint16_t* out_w;      // forward output, written
  std::int64_t ld_out;
  const std::uint16_t* dout;
  std::int64_t ld_dout;
  std::uint16_t *dq, *dk, *dv;
  std::int64_t ld_dqkv;
  float* lse;    // (B, H, T), natural log
  float* delta;  // (B, H, T): rowsum(dO ∘ O)
  std::int32_t B, T, H;
  float scale;       // 1 / sqrt(D)
  float scale_log2;  // scale · log2(e): exponentials are exp2 of pre-scaled scores
  LayoutArgs L;
  BwdPlanArgs plan;  // the backward only
};

// The fp32 checking path: the same roles, fp32 tensors.
struct ParamsF32 {
  const float *q, *k, *v;
  std::int64_t ld_qkv;
  float* out;
  std::int64_t ld_out;
  const float* dout;
  std::int64_t ld_dout;
  float *dq, *dk, *dv;
  std::int64_t ld_dqkv;
  float* lse;
  float* delta;
  std::int32_t B, T, H;
  float scale;
  LayoutArgs L;
};

constexpr float kLog2e = 1.4426950408889634f;

// The backward's second stream, where dQ runs beside dK/dV: fork is recorded on the caller's
// stream after delta and waited for there, join recorded there after dQ and waited for by the
// caller's stream (events without timing).
struct SideStream {
  cudaStream_t stream;
  cudaEvent_t fork, join;
};

// Each sets the kernels' shared-memory limits, launches, and returns the first error.
cudaError_t forward(const Params& p, int D, cudaStream_t stream);
cudaError_t backward(const Params& p, int D, cudaStream_t stream, const SideStream& side);
// The fp32 path's head sizes: multiples of 16 up to this.
constexpr int kMaxHeadF32 = 128;
cudaError_t forward_f32(const ParamsF32& p, int D, cudaStream_t stream);
cudaError_t backward_f32(const ParamsF32& p, int D, cudaStream_t stream);

}  // namespace minitx::cuda::attn
