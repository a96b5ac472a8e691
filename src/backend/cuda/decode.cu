// The decode step as one persistent kernel (see decode.h), and the small kernels around it.
//
// A matrix-vector product of batch 1 reads every weight once and does two flops with it, so it
// is bound by memory, or, for the small matrices of small models, by latency. A row belongs to
// one warp, or for long rows to W warps of one block that each take a W-th of it and add their
// sums in warp order. Each lane keeps kSlots 16-byte loads in flight (8 bf16, 4 floats, 16 q8_0
// weights or one whole q4_0 block per load), over one row or several, and multiplies them by the
// input vector that its block built in shared memory from what the previous phase left (a
// LayerNorm of the residual stream, the attention's partials): a few kilobytes from L2 per block.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "activation.cuh"
#include "common.cuh"
#include "minitx/backend/cuda/decode.h"
#include "minitx/infer/sampling_math.h"
#include "minitx/sparse/layout.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;
using detail::warp_max;
using detail::warp_sum;

// One block of 16 warps per SM: a block's shared input vector serves 16 warps, and the grid,
// one block per SM, is what the phase counters wait for. __launch_bounds__ caps the registers at
// 128 so that the block fits.
constexpr int kWarps = 16;
constexpr int kThreads = kWarps * 32;
// 16-byte weight loads a lane issues before it uses the first: enough bytes in flight over the
// grid to cover the memory latency at full bandwidth (132 SMs × 512 lanes × 8 × 16 B ≈ 8.6 MB).
constexpr int kSlots = 8;
// A row whose loads would take more than this many slots of each lane is split over W warps.
constexpr std::uint32_t kMaxUnitsPerLane = 4;
static_assert(kSlots % kMaxUnitsPerLane == 0);

std::uint32_t multiprocessors() {
  static const std::uint32_t sms = [] {
    int device = 0, count = 0;
    MINITX_CUDA_CHECK(cudaGetDevice(&device));
    MINITX_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return static_cast<std::uint32_t>(count);
  }();
  return sms;
}

__device__ __forceinline__ float fp16_bits(std::uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Activations written by other blocks of the same kernel are read at L2 (ld.global.cg): an SM's
// L1 may hold an older copy of the line, and other SMs' stores do not update it.
__device__ __forceinline__ float ld_act(const float* p) { return __ldcg(p); }
__device__ __forceinline__ float4 ld_act4(const float* p) { return __ldcg(reinterpret_cast<const float4*>(p)); }

// ---- phases ------------------------------------------------------------------------------------
// Phase k's counter counts the blocks that have finished phase k. A block waits for the counter
// of the phase before its own to reach the grid size; as every block finishes its phases in
// order, that also covers every earlier phase. A block with nothing to do in a phase arrives at
// once, without waiting. The release/acquire pair makes the writes of a phase visible to the
// readers of the next.
struct Phases {
  std::uint32_t* counters;  // null: a standalone kernel, whose only phase needs no waiting
  std::uint64_t* times;
  std::uint32_t last;  // the step's final phase
  std::uint32_t k = 0;
  bool last_block = false;  // thread 0 of the block that arrived last at the final phase

  __device__ void stamp(std::uint32_t at) const {
    if (times != nullptr) {
      std::uint64_t t;
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
      times[at] = t;
    }
  }
  __device__ void wait() const {
    if (threadIdx.x == 0 && counters != nullptr && k > 0) {
      std::uint32_t seen;
      do {
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(counters + k - 1) : "memory");
      } while (seen < gridDim.x);
    }
    if (threadIdx.x == 0 && blockIdx.x == 0) stamp(k);
    __syncthreads();
  }
  // The end of this block's part of phase k. The block that arrives last at the step's final
  // phase zeroes the counters for the next step: every block has then done all its waiting.
  __device__ void done() {
    __syncthreads();  // every thread's writes of the phase precede the release below
    if (threadIdx.x == 0 && counters != nullptr) {
      std::uint32_t before;
      // The final arrival also acquires: the last block then reads what every block left.
      if (k == last)
        asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(counters + k) : "memory");
      else
        asm volatile("atom.release.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(counters + k) : "memory");
      if (k == last && before + 1 == gridDim.x) {
        last_block = true;
        for (std::uint32_t i = 0; i <= k; ++i) counters[i] = 0;
        stamp(k + 1);
      }
    }
    ++k;
  }
};

// ---- weights -----------------------------------------------------------------------------------

// Element (r, c) of a matrix in any format: the embedding lookup, C values per token.
__device__ __forceinline__ float element(const DeviceMatrix& w, std::uint32_t r, std::uint32_t c) {
  const std::size_t i = static_cast<std::size_t>(r) * w.cols + c;
  switch (w.format) {
    case WeightFormat::float32: return static_cast<const float*>(w.data)[i];
    case WeightFormat::bfloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(w.data)[i]);
    case WeightFormat::q8_0: return fp16_bits(w.scales[i / 32]) * static_cast<float>(static_cast<const std::int8_t*>(w.data)[i]);
    case WeightFormat::q4_0: break;
  }
  const std::uint8_t byte = static_cast<const std::uint8_t*>(w.data)[i / 32 * 16 + i % 16];
  const int nibble = i % 32 < 16 ? byte & 0x0F : byte >> 4;
  return fp16_bits(w.scales[i / 32]) * static_cast<float>(nibble - 8);
}

// A row is read in units of 16 bytes (one vector load): 4 floats, 8 bf16, 16 q8_0 weights (half a
// block) or 32 q4_0 weights (a whole block). unit_scale is the unit's block scale (1 for dense
// formats), loaded beside the unit; unit_dot multiplies the unit by the input values under it.
template <WeightFormat F>
constexpr std::uint32_t kUnitCols = F == WeightFormat::float32 ? 4 : F == WeightFormat::bfloat16 ? 8
                                    : F == WeightFormat::q8_0 ? 16 : 32;

template <WeightFormat F>
__device__ __forceinline__ uint4 load_unit(const DeviceMatrix& w, std::uint32_t r, std::uint32_t i) {
  const std::size_t row_bytes = std::size_t{w.cols} * 16 / kUnitCols<F>;
  return __ldg(reinterpret_cast<const uint4*>(static_cast<const unsigned char*>(w.data) + r * row_bytes) + i);
}

template <WeightFormat F>
__device__ __forceinline__ float unit_scale(const DeviceMatrix& w, std::uint32_t r, std::uint32_t i) {
  if constexpr (F == WeightFormat::q8_0) return fp16_bits(__ldg(w.scales + std::size_t{r} * (w.cols / 32) + i / 2));
  else if constexpr (F == WeightFormat::q4_0) return fp16_bits(__ldg(w.scales + std::size_t{r} * (w.cols / 32) + i));
  else return 1.0f;
}

template <WeightFormat F>
__device__ __forceinline__ float unit_dot(const uint4& v, float scale, const float* x) {
  if constexpr (F == WeightFormat::bfloat16) {
    const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    const float4 x0 = *reinterpret_cast<const float4*>(x);
    const float4 x1 = *reinterpret_cast<const float4*>(x + 4);
    const float2 w0 = __bfloat1622float2(h[0]), w1 = __bfloat1622float2(h[1]), w2 = __bfloat1622float2(h[2]),
                 w3 = __bfloat1622float2(h[3]);
    return w0.x * x0.x + w0.y * x0.y + w1.x * x0.z + w1.y * x0.w + w2.x * x1.x + w2.y * x1.y + w3.x * x1.z + w3.y * x1.w;
  } else if constexpr (F == WeightFormat::float32) {
    const float4 xv = *reinterpret_cast<const float4*>(x);
    return __uint_as_float(v.x) * xv.x + __uint_as_float(v.y) * xv.y + __uint_as_float(v.z) * xv.z +
           __uint_as_float(v.w) * xv.w;
  } else {
    // The integers are taken from the four words with shifts: addressing the bytes of a register
    // would put the unit in local memory.
    const std::uint32_t words[4] = {v.x, v.y, v.z, v.w};
    float t = 0.0f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float4 lo = *reinterpret_cast<const float4*>(x + 4 * w);
      const float xl[4] = {lo.x, lo.y, lo.z, lo.w};
      if constexpr (F == WeightFormat::q8_0) {
#pragma unroll
        for (int b = 0; b < 4; ++b)
          t += static_cast<float>(static_cast<std::int8_t>((words[w] >> (8 * b)) & 0xFFu)) * xl[b];
      } else {
        // Byte j of a q4_0 block holds element j (low nibble) and j + 16 (high).
        const float4 hi = *reinterpret_cast<const float4*>(x + 16 + 4 * w);
        const float xh[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const std::uint32_t byte = (words[w] >> (8 * b)) & 0xFFu;
          t += static_cast<float>(static_cast<int>(byte & 0x0Fu) - 8) * xl[b] +
               static_cast<float>(static_cast<int>(byte >> 4) - 8) * xh[b];
        }
      }
    }
    return scale * t;
  }
}

