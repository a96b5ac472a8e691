// The host side of block-sparse attention: the layout's device copy, argument checks that
// name the op, and one Params filled for the kernels of both directions. A CUDA build only.
#if MINITX_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "attention_launch.h"
#include "attention_plan.h"
#include "minitx/backend/cuda/attention.h"
#include "minitx/backend/cuda/check.h"
#include "minitx/core/error.h"

namespace minitx::cuda {
namespace {

template <class T>
T* upload(const std::vector<T>& host) {
  if (host.empty()) return nullptr;
  T* dev = nullptr;
  MINITX_CUDA_CHECK(cudaMalloc(&dev, host.size() * sizeof(T)));
  MINITX_CUDA_CHECK(cudaMemcpy(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return dev;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// The tensor-core kernels are tiled for D 64 and 128; the fp32 checking path takes any multiple
// of 16 up to 128 (small models: configs/tiny.toml's heads are 32 wide).
enum class Path { bf16, f32 };

void check_shape(const char* op, const DeviceLayout& layout, const AttentionShape& s, Path path) {
  const sparse::BlockLayout& l = layout.host();
  if (path == Path::bf16)
    MINITX_CHECK(s.D == 64 || s.D == 128, "{}: head size D must be 64 or 128, not {}", op, s.D);
  else
    MINITX_CHECK(s.D >= 16 && s.D <= attn::kMaxHeadF32 && s.D % 16 == 0,
                 "{}: head size D must be a multiple of 16 from 16 to {}, not {}", op, attn::kMaxHeadF32, s.D);
  MINITX_CHECK(s.B >= 1 && s.H >= 1 && s.T >= 1 && s.B * s.H <= 65535, "{}: bad shape B = {}, H = {}, T = {}", op, s.B,
               s.H, s.T);
  MINITX_CHECK(l.T == s.T, "{}: the layout is for T = {}, the input has T = {}", op, l.T, s.T);
  MINITX_CHECK(l.heads == 1 || l.heads == s.H, "{}: the layout has {} heads, the input {}", op, l.heads, s.H);
}

attn::LayoutArgs layout_args(const DeviceLayout& layout) {
  const sparse::BlockLayout& l = layout.host();
  return {layout.row_ptr(), layout.cols(),   layout.kinds(), layout.t_row_ptr(), layout.t_rows(),
          layout.t_kinds(), layout.global_tokens(), l.block, l.nb, l.heads};
}

attn::Params make_params(const char* op, const QkvView& in, const DeviceLayout& layout, const AttentionShape& s) {
  check_shape(op, layout, s, Path::bf16);
  // cp.async moves 16 bytes: every row start must be 16-byte aligned.
  MINITX_CHECK(aligned16(in.q) && aligned16(in.k) && aligned16(in.v) && in.ld % 8 == 0,
               "{}: q, k, v must be 16-byte aligned with a token stride that is a multiple of 8", op);
  attn::Params p{};
  p.q = in.q;
  p.k = in.k;
  p.v = in.v;
  p.ld_qkv = in.ld;
  p.B = s.B;
  p.T = s.T;
  p.H = s.H;
  p.scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  p.scale_log2 = p.scale * attn::kLog2e;
  p.L = layout_args(layout);
  return p;
}

attn::ParamsF32 make_params_f32(const char* op, const QkvViewF32& in, const DeviceLayout& layout,
                                const AttentionShape& s) {
  check_shape(op, layout, s, Path::f32);
  MINITX_CHECK(in.q && in.k && in.v, "{}: q, k, v must be given", op);
  attn::ParamsF32 p{};
  p.q = in.q;
  p.k = in.k;
  p.v = in.v;
  p.ld_qkv = in.ld;
  p.B = s.B;
  p.T = s.T;
  p.H = s.H;
  p.scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  p.L = layout_args(layout);
  return p;
}

}  // namespace

bf16_bits bf16_from_float(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if (std::isnan(x)) return static_cast<bf16_bits>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<bf16_bits>(u >> 16);
}

float float_from_bf16(bf16_bits x) {
  const std::uint32_t u = static_cast<std::uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// One backward plan on the device; the host copy keeps the counts. With it, the stream dQ runs
// on beside dK/dV, and the two events that fork it from the caller's stream and join it back.
struct DeviceLayout::Plan {
  attn::BackwardPlan host;
  std::int32_t *kv = nullptr, *splits = nullptr, *dq = nullptr;
  attn::SideStream side{};

  explicit Plan(attn::BackwardPlan p) : host(std::move(p)) {
    static_assert(sizeof(attn::KvItem) == 16 && sizeof(attn::KvSplit) == 16, "read as int4 by the kernels");
    try {
      kv = upload_as_int32(host.kv);
      splits = upload_as_int32(host.splits);
      dq = upload(host.dq);
      MINITX_CUDA_CHECK(cudaStreamCreateWithFlags(&side.stream, cudaStreamNonBlocking));
      MINITX_CUDA_CHECK(cudaEventCreateWithFlags(&side.fork, cudaEventDisableTiming));
      MINITX_CUDA_CHECK(cudaEventCreateWithFlags(&side.join, cudaEventDisableTiming));
    } catch (...) {
      release();
      throw;
    }
  }
  ~Plan() { release(); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

 private:
  template <class Rec>
  static std::int32_t* upload_as_int32(const std::vector<Rec>& recs) {
    std::vector<std::int32_t> words(recs.size() * 4);
    if (!recs.empty()) std::memcpy(words.data(), recs.data(), words.size() * sizeof(std::int32_t));
    return upload(words);
  }
  void release() noexcept {
    for (void* p : {static_cast<void*>(kv), static_cast<void*>(splits), static_cast<void*>(dq)})
      if (p) cudaFree(p);
    for (cudaEvent_t e : {side.fork, side.join})
      if (e) cudaEventDestroy(e);
    if (side.stream) cudaStreamDestroy(side.stream);
  }
};

// The plans of one layout: its column statistics per head size (computed once; the chunk rule
// reads only them), and a device plan per (head size, chunk) made on first use. B·H values that
// give the same chunk share a plan: a training run's varying batch adds none.
struct DeviceLayout::Plans {
  attn::ColumnStats stats64, stats128;
  std::mutex mutex;
  std::map<std::pair<std::int32_t, std::int32_t>, std::unique_ptr<Plan>> made;
};

DeviceLayout::DeviceLayout(const sparse::BlockLayout& layout) : host_(layout) {
  sparse::validate(host_);
  static_assert(sizeof(sparse::BlockKind) == 1);
  auto bytes = [](const std::vector<sparse::BlockKind>& kinds) {
    std::vector<std::uint8_t> out(kinds.size());
    for (std::size_t i = 0; i < kinds.size(); ++i) out[i] = static_cast<std::uint8_t>(kinds[i]);
    return out;
  };
  try {
    row_ptr_ = upload(host_.row_ptr);
    cols_ = upload(host_.cols);
    kinds_ = upload(bytes(host_.kinds));
    t_row_ptr_ = upload(host_.t_row_ptr);
    t_rows_ = upload(host_.t_rows);
    t_kinds_ = upload(bytes(host_.t_kinds));
    global_ = upload(host_.global_tokens);
    plans_ = std::make_unique<Plans>();
    plans_->stats64 = attn::column_stats(host_, 64);
    plans_->stats128 = attn::column_stats(host_, 128);
  } catch (...) {
    release();  // the destructor does not run for a constructor that throws
    throw;
  }
}

DeviceLayout::~DeviceLayout() { release(); }

const DeviceLayout::Plan& DeviceLayout::plan(std::int32_t D, std::int32_t bh) const {
  MINITX_CHECK(D == 64 || D == 128, "attention backward: the plans are for head sizes 64 and 128, not {}", D);
  const std::int32_t chunk = attn::plan_chunk(D == 64 ? plans_->stats64 : plans_->stats128, host_.T, D, bh);
  const std::lock_guard<std::mutex> lock(plans_->mutex);
  std::unique_ptr<Plan>& p = plans_->made[{D, chunk}];
  if (!p) p = std::make_unique<Plan>(attn::plan_backward(host_, D, chunk));
  return *p;
}

std::size_t attention_backward_scratch_floats(const DeviceLayout& layout, const AttentionShape& shape) {
  return attn::scratch_floats(layout.plan(shape.D, shape.B * shape.H).host, static_cast<std::size_t>(shape.B),
                              static_cast<std::size_t>(shape.H), static_cast<std::size_t>(shape.T), shape.D);
}

void DeviceLayout::release() noexcept {
  // Never throws (a destructor's job): a failing free would only hide an earlier error.
  for (void* p : {static_cast<void*>(row_ptr_), static_cast<void*>(cols_), static_cast<void*>(kinds_),
                  static_cast<void*>(t_row_ptr_), static_cast<void*>(t_rows_), static_cast<void*>(t_kinds_),
                  static_cast<void*>(global_)})
    if (p) cudaFree(p);
}

void attention_forward(bf16_bits* out, std::int64_t ld_out, float* lse, const QkvView& in, const DeviceLayout& layout,
                       const AttentionShape& shape, cudaStream_t stream) {
  attn::Params p = make_params("attention_forward", in, layout, shape);
  MINITX_CHECK(out && lse && ld_out % 2 == 0 && reinterpret_cast<std::uintptr_t>(out) % 4 == 0,
               "attention_forward: out must be 4-byte aligned with an even token stride, and lse given");
  p.out_w = out;
  p.out = p.out_w;
  p.ld_out = ld_out;
  p.lse = lse;
  MINITX_CUDA_CHECK(attn::forward(p, shape.D, stream));
}

void attention_backward(bf16_bits* dq, bf16_bits* dk, bf16_bits* dv, std::int64_t ld_dqkv, float* scratch,
                        std::size_t scratch_floats, const bf16_bits* dout, std::int64_t ld_dout, const bf16_bits* out,
                        std::int64_t ld_out, const float* lse, const QkvView& in, const DeviceLayout& layout,
                        const AttentionShape& shape, cudaStream_t stream) {
  attn::Params p = make_params("attention_backward", in, layout, shape);
  MINITX_CHECK(aligned16(dout) && ld_dout % 8 == 0,
               "attention_backward: dout must be 16-byte aligned with a token stride that is a multiple of 8");
  MINITX_CHECK(out && ld_out % 2 == 0 && reinterpret_cast<std::uintptr_t>(out) % 4 == 0 && lse && scratch,
               "attention_backward: out must be 4-byte aligned with an even token stride; lse and scratch given");
  const std::size_t need = attention_backward_scratch_floats(layout, shape);
  MINITX_CHECK(scratch_floats >= need && aligned16(scratch),
               "attention_backward: scratch must be 16-byte aligned and hold {} floats for this layout and shape, not {}",
               need, scratch_floats);
  for (const void* g : {static_cast<const void*>(dq), static_cast<const void*>(dk), static_cast<const void*>(dv)})
    MINITX_CHECK(g && reinterpret_cast<std::uintptr_t>(g) % 4 == 0 && ld_dqkv % 2 == 0,
                 "attention_backward: dq, dk, dv must be 4-byte aligned with an even token stride");
  p.out = out;
  p.ld_out = ld_out;
  p.dout = dout;
  p.ld_dout = ld_dout;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.ld_dqkv = ld_dqkv;
  p.lse = const_cast<float*>(lse);  // read only in the backward
  const std::int32_t bh = shape.B * shape.H;
  const DeviceLayout::Plan& plan = layout.plan(shape.D, bh);
  const std::size_t rows = static_cast<std::size_t>(shape.B) * shape.H * shape.T;
  const std::int32_t log2_group = attn::head_group_log2(shape.T, shape.D, bh);
  const std::int64_t items = std::max({plan.host.n_kv, plan.host.n_split, plan.host.n_dq});
  MINITX_CHECK(std::max(items << log2_group, items * bh) <= INT32_MAX,
               "attention_backward: {} work items a head times B·H = {} exceed a grid's {} blocks", items, bh,
               INT32_MAX);
  p.delta = scratch;
  p.plan = {plan.kv,
            plan.splits,
            plan.dq,
            plan.host.n_kv,
            plan.host.n_split,
            plan.host.n_slots,
            plan.host.n_dq,
            log2_group,
            plan.host.kv_direct ? 1 : 0,
            plan.host.dq_step,
            plan.host.n_slots > 0 ? scratch + attn::partials_offset(rows) : nullptr};
  MINITX_CUDA_CHECK(attn::backward(p, shape.D, stream, plan.side));
}

void attention_forward_f32(float* out, std::int64_t ld_out, float* lse, const QkvViewF32& in, const DeviceLayout& layout,
                           const AttentionShape& shape, cudaStream_t stream) {
  attn::ParamsF32 p = make_params_f32("attention_forward_f32", in, layout, shape);
  MINITX_CHECK(out && lse, "attention_forward_f32: out and lse must be given");
  p.out = out;
  p.ld_out = ld_out;
  p.lse = lse;
  MINITX_CUDA_CHECK(attn::forward_f32(p, shape.D, stream));
}

void attention_backward_f32(float* dq, float* dk, float* dv, std::int64_t ld_dqkv, float* delta, const float* dout,
                            std::int64_t ld_dout, const float* out, std::int64_t ld_out, const float* lse,
                            const QkvViewF32& in, const DeviceLayout& layout, const AttentionShape& shape,
                            cudaStream_t stream) {
  attn::ParamsF32 p = make_params_f32("attention_backward_f32", in, layout, shape);
  MINITX_CHECK(dq && dk && dv && delta && dout && out && lse,
               "attention_backward_f32: dq, dk, dv, delta, dout, out and lse must be given");
  p.out = const_cast<float*>(out);  // read only in the backward
  p.ld_out = ld_out;
  p.dout = dout;
  p.ld_dout = ld_dout;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.ld_dqkv = ld_dqkv;
  p.lse = const_cast<float*>(lse);
  p.delta = delta;
  MINITX_CUDA_CHECK(attn::backward_f32(p, shape.D, stream));
}

}  // namespace minitx::cuda
#endif  // MINITX_CUDA
