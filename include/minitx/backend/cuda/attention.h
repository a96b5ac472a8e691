// Block-sparse causal attention on the GPU (FlashAttention-2 style): bf16 operands, fp32
// accumulation on tensor cores, online softmax, no T x T matrix; each query tile visits only
// the kept key blocks of its layout. The backward is deterministic (no atomics): dK/dV per key
// tile over the query blocks of the layout's transpose (long columns cut into chunks whose fp32
// partials are added in chunk order), dQ per query tile over its key blocks, each summed in an
// order fixed by the layout alone, so two runs, on any GPU, give the same bits.
//
// Shape letters: B batch, T time, H heads, D head size (64 or 128). Operands are taken as base
// pointers and a token stride, so the (B, T, 3C) qkv buffer of a transformer block is used in
// place: head h of token t of batch b is at base + (b·T + t)·ld + h·D.
// bf16 values travel as their 16-bit patterns (std::uint16_t), so this header needs no CUDA
// types; use bf16_from_float / float_from_bf16 on the host.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "minitx/sparse/layout.h"

typedef struct CUstream_st* cudaStream_t;

namespace minitx::cuda {

using bf16_bits = std::uint16_t;

// Round to nearest even (NaN stays NaN), and the exact widening.
bf16_bits bf16_from_float(float x);
float float_from_bf16(bf16_bits x);

// A layout copied to the device once, with the backward's work plans (src/backend/cuda/
// attention_plan.h: which key tiles are split, the launch order), built on the host the first
// time a head size and B·H ask for one (attention_backward_scratch_floats does, before any
// timed or captured call) and kept for the layout's life; kernels read both from there.
class DeviceLayout {
 public:
  explicit DeviceLayout(const sparse::BlockLayout& layout);
  ~DeviceLayout();
  DeviceLayout(const DeviceLayout&) = delete;
  DeviceLayout& operator=(const DeviceLayout&) = delete;

  const sparse::BlockLayout& host() const { return host_; }
  const std::int32_t* row_ptr() const { return row_ptr_; }
  const std::int32_t* cols() const { return cols_; }
  const std::uint8_t* kinds() const { return kinds_; }
  const std::int32_t* t_row_ptr() const { return t_row_ptr_; }
  const std::int32_t* t_rows() const { return t_rows_; }
  const std::uint8_t* t_kinds() const { return t_kinds_; }
  const std::uint8_t* global_tokens() const { return global_; }  // null when the layout has none

  struct Plan;   // the device copy of one plan (attention.cpp)
  struct Plans;  // the plans made so far, by head size and chunk
  // The plan for a backward of bh = B·H heads of head size D (64 or 128); thread-safe. A plan
  // owns the side stream its backward's dQ runs on, so two backward calls on one layout must not
  // be issued from two threads at once.
  const Plan& plan(std::int32_t D, std::int32_t bh) const;

 private:
  void release() noexcept;
  std::unique_ptr<Plans> plans_;
  sparse::BlockLayout host_;
  std::int32_t *row_ptr_ = nullptr, *cols_ = nullptr, *t_row_ptr_ = nullptr, *t_rows_ = nullptr;
  std::uint8_t *kinds_ = nullptr, *t_kinds_ = nullptr, *global_ = nullptr;
};

// Where q, k and v live: three base pointers sharing one token stride (elements).
struct QkvView {
  const bf16_bits *q, *k, *v;
  std::int64_t ld;
};
// The views of a packed (B, T, 3C) buffer: q at column 0, k at C, v at 2C.
inline QkvView qkv_view(const bf16_bits* qkv, std::int64_t C) { return {qkv, qkv + C, qkv + 2 * C, 3 * C}; }

struct AttentionShape {
  std::int32_t B, T, H, D;
};

// out: token stride ld_out; lse (B, H, T) fp32: the natural log of Σ_k exp(q·k/√D) over the
// allowed keys of each row, kept for the backward.
void attention_forward(bf16_bits* out, std::int64_t ld_out, float* lse, const QkvView& in, const DeviceLayout& layout,
                       const AttentionShape& shape, cudaStream_t stream = nullptr);

// The fp32 scratch attention_backward needs, in floats: B·H·T for rowsum(dO ∘ O), then the
// partials of the key columns the layout's plan splits (B·H × the plan's slots × 2·64·D; none
// for layouts whose columns are all short, such as local windows). The caller allocates it once
// per (layout, B, H, D) and may reuse it for every call with those; CudaBlockOps keeps one
// buffer, grown when a new layout needs more. The second form builds the plan on the host, for
// memory estimates made before any device allocation.
std::size_t attention_backward_scratch_floats(const DeviceLayout& layout, const AttentionShape& shape);
std::size_t attention_backward_scratch_floats(const sparse::BlockLayout& layout, const AttentionShape& shape);

// dq, dk, dv (overwritten, not accumulated) share the token stride ld_dqkv, like the packed
// (B, T, 3C) gradient buffer; out and lse are the forward's; scratch holds scratch_floats
// floats, at least attention_backward_scratch_floats(layout, shape) (a shorter one is an error).
// dQ runs on a stream of the layout's, forked from `stream` and joined back to it with events:
// work queued on `stream` afterwards sees all three gradients (stream capture works the same).
void attention_backward(bf16_bits* dq, bf16_bits* dk, bf16_bits* dv, std::int64_t ld_dqkv, float* scratch,
                        std::size_t scratch_floats, const bf16_bits* dout, std::int64_t ld_dout, const bf16_bits* out,
                        std::int64_t ld_out, const float* lse, const QkvView& in, const DeviceLayout& layout, const AttentionShape& shape,
                        cudaStream_t stream = nullptr);

// The fp32 checking path (plain FMA, one thread per row; slow): the same contract with fp32
// tensors, any 4-byte alignment. For testing the layout handling apart from the tensor cores.
struct QkvViewF32 {
  const float *q, *k, *v;
  std::int64_t ld;
};
inline QkvViewF32 qkv_view(const float* qkv, std::int64_t C) { return {qkv, qkv + C, qkv + 2 * C, 3 * C}; }

void attention_forward_f32(float* out, std::int64_t ld_out, float* lse, const QkvViewF32& in, const DeviceLayout& layout,
                           const AttentionShape& shape, cudaStream_t stream = nullptr);
void attention_backward_f32(float* dq, float* dk, float* dv, std::int64_t ld_dqkv, float* delta, const float* dout,
                            std::int64_t ld_dout, const float* out, std::int64_t ld_out, const float* lse,
                            const QkvViewF32& in, const DeviceLayout& layout, const AttentionShape& shape,
                            cudaStream_t stream = nullptr);

}  // namespace minitx::cuda