// ---- a phase's input vector --------------------------------------------------------------------

// Block-wide sum in a fixed order: butterflies inside each warp, then every thread adds the warps'
// results in warp order (so all threads hold the same value).
__device__ float block_sum(float v, float* red) {
  v = warp_sum(v);
  __syncthreads();  // `red` may still be read from the previous reduction
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < kWarps; ++w) r += red[w];
  return r;
}

// xs (n values, in place) = LayerNorm(xs)·w + b, with the mean and variance in a fixed order.
__device__ void layernorm_in_place(float* xs, std::uint32_t n, const float* w, const float* b, float eps, float* red) {
  float s = 0.0f;
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) s += xs[i];
  const float mean = block_sum(s, red) / static_cast<float>(n);
  float v = 0.0f;
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = xs[i] - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_sum(v, red) / static_cast<float>(n) + eps);
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x)
    xs[i] = (xs[i] - mean) * rstd * w[i] + (b != nullptr ? b[i] : 0.0f);
}

struct Partials {
  float *m, *l, *acc;  // (heads, splits), (heads, splits), (heads, splits, head_dim)
  std::uint32_t heads, head_dim, splits;
};

__host__ __device__ inline Partials partials_in(float* base, std::uint32_t heads, std::uint32_t capacity,
                                               std::uint32_t head_dim) {
  const std::uint32_t splits = (capacity + kAttentionChunk - 1) / kAttentionChunk;
  return {base, base + heads * splits, base + 2 * heads * splits, heads, head_dim, splits};
}

// Floats of one sequence's partials: a batch's sequences keep theirs one after the other.
__host__ __device__ inline std::size_t partials_stride(const Partials& a) {
  return std::size_t{a.heads} * a.splits * (a.head_dim + 2);
}

// The attention output of one token from the partials of splits [0, pos / kAttentionChunk]: per
// head, each split's weight exp(m_s - max)/Σ, computed once per block into `scale` (heads × used
// floats of shared memory), then every output element adds its splits' sums in split order.
__device__ __forceinline__ void combine_attention(float* xs, float* scale, const Partials& a, std::uint32_t pos) {
  const std::uint32_t used = pos / kAttentionChunk + 1, C = a.heads * a.head_dim;
  // The first kCombineSplits partial sums of the thread's first two elements are loaded before
  // the weights are known, so that both round trips to L2 overlap.
  constexpr std::uint32_t kCombineSplits = 4;
  float pre[2][kCombineSplits];
#pragma unroll
  for (std::uint32_t e = 0; e < 2; ++e) {
    const std::uint32_t i = threadIdx.x + e * kThreads;
    const float* acc = a.acc + std::size_t{i / a.head_dim} * a.splits * a.head_dim + i % a.head_dim;
#pragma unroll
    for (std::uint32_t s = 0; s < kCombineSplits; ++s)
      if (i < C && s < used) pre[e][s] = ld_act(acc + std::size_t{s} * a.head_dim);
  }
  // A warp per head, a lane per split (and every 32nd after it): each split's m and l are read
  // once, the maximum and the denominator are butterflies, so one round trip to L2 serves all.
  const std::uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (std::uint32_t h = warp; h < a.heads; h += kWarps) {
    const float* m = a.m + std::size_t{h} * a.splits;
    const float* l = a.l + std::size_t{h} * a.splits;
    const bool first = lane < used;
    const float m0 = first ? ld_act(m + lane) : -INFINITY, l0 = first ? ld_act(l + lane) : 0.0f;
    float top = m0;
    for (std::uint32_t s = lane + 32; s < used; s += 32) top = fmaxf(top, ld_act(m + s));
    top = warp_max(top);
    const float e0 = first ? expf(m0 - top) : 0.0f;
    float den = e0 * l0;
    for (std::uint32_t s = lane + 32; s < used; s += 32) den += expf(ld_act(m + s) - top) * ld_act(l + s);
    den = warp_sum(den);
    if (first) scale[h * used + lane] = e0 / den;
    for (std::uint32_t s = lane + 32; s < used; s += 32) scale[h * used + s] = expf(ld_act(m + s) - top) / den;
  }
  __syncthreads();
  for (std::uint32_t i = threadIdx.x, e = 0; i < C; i += blockDim.x, ++e) {
    const std::uint32_t h = i / a.head_dim, d = i % a.head_dim;
    const float* acc = a.acc + std::size_t{h} * a.splits * a.head_dim + d;
    const float* w = scale + h * used;
    float num = 0.0f;
    std::uint32_t s = 0;
    if (e < 2) {
#pragma unroll
      for (std::uint32_t t = 0; t < kCombineSplits; ++t)
        if (t < used) num += w[t] * (e == 0 ? pre[0][t] : pre[1][t]);
      s = kCombineSplits;
    }
#pragma unroll 8
    for (; s < used; ++s) num += w[s] * ld_act(acc + std::size_t{s} * a.head_dim);
    xs[i] = num;
  }
}

enum class In : std::uint8_t { vector, norm, embed_norm, attention };

struct Input {
  In kind = In::vector;
  const float* in = nullptr;  // vector and norm
  const float *norm_w = nullptr, *norm_b = nullptr;
  float eps = 0.0f;
  DeviceMatrix wte, wpe;  // embed_norm: wte[token] (+ wpe[pos + pos_offset])
  std::uint32_t token = 0, pos = 0, pos_offset = 0;
  float* embed_out = nullptr;  // embed_norm: block 0 stores the embedding, the residual stream
  Partials partials{};         // attention; its splits [0, pos / kAttentionChunk] are combined
  // Batched steps: every sequence's cursor (the block's copy in shared memory; token and pos
  // above serve batch 1) and the floats from one sequence's partials to the next's.
  const DecodeCursor* cursors = nullptr;
  std::size_t partials_stride = 0;
};

// Sequence s's attention partials: the same layout, `stride` floats further on.
__device__ __forceinline__ Partials partials_of(Partials a, std::size_t stride, std::uint32_t s) {
  a.m += s * stride;
  a.l += s * stride;
  a.acc += s * stride;
  return a;
}

// Builds the phase's input vectors in xs: n values for each of `count` sequences from `first`
// on, sequence first + c's at xs + c·n; `extra` is shared memory past them. Each vector is built
// as batch 1 builds its one.
template <bool kBatched>
__device__ __forceinline__ void build_input(float* xs, float* extra, std::uint32_t n, const Input& in, float* red,
                                            std::uint32_t first, std::uint32_t count) {
#pragma unroll 1
  for (std::uint32_t c = 0; c < count; ++c) {
    const std::uint32_t s = first + c;
    const std::uint32_t token = kBatched ? in.cursors[s].token : in.token, pos = kBatched ? in.cursors[s].pos : in.pos;
    float* x = xs + c * n;
    switch (in.kind) {
      case In::attention:
        if (c > 0) __syncthreads();  // the previous sequence's weights in `extra` are read
        combine_attention(x, extra, partials_of(in.partials, in.partials_stride, s), pos);
        break;
      case In::embed_norm: {
        const std::uint32_t row = pos + in.pos_offset;
        for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
          float e = element(in.wte, token, i);
          if (in.wpe.data != nullptr) e += element(in.wpe, row, i);
          x[i] = e;
          if (blockIdx.x == 0) in.embed_out[std::size_t{s} * n + i] = e;
        }
        break;
      }
      default:
        for (std::uint32_t i = 4 * threadIdx.x; i < n; i += 4 * blockDim.x)
          *reinterpret_cast<float4*>(x + i) = ld_act4(in.in + std::size_t{s} * n + i);
    }
  }
  if (in.kind == In::norm || in.kind == In::embed_norm) {
    __syncthreads();
#pragma unroll 1
    for (std::uint32_t c = 0; c < count; ++c) layernorm_in_place(xs + c * n, n, in.norm_w, in.norm_b, in.eps, red);
  }
  __syncthreads();
}

// The cursor after a token is drawn: the token goes into the ring of the newest draws and is fed
// next, at pos + pos_step. `now` is the cursor as it stood (the step kernel's copy of it).
__device__ __forceinline__ void advance_cursor(DecodeCursor* cursor, const DecodeCursor& now, std::uint32_t token,
                                               std::uint32_t* history, std::uint32_t history_len, std::uint32_t pos_step) {
  history[now.draw % history_len] = token;
  cursor->token = token;
  cursor->pos = now.pos + pos_step;
  cursor->draw = now.draw + 1;
}

// ---- the matrix-vector phase -----------------------------------------------------------------

// out[r] = residual[r] + act(W[r]·x + bias[r]) (residual, bias, act optional).
// With `best`, the block also takes the largest (order key, lowest row) of its outputs, as the
// sampler's greedy pick packs them (sampling.cu), and folds it into *best with atomicMax: a
// maximum is the same whatever order the blocks arrive in.
struct Epilogue {
  float* out;
  const float* bias = nullptr;
  const float* residual = nullptr;
  bool has_act = false;
  Activation act = Activation::gelu_tanh;
  std::uint64_t* best = nullptr;
  std::uint32_t candidates = 0;  // rows below this compete for *best
};

__device__ __forceinline__ std::uint64_t pack_best(float logit, std::uint32_t row) {
  return (static_cast<std::uint64_t>(::minitx::sampling::order_key(logit)) << 32) | (0xffffffffu - row);
}

__device__ void fold_best(std::uint64_t mine, std::uint64_t* best) {
  __shared__ std::uint64_t warp_best[kWarps];
  for (int offset = 16; offset > 0; offset >>= 1) {
    const std::uint64_t other = __shfl_xor_sync(0xffffffffu, mine, offset);
    mine = other > mine ? other : mine;
  }
  if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = mine;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) mine = warp_best[w] > mine ? warp_best[w] : mine;
    atomicMax(reinterpret_cast<unsigned long long*>(best), static_cast<unsigned long long>(mine));
  }
}

// How a matrix's rows are shared out. W warps own a row (a W-th of its units each); a group of W
// warps takes rows group, group + groups, ...; a lane loads PER units of each of R = kSlots/PER
// rows at once. W and PER follow from the shape alone, so the order of every sum does too.
struct Share {
  std::uint32_t units, W, slice, per, groups, group, part;
  __device__ Share(const DeviceMatrix& w, std::uint32_t unit_cols) {
    units = w.cols / unit_cols;
    W = 1;
    while (W < kWarps && (units + 32 * W - 1) / (32 * W) > kMaxUnitsPerLane) W *= 2;
    slice = (units + W - 1) / W;
    per = (slice + 31) / 32;
    const std::uint32_t warp = threadIdx.x / 32, per_block = kWarps / W;
    groups = gridDim.x * per_block;
    group = blockIdx.x * per_block + warp / W;
    part = warp % W;
  }
  __device__ bool block_has_rows(std::uint32_t rows) const { return blockIdx.x * (kWarps / W) < rows; }
  // Row rr of batch `it`, when every batch takes R rows of the group.
  __device__ std::uint32_t row(std::uint32_t it, std::uint32_t rr, std::uint32_t R) const {
    return group + (it * R + rr) * groups;
  }
  __device__ std::uint32_t unit(std::uint32_t k) const { return part * slice + threadIdx.x % 32 + 32 * k; }
  __device__ bool unit_ok(std::uint32_t k) const { return threadIdx.x % 32 + 32 * k < slice && unit(k) < units; }
};

// The sequences of a step: how many, and how many of their input vectors shared memory holds at
// once (a pass; a step whose inputs do not all fit reads its weights once per pass).
struct Batch {
  std::uint32_t size = 1, resident = 1;
};

// Static shared memory of the matrix-vector phases, declared once (matvec_phase) for all formats.
// red: batch 1, the W warps' sums; batched, each warp's sums of (column, row of its load batch);
// both, LayerNorm's block sums. column_best: batched greedy, each sequence's best of the block.
struct MatvecScratch {
  float* red;
  std::uint64_t* column_best;
};

// W·x for the block's rows, from the input the block builds after waiting for the previous phase.
// The first batch of weights and the biases under it are loaded before the wait: they do not
// depend on the previous phase; the residuals are loaded beside the input, after it. Lane rr
// finishes row rr of each batch, so a row's epilogue operands are in place before its sum is.
//
// Batched (kBatched): each sequence is a column, x_s → W·x_s, and the weights a lane holds serve
// every column of the pass before the next are loaded. A column's sum is the batch-1 sum of that
// sequence, operation for operation: the same units in the same order, the same butterfly, the
// same W-warp order, the same epilogue. The warp's sums go through shared memory (R rows × the
// pass's columns per warp), and its lanes then finish them (row, column) by (row, column), loading
// the bias and residual there; the columns are a runtime loop, so the registers do not grow with
// the batch.
template <WeightFormat F, std::uint32_t PER, bool kBatched>
__device__ __forceinline__ void matvec(const DeviceMatrix& w, const Share& sh, const Input& in, const Epilogue& e,
                                    const Batch& batch, const MatvecScratch& scratch, Phases& ph, float* sm) {
  // Batched, half the loads in flight: each load now serves several columns' arithmetic, and the
  // columns' bookkeeping needs the registers.
  constexpr std::uint32_t kLoads = kBatched ? kSlots / 2 : kSlots;
  constexpr std::uint32_t R = kLoads / PER;
  if (!sh.block_has_rows(w.rows)) {
    ph.done();
    return;
  }
  constexpr std::uint32_t kColumns = kBatched ? kMaxDecodeBatch : 1;
  float* red = scratch.red;
  std::uint64_t* column_best = scratch.column_best;
  const std::uint32_t sequences = kBatched ? batch.size : 1, resident = kBatched ? batch.resident : 1;
  const std::uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::uint32_t iters = ((w.rows + sh.groups - 1) / sh.groups + R - 1) / R;
  uint4 u[kLoads];
  float scale[kLoads];
  float bias = 0.0f, residual = 0.0f;
  const auto load = [&](std::uint32_t it) {
#pragma unroll
    for (std::uint32_t rr = 0; rr < R; ++rr) {
      const std::uint32_t r = sh.row(it, rr, R);
#pragma unroll
      for (std::uint32_t k = 0; k < PER; ++k)
        if (r < w.rows && sh.unit_ok(k)) {
          u[rr * PER + k] = load_unit<F>(w, r, sh.unit(k));
          scale[rr * PER + k] = unit_scale<F>(w, r, sh.unit(k));
        }
    }
    const std::uint32_t mine = sh.row(it, lane, R);
    if (!kBatched && e.bias != nullptr && lane < R && mine < w.rows) bias = __ldg(e.bias + mine);
  };
  const auto load_residual = [&](std::uint32_t it) {
    const std::uint32_t mine = sh.row(it, lane, R);
    if (!kBatched && e.residual != nullptr && lane < R && mine < w.rows) residual = ld_act(e.residual + mine);
  };
  std::uint64_t best = 0;
  const auto finish = [&](std::uint32_t r, float s) {
    s += bias;
    if (e.has_act) s = detail::act_forward(s, e.act);
    if (e.residual != nullptr) s = residual + s;
    e.out[r] = s;
    if (e.best != nullptr && r < e.candidates) {
      const std::uint64_t candidate = pack_best(s, r);
      best = candidate > best ? candidate : best;
    }
  };
  // Batched: one sequence's output, as `finish` computes batch 1's, with its operands loaded here.
  const auto finish_column = [&](std::uint32_t s, std::uint32_t r, float v) {
    v += e.bias != nullptr ? __ldg(e.bias + r) : 0.0f;
    if (e.has_act) v = detail::act_forward(v, e.act);
    if (e.residual != nullptr) v = ld_act(e.residual + std::size_t{s} * w.rows + r) + v;
    e.out[std::size_t{s} * w.rows + r] = v;
    if (e.best != nullptr && r < e.candidates) atomicMax(reinterpret_cast<unsigned long long*>(column_best + s),
                                                         static_cast<unsigned long long>(pack_best(v, r)));
  };
  if (kBatched && e.best != nullptr && threadIdx.x < sequences) column_best[threadIdx.x] = 0;
  load(0);
  ph.wait();
  for (std::uint32_t first = 0; first < sequences; first += resident) {
    const std::uint32_t count = min(resident, sequences - first);
    if (first == 0) load_residual(0);
    else __syncthreads();  // every warp is done with the previous pass's inputs
    build_input<kBatched>(sm, sm + resident * w.cols, w.cols, in, red, first, count);
    for (std::uint32_t it = 0; it < iters; ++it) {
      if (it > 0 || first > 0) {  // a later pass reads the weights again
        load(it);
        load_residual(it);
      }
      if constexpr (kBatched) {
        // Row by row, each row's weights used for every column (a runtime loop, not unrolled): the
        // registers hold the weights, not the columns, and a row's die once its columns are done.
#pragma unroll
        for (std::uint32_t rr = 0; rr < R; ++rr) {
#pragma unroll 1
          for (std::uint32_t c = 0; c < count; ++c) {
            const float* x = sm + c * w.cols;
            float t = 0.0f;
#pragma unroll
            for (std::uint32_t k = 0; k < PER; ++k)
              if (sh.row(it, rr, R) < w.rows && sh.unit_ok(k))
                t += unit_dot<F>(u[rr * PER + k], scale[rr * PER + k], x + sh.unit(k) * kUnitCols<F>);
            t = warp_sum(t);
            if (lane == 0) red[(warp * kColumns + c) * kSlots + rr] = t;
          }
        }
        if (sh.W == 1) __syncwarp();
        else __syncthreads();
        // The W warps' sums of each (row, column) in warp order, by the group's first warp.
        if (sh.part == 0) {
#pragma unroll 1
          for (std::uint32_t i = lane; i < R * count; i += 32) {
            const std::uint32_t rr = i % R, c = i / R, r = sh.row(it, rr, R);
            if (r >= w.rows) continue;
            float s = red[(warp * kColumns + c) * kSlots + rr];
            for (std::uint32_t q = 1; q < sh.W; ++q) s += red[((warp + q) * kColumns + c) * kSlots + rr];
            finish_column(first + c, r, s);
          }
        }
        if (sh.W == 1) __syncwarp();
        else __syncthreads();
        continue;
      }
      // Each row's units in unit order, then the warp's butterfly; lane rr keeps row rr's sum.
      float mine = 0.0f;
#pragma unroll
      for (std::uint32_t rr = 0; rr < R; ++rr) {
        float t = 0.0f;
#pragma unroll
        for (std::uint32_t k = 0; k < PER; ++k)
          if (sh.row(it, rr, R) < w.rows && sh.unit_ok(k))
            t += unit_dot<F>(u[rr * PER + k], scale[rr * PER + k], sm + sh.unit(k) * kUnitCols<F>);
        t = warp_sum(t);
        if (lane == rr) mine = t;
      }
      const std::uint32_t r = sh.row(it, lane, R);
      if (sh.W == 1) {
        if (lane < R && r < w.rows) finish(r, mine);
      } else {
        // The W warps' sums in warp order, by the group's first warp.
        if (lane < R) red[warp * kSlots + lane] = mine;
        __syncthreads();
        if (sh.part == 0 && lane < R && r < w.rows) {
          float s = red[warp * kSlots + lane];
          for (std::uint32_t q = 1; q < sh.W; ++q) s += red[(warp + q) * kSlots + lane];
          finish(r, s);
        }
        __syncthreads();
      }
    }
  }
  if constexpr (kBatched) {
    if (e.best != nullptr) {
      __syncthreads();
      if (threadIdx.x < sequences && column_best[threadIdx.x] != 0)
        atomicMax(reinterpret_cast<unsigned long long*>(e.best + threadIdx.x),
                  static_cast<unsigned long long>(column_best[threadIdx.x]));
    }
  } else if (e.best != nullptr) {
    fold_best(best, e.best);
  }
  ph.done();
}

template <WeightFormat F, bool kBatched>
__device__ __forceinline__ void matvec_format(const DeviceMatrix& w, const Input& in, const Epilogue& e,
                                              const Batch& batch, const MatvecScratch& scratch, Phases& ph, float* sm) {
  const Share sh(w, kUnitCols<F>);
  if (sh.per <= 1) matvec<F, 1, kBatched>(w, sh, in, e, batch, scratch, ph, sm);
  else if (sh.per == 2) matvec<F, 2, kBatched>(w, sh, in, e, batch, scratch, ph, sm);
  else matvec<F, 4, kBatched>(w, sh, in, e, batch, scratch, ph, sm);
}

template <bool kBatched>
__device__ __forceinline__ void matvec_phase(const DeviceMatrix& w, const Input& in, const Epilogue& e, const Batch& batch,
                                             Phases& ph, float* sm) {
  constexpr std::uint32_t kColumns = kBatched ? kMaxDecodeBatch : 1;
  __shared__ float red[kWarps * kSlots * kColumns];
  __shared__ std::uint64_t column_best[kColumns];
  const MatvecScratch scratch{red, column_best};
  switch (w.format) {
    case WeightFormat::float32: matvec_format<WeightFormat::float32, kBatched>(w, in, e, batch, scratch, ph, sm); break;
    case WeightFormat::bfloat16: matvec_format<WeightFormat::bfloat16, kBatched>(w, in, e, batch, scratch, ph, sm); break;
    case WeightFormat::q8_0: matvec_format<WeightFormat::q8_0, kBatched>(w, in, e, batch, scratch, ph, sm); break;
    case WeightFormat::q4_0: matvec_format<WeightFormat::q4_0, kBatched>(w, in, e, batch, scratch, ph, sm); break;
  }
}

// ---- attention over the cache ------------------------------------------------------------------

// A block takes (head, split) items in turn. kKeyThreads threads per key score the split's
// kAttentionChunk keys at once, each over D/kKeyThreads dimensions, so every load of the keys is
// issued before any is waited on; then each thread sums the values of one dimension over a share
// of the keys. The block whose split holds the token's position rotates its k (rotary models) and
// writes k and v into the cache there; no other block reads that position.
constexpr std::uint32_t kKeyThreads = kThreads / kAttentionChunk;  // 8
// A thread's share of a key in 16-byte loads: at most 128 dimensions / 8 threads of fp32.
constexpr std::uint32_t kKeyUnits = 128 / kKeyThreads * 4 / 16;

// The thread's share of its key in the block's first item, loaded before the wait: keys before
// the token's position were written by earlier steps, not by the previous phase.
// And its values: thread (dimension d, key share g) sums the values of kAttentionChunk / groups
// keys (groups = kThreads / D), the first kValueKeys of them loaded before the wait.
constexpr std::uint32_t kValueKeys = 8;
template <class T>
struct KeyShare {
  uint4 u[kKeyUnits];
  T v[kValueKeys];
  bool loaded = false;
};

template <class T>
__device__ __forceinline__ const uint4* key_share(const T* kc, std::uint32_t key, std::uint32_t D) {
  const std::uint32_t span = D / kKeyThreads, share = threadIdx.x % kKeyThreads;
  return reinterpret_cast<const uint4*>(kc + std::size_t{key} * D + share * span);
}

// The keys one head reads for the token at pos, as kept indices [0, kept): dense, the positions
// themselves (kept = pos + 1); sparse, the positions of the layout row's key blocks in order, the
// diagonal block cut at pos, so that index kept - 1 is pos itself whatever the pattern. A split
// takes the indices [split·kAttentionChunk, +kAttentionChunk).
template <bool kSparse>
struct HeadKeys {
  std::uint32_t kept;
  std::uint32_t e0 = 0;  // sparse: the row's first entry of cols
};

template <bool kSparse>
__device__ __forceinline__ HeadKeys<kSparse> head_keys(const DecodeSparse& s, std::uint32_t h, std::uint32_t pos) {
  if constexpr (kSparse) {
    const std::uint32_t row = (s.heads == 1 ? 0 : h) * s.nb + pos / s.block;
    const std::uint32_t e0 = static_cast<std::uint32_t>(__ldg(s.row_ptr + row));
    const std::uint32_t e1 = static_cast<std::uint32_t>(__ldg(s.row_ptr + row + 1));
    return {(e1 - e0 - 1) * s.block + pos % s.block + 1, e0};
  } else {
    return {pos + 1};
  }
}

// The position of kept index i, and a position's row in the cache (the ring's slot).
template <bool kSparse>
__device__ __forceinline__ std::uint32_t key_position(const DecodeSparse& s, const HeadKeys<kSparse>& k, std::uint32_t i) {
  if constexpr (kSparse) return static_cast<std::uint32_t>(__ldg(s.cols + k.e0 + i / s.block)) * s.block + i % s.block;
  else return i;
}

template <bool kSparse>
__device__ __forceinline__ std::uint32_t key_row(const DecodeSparse& s, std::uint32_t position) {
  if constexpr (kSparse) return s.slots(position);
  else return position;
}

// Longformer's global blocks: a key there counts only if it or the query is a global token.
__device__ __forceinline__ bool key_masked(const DecodeSparse& s, const HeadKeys<true>& k, std::uint32_t i,
                                           std::uint32_t pos, std::uint32_t position) {
  return s.global_tokens != nullptr &&
         __ldg(s.kinds + k.e0 + i / s.block) == static_cast<std::uint8_t>(sparse::BlockKind::global) &&
         __ldg(s.global_tokens + pos) == 0 && __ldg(s.global_tokens + position) == 0;
}

// Splits per head for the token at pos: as many as the head with the most keys needs (per-head
// layouts: the other heads leave empty partials in the rest, which the combine weighs 0).
template <bool kSparse>
__device__ __forceinline__ std::uint32_t attention_splits(const DecodeSparse& s, std::uint32_t pos) {
  if constexpr (kSparse) {
    std::uint32_t most = 0;
    for (std::uint32_t h = 0; h < s.heads; ++h) most = max(most, head_keys<true>(s, h, pos).kept);
    return (most + kAttentionChunk - 1) / kAttentionChunk;
  } else {
    return pos / kAttentionChunk + 1;
  }
}

// One sequence of the step as the attention sees it: its q|k|v, its cache of the layer, its
// partials and its position.
template <class T>
struct AttentionSeq {
  const float* qkv;
  T *k_cache, *v_cache;
  Partials a;
  std::uint32_t pos;
};

// Sequence s of the step (batch 1: s = 0 at the cursor's position `pos`).
template <class T>
__device__ __forceinline__ AttentionSeq<T> attention_seq(const DecodeStep<T>& p, const DecodeLayer<T>& y,
                                                         std::uint32_t s, std::uint32_t pos) {
  const Partials a = partials_in(p.partials, p.heads, p.capacity, p.head_dim);
  return {p.qkv + std::size_t{s} * 3 * p.C, y.k_cache + s * p.cache_stride, y.v_cache + s * p.cache_stride,
          partials_of(a, partials_stride(a), s), pos};
}

template <bool kSparse, class T>
__device__ __forceinline__ void attention_item(const DecodeStep<T>& p, const AttentionSeq<T>& q_seq, std::uint32_t h,
                                               std::uint32_t split, float* sm, float* red, const KeyShare<T>& pre) {
  const Partials& a = q_seq.a;
  const std::uint32_t pos = q_seq.pos;
  const std::uint32_t D = a.head_dim, C = a.heads * D, begin = split * kAttentionChunk;
  const HeadKeys<kSparse> keys = head_keys<kSparse>(p.sparse, h, pos);
  const std::uint32_t last = keys.kept - 1;  // pos's own index
  const std::uint32_t n = kSparse && begin > last ? 0 : min(kAttentionChunk, keys.kept - begin);
  float* q = sm;                     // D: the query, rotated
  float* w = sm + D;                 // kAttentionChunk: scores, then their exponentials
  float* part = w + kAttentionChunk; // kThreads: the value sums of each share of keys
  auto* rows = reinterpret_cast<std::uint32_t*>(part + kThreads);  // sparse, kAttentionChunk: the keys' cache rows
  T* kc = q_seq.k_cache + std::size_t{h} * p.capacity * D;
  T* vc = q_seq.v_cache + std::size_t{h} * p.capacity * D;
  const float* qh = q_seq.qkv + h * D;
  const float* kh = q_seq.qkv + C + h * D;
  const float* vh = q_seq.qkv + 2 * C + h * D;
  const bool own = (!kSparse || n > 0) && begin + n == keys.kept;
  const std::uint32_t own_row = key_row<kSparse>(p.sparse, pos);
  const std::uint32_t half = p.rotary_dims / 2;
  const float2* rope = p.rope + std::size_t{pos} * half;
  for (std::uint32_t d = threadIdx.x; d < D; d += blockDim.x) {
    // Rotate-half: pair (i, i + half) turns by the position's angle for i; the other dims pass.
    float qd = ld_act(qh + d), kd = ld_act(kh + d);
    if (d < 2 * half) {
      const std::uint32_t i = d < half ? d : d - half;
      const float2 cs = rope[i];
      const float sign = d < half ? -1.0f : 1.0f;
      const std::uint32_t mate = d < half ? d + half : d - half;
      qd = qd * cs.x + sign * ld_act(qh + mate) * cs.y;
      kd = kd * cs.x + sign * ld_act(kh + mate) * cs.y;
    }
    q[d] = qd;
    if (own) {
      kc[std::size_t{own_row} * D + d] = from_float<T>(kd);
      vc[std::size_t{own_row} * D + d] = from_float<T>(ld_act(vh + d));
    }
  }
  __syncthreads();  // q complete; the block's own cache writes visible to the block

  // Scores: key j = tid / kKeyThreads, dimensions [share·span, (share + 1)·span) of it.
  const std::uint32_t j = threadIdx.x / kKeyThreads, share = threadIdx.x % kKeyThreads, span = D / kKeyThreads;
  float dot = 0.0f;
  bool masked = false;
  std::uint32_t row = 0;
  if (j < n) {
    constexpr std::uint32_t kPer = 16 / sizeof(T);
    const std::uint32_t position = key_position<kSparse>(p.sparse, keys, begin + j);
    row = key_row<kSparse>(p.sparse, position);
    if constexpr (kSparse) masked = key_masked(p.sparse, keys, begin + j, pos, position);
    const uint4* kr = key_share(kc, row, D);
    const float* qs = q + share * span;
    const bool use_pre = pre.loaded && begin + j != last;  // the own position was written just now
#pragma unroll
    for (std::uint32_t u = 0; u < kKeyUnits; ++u) {
      if (u >= span / kPer) break;
      const uint4 v = use_pre ? pre.u[u] : kr[u];
      const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (std::uint32_t k = 0; k < kPer; ++k) dot += qs[u * kPer + k] * to_float(e[k]);
    }
  }
  for (std::uint32_t offset = kKeyThreads / 2; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
  if (share == 0) {
    w[j] = j < n && !masked ? dot * rsqrtf(static_cast<float>(D)) : -INFINITY;
    if constexpr (kSparse) rows[j] = row;
  }
  __syncthreads();
  // The maximum and the sum of exponentials of the 64 scores: two warps' butterflies, then the
  // two halves in order, the same on every run.
  const std::uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (warp < 2) {
    const float m = warp_max(w[threadIdx.x]);
    if (lane == 0) red[warp] = m;
  }
  __syncthreads();
  const float mx = fmaxf(red[0], red[1]);
  // Sparse: a split without keys (past a head's last, or all masked) has mx = -inf, and every
  // exponential 0: it leaves m = -inf, l = 0, which the combine weighs 0.
  const float shift = kSparse && mx == -INFINITY ? 0.0f : mx;
  if (warp < 2) {
    const float e = threadIdx.x < n ? expf(w[threadIdx.x] - shift) : 0.0f;
    const float s = warp_sum(e);
    if (lane == 0) red[2 + warp] = s;
    w[threadIdx.x] = e;
  }
  __syncthreads();
  const float sum = red[2] + red[3];
  // Values: thread (dimension d, share g of the keys); shares added in order below.
  const std::uint32_t groups = kThreads / D, d = threadIdx.x % D, g = threadIdx.x / D;
  if (g < groups) {
    const std::uint32_t per = (kAttentionChunk + groups - 1) / groups;
    const std::uint32_t first = g * per, end = min(n, (g + 1) * per);
    float acc = 0.0f;
#pragma unroll
    for (std::uint32_t t = 0; t < kValueKeys; ++t) {
      const std::uint32_t i = first + t;
      if (i < end) {
        const bool use_pre = pre.loaded && begin + i != last;  // the own position was written just now
        acc += w[i] * to_float(use_pre ? pre.v[t] : vc[std::size_t{kSparse ? rows[i] : begin + i} * D + d]);
      }
    }
#pragma unroll 4
    for (std::uint32_t i = first + kValueKeys; i < end; ++i)
      acc += w[i] * to_float(vc[std::size_t{kSparse ? rows[i] : begin + i} * D + d]);
    part[g * D + d] = acc;
  }
  __syncthreads();
  const std::size_t slot = std::size_t{h} * a.splits + split;
  for (std::uint32_t e = threadIdx.x; e < D; e += blockDim.x) {
    float acc = 0.0f;
    for (std::uint32_t k = 0; k < groups; ++k) acc += part[k * D + e];
    a.acc[slot * D + e] = acc;
  }
  if (threadIdx.x == 0) {
    a.m[slot] = mx;
    a.l[slot] = sum;
  }
  __syncthreads();  // shared memory is reused by the next item
}

// Items are (sequence, head, split), sequence by sequence, each sequence with the splits of its own
// position; `cursors` (batched) is the block's copy of every cursor, `pos` batch 1's position.
// Batches decode dense attention only (kSparse and kBatched are never both set).
template <bool kSparse, bool kBatched, class T>
__device__ __forceinline__ void attention_phase(const DecodeStep<T>& p, const DecodeLayer<T>& y, const DecodeCursor* cursors,
                                                std::uint32_t pos, Phases& ph, float* sm) {
  static_assert(!(kSparse && kBatched));
  __shared__ float red[4];
  const std::uint32_t sequences = kBatched ? p.batch : 1;
  const auto pos_of = [&](std::uint32_t s) { return kBatched ? cursors[s].pos : pos; };
  const auto items_of = [&](std::uint32_t s) { return p.heads * attention_splits<kSparse>(p.sparse, pos_of(s)); };
  // The sequence of an item, and the item's index among that sequence's.
  const auto locate = [&](std::uint32_t item, std::uint32_t& s) {
    s = 0;
    if constexpr (kBatched)
      while (s + 1 < sequences && item >= items_of(s)) item -= items_of(s++);
    return item;
  };
  std::uint32_t items = 0;
  for (std::uint32_t s = 0; s < sequences; ++s) items += items_of(s);
  if (blockIdx.x >= items) {
    ph.done();
    return;
  }
  KeyShare<T> pre;
  {
    std::uint32_t s;
    const std::uint32_t i = locate(blockIdx.x, s);
    const AttentionSeq<T> q_seq = attention_seq(p, y, s, pos_of(s));
    const std::uint32_t D = p.head_dim, h = i % p.heads, begin = i / p.heads * kAttentionChunk;
    const HeadKeys<kSparse> keys = head_keys<kSparse>(p.sparse, h, q_seq.pos);
    const std::uint32_t last = keys.kept - 1;
    const std::uint32_t key = begin + threadIdx.x / kKeyThreads;
    if (key < last) {
      const std::uint32_t row = key_row<kSparse>(p.sparse, key_position<kSparse>(p.sparse, keys, key));
      const uint4* kr = key_share(q_seq.k_cache + std::size_t{h} * p.capacity * D, row, D);
#pragma unroll
      for (std::uint32_t u = 0; u < kKeyUnits; ++u)
        if (u < D / kKeyThreads / (16 / sizeof(T))) pre.u[u] = __ldg(kr + u);
    }
    const std::uint32_t groups = kThreads / D, d = threadIdx.x % D, g = threadIdx.x / D;
    const std::uint32_t per = (kAttentionChunk + groups - 1) / groups;
    const T* vc = q_seq.v_cache + std::size_t{h} * p.capacity * D;
#pragma unroll
    for (std::uint32_t t = 0; t < kValueKeys; ++t) {
      const std::uint32_t value = begin + g * per + t;
      if (g < groups && t < per && value < last)
        pre.v[t] = vc[std::size_t{key_row<kSparse>(p.sparse, key_position<kSparse>(p.sparse, keys, value))} * D + d];
    }
    pre.loaded = true;
  }
  ph.wait();
  for (std::uint32_t item = blockIdx.x; item < items; item += gridDim.x) {
    std::uint32_t s;
    const std::uint32_t i = locate(item, s);
    attention_item<kSparse>(p, attention_seq(p, y, s, pos_of(s)), i % p.heads, i / p.heads, sm, red, pre);
    pre.loaded = false;
  }
  ph.done();
}

// ---- the step ----------------------------------------------------------------------------------

// The phases run from one loop with one call of each phase function, so that each is inlined once:
// a kernel with every phase written out would be too large for the registers.
// kBatched: p.batch sequences (2..kMaxDecodeBatch), their cursors copied to shared memory at the
// start; batch 1 keeps its cursor in registers and the matrix-vector code of before.
template <class T, bool kSparse, bool kBatched>
__global__ void __launch_bounds__(kThreads, 1) decode_step_kernel(const DecodeStep<T> p, const Batch batch) {
  extern __shared__ float sm[];
  __shared__ DecodeCursor cursors[kBatched ? kMaxDecodeBatch : 1];
  const std::uint32_t phases = 5 * p.n_layer + 1;
  Phases ph{p.counters, p.times, phases - 1};
  const DecodeCursor cursor = *p.cursor;
  if constexpr (kBatched) {
    // Read before any block can arrive at the final phase, whose last block moves the cursors on.
    if (threadIdx.x < batch.size) cursors[threadIdx.x] = p.cursor[threadIdx.x];
    __syncthreads();
  }
  for (std::uint32_t k = 0; k < phases; ++k) {
    const std::uint32_t l = min(k / 5, p.n_layer - 1), kind = k == phases - 1 ? 5 : k % 5;
    const DecodeLayer<T>& y = p.layers[l];
    if (kind == 1) {
      attention_phase<kSparse, kBatched>(p, y, cursors, cursor.pos, ph, sm);
      continue;
    }
    DeviceMatrix w;
    Input in;
    Epilogue e{nullptr};
    in.eps = p.eps;
    in.cursors = cursors;
    switch (kind) {
      case 0:  // norm + qkv; the first layer's input is the token's embedding
        w = y.qkv;
        in.kind = k == 0 ? In::embed_norm : In::norm;
        in.in = p.x;
        in.norm_w = y.ln1w;
        in.norm_b = y.ln1b;
        in.wte = p.wte;
        in.wpe = p.wpe;
        in.token = cursor.token;
        in.pos = cursor.pos;
        in.pos_offset = p.pos_offset;
        in.embed_out = p.x;
        e = Epilogue{p.qkv, y.qkvb};
        break;
      case 2:  // combine + attention projection + residual
        w = y.attproj;
        in.kind = In::attention;
        in.partials = partials_in(p.partials, p.heads, p.capacity, p.head_dim);
        in.partials_stride = partials_stride(in.partials);
        // Dense: the token's position. Sparse: the first index of the last split in use, as the
        // splits count kept keys, not positions.
        in.pos = kSparse ? (attention_splits<kSparse>(p.sparse, cursor.pos) - 1) * kAttentionChunk : cursor.pos;
        e = Epilogue{p.x2, y.attprojb, p.x};
        break;
      case 3:  // norm + fc + activation; a parallel residual (GPT-NeoX) feeds the MLP the layer's input
        w = y.fc;
        in.kind = In::norm;
        in.in = p.parallel_residual ? p.x : p.x2;
        in.norm_w = y.ln2w;
        in.norm_b = y.ln2b;
        e = Epilogue{p.h, y.fcb, nullptr, true, p.act};
        break;
      case 4:  // fc projection + residual
        w = y.fcproj;
        in.kind = In::vector;
        in.in = p.h;
        e = Epilogue{p.x, y.fcprojb, p.x2};
        break;
      default:  // final norm + head
        w = p.head;
        in.kind = In::norm;
        in.in = p.x;
        in.norm_w = p.lnfw;
        in.norm_b = p.lnfb;
        e = Epilogue{p.logits};
        e.best = p.greedy.best;
        e.candidates = p.greedy.tokens;
    }
    matvec_phase<kBatched>(w, in, e, batch, ph, sm);
  }
  if (ph.last_block && p.greedy.best != nullptr) {
    // Each sequence's token, then decode_advance's bookkeeping; `best` is zeroed for the next step.
    for (std::uint32_t s = 0; s < (kBatched ? batch.size : 1); ++s) {
      const std::uint32_t token = 0xffffffffu - static_cast<std::uint32_t>(atomicExch(
                                                    reinterpret_cast<unsigned long long*>(p.greedy.best + s), 0ull));
      p.greedy.next[s] = token;
      advance_cursor(p.cursor + s, kBatched ? cursors[s] : cursor, token, p.greedy.history + s * p.greedy.history_len,
                     p.greedy.history_len, 1);
    }
  }
}

__global__ void __launch_bounds__(kThreads, 1) logits_kernel(const DeviceMatrix head, const float* x, float* logits) {
  extern __shared__ float sm[];
  Phases ph{nullptr, nullptr, 0};
  Input in;
  in.in = x;
  matvec_phase<false>(head, in, Epilogue{logits}, Batch{}, ph, sm);
}

__global__ void rope_table_kernel(float2* out, std::size_t positions, std::uint32_t rotary_dims, double log2_base) {
  const std::size_t half = rotary_dims / 2;
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= positions * half) return;
  const std::size_t pos = idx / half, i = idx % half;
  // θ = pos · base^(-2i/rotary_dims) in double, rounded once to fp32 cos/sin, as rotary.cu does.
  const double inv_freq = exp2(-log2_base * static_cast<double>(2 * i) / static_cast<double>(rotary_dims));
  double sin_d, cos_d;
  sincos(static_cast<double>(pos) * inv_freq, &sin_d, &cos_d);
  out[idx] = make_float2(static_cast<float>(cos_d), static_cast<float>(sin_d));
}

template <class T>
__global__ void store_kv_kernel(T* kc, T* vc, const T* qkv, std::size_t rows, std::size_t C, std::size_t D,
                                std::size_t capacity, BasicKvSlots<std::uint32_t> slots) {
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * C) return;
  const std::size_t n = idx / C, c = idx % C, h = c / D, d = c % D;
  // In a ring, a position that a later one of the prompt overwrites is not written: each slot
  // then has one writer, whatever order the threads run in.
  if (n >= slots.fixed && n + slots.ring < rows) return;
  const std::size_t at = (h * capacity + slots(static_cast<std::uint32_t>(n))) * D + d;
  kc[at] = qkv[n * 3 * C + C + c];
  vc[at] = qkv[n * 3 * C + 2 * C + c];
}

__global__ void advance_kernel(DecodeCursor* cursor, const std::uint32_t* next, std::uint32_t* history,
                               std::uint32_t history_len, std::uint32_t pos_step) {
  const DecodeCursor now = *cursor;
  advance_cursor(cursor, now, *next, history, history_len, pos_step);
}

template <class T>
__global__ void row_to_float_kernel(float* out, const T* row, std::size_t C) {
  for (std::size_t i = threadIdx.x; i < C; i += blockDim.x) out[i] = to_float(row[i]);
}

// ---- host side -----------------------------------------------------------------------------------

std::uint32_t cols_per_load(WeightFormat f) {
  switch (f) {
    case WeightFormat::float32: return 4;
    case WeightFormat::bfloat16: return 8;
    case WeightFormat::q8_0: return 32;  // whole blocks
    case WeightFormat::q4_0: break;
  }
  return 32;
}

void check_matrix(const char* what, const DeviceMatrix& w, std::uint32_t rows, std::uint32_t cols) {
  if (w.data == nullptr || w.rows != rows || w.cols != cols)
    fail_op("decode step: matrix ", what, " is ", w.rows, " × ", w.cols, " (", w.data == nullptr ? "absent" : "present",
            "), expected ", rows, " × ", cols);
  if (cols % cols_per_load(w.format) != 0)
    fail_op("decode step: matrix ", what, " has ", cols, " columns, not a multiple of ", cols_per_load(w.format),
            ", the vector load of its weight format");
}

// Shared memory a block needs: `resident` input vectors of the widest rows and the split weights
// after them, or an attention item's scratch.
template <class T>
std::size_t step_smem_bytes(const DecodeStep<T>& p, std::uint32_t resident) {
  const Partials a = partials_in(nullptr, p.heads, p.capacity, p.head_dim);
  const std::size_t vector = std::size_t{resident} * std::max<std::size_t>(p.C, p.ffn) + std::size_t{p.heads} * a.splits;
  // Sparse: and the chunk's cache rows.
  const std::size_t attention = p.head_dim + kAttentionChunk + kThreads + (p.sparse.row_ptr != nullptr ? kAttentionChunk : 0);
  return std::max(vector, attention) * sizeof(float);
}

// How many sequences' input vectors a batched step keeps in shared memory at once: all of them
// when they fit beside the kernel's static shared memory, else as many as fit (each pass over the
// columns then reads the weights again, mostly from L2).
// The kernel's room for dynamic shared memory is asked once (per type), as multiprocessors() is.
template <class T>
std::uint32_t resident_columns(const DecodeStep<T>& p, const void* kernel) {
  static const std::size_t room = [kernel] {
    int device = 0, optin = 0;
    MINITX_CUDA_CHECK(cudaGetDevice(&device));
    MINITX_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    cudaFuncAttributes attributes{};
    MINITX_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
    return static_cast<std::size_t>(optin) - std::min<std::size_t>(attributes.sharedSizeBytes, optin);
  }();
  const Partials a = partials_in(nullptr, p.heads, p.capacity, p.head_dim);
  const std::size_t extra = (std::size_t{p.heads} * a.splits) * sizeof(float);
  const std::size_t per = std::max<std::size_t>(p.C, p.ffn) * sizeof(float);
  const std::size_t fit = room > extra ? (room - extra) / per : 0;
  if (fit == 0)
    fail_op("decode step: one input vector of ", std::max(p.C, p.ffn), " floats and the attention weights do not fit the ",
            room, " bytes of shared memory a block can have");
  return static_cast<std::uint32_t>(std::min<std::size_t>(p.batch, fit));
}

// Launches `kernel` over one block per SM, all resident at once (a cooperative launch: the phase
// counters wait for every block), with `smem` bytes of dynamic shared memory.
template <class... Params, class... Args>
void launch_resident(void (*kernel)(Params...), std::size_t smem, cudaStream_t stream, bool cooperative,
                     Args&&... args) {
  MINITX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  int per_sm = 0;
  MINITX_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  if (per_sm < 1)
    fail_op("decode step: a block of ", kThreads, " threads with ", smem,
            " bytes of shared memory does not fit on a multiprocessor");
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(multiprocessors());
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeCooperative;
  attribute.val.cooperative = 1;
  config.attrs = &attribute;
  config.numAttrs = cooperative ? 1 : 0;
  MINITX_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace

std::size_t decode_step_counters(std::size_t n_layer) { return decode_step_phases(n_layer); }

std::size_t attention_partials_floats(std::size_t heads, std::size_t capacity, std::size_t head_dim) {
  const std::size_t splits = (capacity + kAttentionChunk - 1) / kAttentionChunk;
  return heads * splits * (head_dim + 2);
}

template <class T>
void decode_step(const DecodeStep<T>& p, cudaStream_t stream) {
  const std::uint32_t C = p.C, D = p.head_dim;
  if (p.n_layer == 0 || p.heads == 0 || p.heads * D != C)
    fail_op("decode step: ", p.heads, " heads of ", D, " for a width of ", C);
  if (D % (kKeyThreads * 16 / sizeof(T)) != 0 || D > kThreads)
    fail_op("decode step: head size ", D, " must be a multiple of ", kKeyThreads * 16 / sizeof(T), " (", kKeyThreads,
            " threads of 16-byte loads per key) and at most ", kThreads);
  if (p.rotary_dims % 2 != 0 || p.rotary_dims > D || (p.rotary_dims > 0 && p.rope == nullptr))
    fail_op("decode step: rotary_dims = ", p.rotary_dims, " must be even, at most the head size ", D,
            ", and come with its table");
  if (C % 4 != 0 || p.ffn % 4 != 0) fail_op("decode step: widths ", C, " and ", p.ffn, " must be multiples of 4");
  // A row is at most kWarps warps × kMaxUnitsPerLane loads per lane (fp32: 4 values a load, the fewest).
  constexpr std::uint32_t kMaxCols = 32 * kWarps * kMaxUnitsPerLane * 4;
  if (std::max(C, p.ffn) > kMaxCols)
    fail_op("decode step: rows of ", std::max(C, p.ffn), " values are longer than the kernel's ", kMaxCols);
  check_matrix("head", p.head, p.head.rows, C);
  if (p.head.rows == 0) fail_op("decode step: the head has no rows");
  if (p.batch < 1 || p.batch > kMaxDecodeBatch)
    fail_op("decode step: batch ", p.batch, " is outside 1 to ", kMaxDecodeBatch, " sequences");
  if (p.sparse.row_ptr == nullptr && p.batch == 1) {
    launch_resident(decode_step_kernel<T, false, false>, step_smem_bytes(p, 1), stream, true, p, Batch{});
    return;
  }
  if (p.sparse.row_ptr == nullptr) {
    const Batch batch{p.batch, resident_columns(p, reinterpret_cast<const void*>(decode_step_kernel<T, false, true>))};
    launch_resident(decode_step_kernel<T, false, true>, step_smem_bytes(p, batch.resident), stream, true, p, batch);
    return;
  }
  if (p.batch != 1) fail_op("decode step: batch ", p.batch, " with a sparse layout (batches decode dense attention only)");
  const DecodeSparse& s = p.sparse;
  if (s.cols == nullptr || s.kinds == nullptr || s.block == 0 || s.nb == 0 || (s.heads != 1 && s.heads != p.heads))
    fail_op("decode step: a sparse layout of ", s.nb, " block rows of ", s.block, " for ", s.heads,
            " heads (expected 1 or ", p.heads, ", and its cols and kinds)");
  if (s.slots.is_ring() && (s.slots.fixed % s.block != 0 || s.slots.ring % s.block != 0 ||
                            s.slots.fixed + s.slots.ring > p.capacity))
    fail_op("decode step: a ring of ", s.slots.fixed, " fixed and ", s.slots.ring, " ring rows for blocks of ", s.block,
            " in a cache of ", p.capacity, " rows (expected whole blocks that fit)");
  launch_resident(decode_step_kernel<T, true, false>, step_smem_bytes(p, 1), stream, true, p, Batch{});
}

void decode_logits(const DeviceMatrix& head, const float* x, float* logits, cudaStream_t stream) {
  if (head.rows == 0 || head.data == nullptr) fail_op("decode logits: an empty head");
  check_matrix("head", head, head.rows, head.cols);
  launch_resident(logits_kernel, std::size_t{head.cols} * sizeof(float), stream, false, head, x, logits);
}

void rope_table(float2* out, std::size_t positions, std::size_t rotary_dims, double log2_base, cudaStream_t stream) {
  const std::size_t n = positions * (rotary_dims / 2);
  if (n == 0) return;
  rope_table_kernel<<<detail::grid_for(n, 256), 256, 0, stream>>>(out, positions,
                                                                 static_cast<std::uint32_t>(rotary_dims), log2_base);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void store_kv(T* k_cache, T* v_cache, const T* qkv, std::size_t rows, std::size_t C, std::size_t heads,
              std::size_t capacity, const BasicKvSlots<std::uint32_t>& slots, cudaStream_t stream) {
  if (rows > 0xffffffffu || slots.rows(static_cast<std::uint32_t>(rows)) > capacity)
    fail_op("store_kv: ", rows, " positions into a cache of ", capacity, " rows");
  if (rows == 0) return;
  store_kv_kernel<T><<<detail::grid_for(rows * C, 256), 256, 0, stream>>>(k_cache, v_cache, qkv, rows, C, C / heads,
                                                                          capacity, slots);
  MINITX_CUDA_LAUNCHED();
}

void decode_advance(DecodeCursor* cursor, const std::uint32_t* next, std::uint32_t* history, std::uint32_t history_len,
                    std::uint32_t pos_step, cudaStream_t stream) {
  advance_kernel<<<1, 1, 0, stream>>>(cursor, next, history, history_len, pos_step);
  MINITX_CUDA_LAUNCHED();
}

template <class T>
void row_to_float(float* out, const T* row, std::size_t C, cudaStream_t stream) {
  row_to_float_kernel<T><<<1, 256, 0, stream>>>(out, row, C);
  MINITX_CUDA_LAUNCHED();
}

#define MINITX_INSTANTIATE(T)                                                                                  \
  template void decode_step<T>(const DecodeStep<T>&, cudaStream_t);                                            \
  template void store_kv<T>(T*, T*, const T*, std::size_t, std::size_t, std::size_t, std::size_t,              \
                            const BasicKvSlots<std::uint32_t>&, cudaStream_t);                                   \
  template void row_to_float<T>(float*, const T*, std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
