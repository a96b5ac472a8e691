// The decode step's kernels (see decode.h): the fused matrix-vector product, attention of one
// token over the KV cache split along the sequence, and the small copies around them.
//
// A matrix-vector product of batch 1 reads every weight once and does two flops with it, so it
// is bound by memory, or, for the small matrices of small models, by latency. One warp owns a
// row: its lanes stream the row with 16-byte loads (8 bf16, 4 floats, 16 int8 weights or one
// whole q4_0 block), multiply by the input vector that the block built in shared memory, and add
// up with a butterfly. The input is built by every block from what the previous kernel left (a
// LayerNorm of the residual stream, the attention's partials): a few kilobytes from L2 per block,
// instead of one more launch and a round trip through memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <utility>

#include "activation.cuh"
#include "common.cuh"
#include "minitx/backend/cuda/decode.h"

namespace minitx::cuda {
namespace {

using detail::from_float;
using detail::to_float;
using detail::warp_sum;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Blocks of the matrix-vector kernel resident per SM (its registers are capped to allow it). The
// grid is one wave: at most this many blocks per SM, each warp taking rows in turn. A row's sum is
// one warp's whatever the grid, so the grid may follow the device without changing a bit.
// q4_0's unpacking needs more registers: three blocks.
template <WeightFormat F>
constexpr int kBlocksPerSm = F == WeightFormat::q4_0 ? 3 : 4;

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

// Block-wide reductions in a fixed order: butterflies inside each warp, then every thread adds
// the warps' results in warp order (so all threads hold the same value).
template <class Op>
__device__ float block_reduce(float v, float* red, Op op) {
  constexpr unsigned kFull = 0xffffffffu;
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(kFull, v, offset));
  const int warps = static_cast<int>(blockDim.x) / 32;
  __syncthreads();  // `red` may still be read from the previous reduction
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < warps; ++w) r = op(r, red[w]);
  return r;
}
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// Element (r, c) of a matrix in any format: the embedding lookup, C values per token.
__device__ float element(const DeviceMatrix& w, std::uint32_t r, std::uint32_t c) {
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
__device__ __forceinline__ const uint4* row_units(const DeviceMatrix& w, std::uint32_t r) {
  const std::size_t row_bytes = std::size_t{w.cols} * 16 / kUnitCols<F>;
  return reinterpret_cast<const uint4*>(static_cast<const unsigned char*>(w.data) + r * row_bytes);
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

// Units of its first row that a warp loads before it waits for the previous kernel: 4 per lane
// for dense formats (1,024 bf16 columns), 2 for quantized ones (1,024 q8_0, 2,048 q4_0), whose
// unpacking needs the registers.
template <WeightFormat F>
constexpr int kPrefetch = F == WeightFormat::float32 || F == WeightFormat::bfloat16 ? 4 : 2;

// xs (n values, in place) = LayerNorm(xs)·w + b, with the mean and variance in a fixed order.
__device__ void layernorm_in_place(float* xs, std::uint32_t n, const float* w, const float* b, float eps, float* red) {
  float s = 0.0f;
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) s += xs[i];
  const float mean = block_reduce(s, red, Add{}) / static_cast<float>(n);
  float v = 0.0f;
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = xs[i] - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_reduce(v, red, Add{}) / static_cast<float>(n) + eps);
  for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x)
    xs[i] = (xs[i] - mean) * rstd * w[i] + (b != nullptr ? b[i] : 0.0f);
}

// The attention output of one token from the splits' partials: per head, each split's weight
// exp(m_s - max)/Σ, computed once per block into `scale` (heads × used floats of shared memory),
// then every output element adds its splits' sums in split order.
__device__ void combine_attention(float* xs, float* scale, const AttentionPartials& a, std::uint32_t pos) {
  const std::uint32_t used = pos / a.chunk + 1, C = a.heads * a.head_dim;
  for (std::uint32_t h = threadIdx.x; h < a.heads; h += blockDim.x) {
    const float* m = a.m + std::size_t{h} * a.splits;
    const float* l = a.l + std::size_t{h} * a.splits;
    float top = m[0];
    for (std::uint32_t s = 1; s < used; ++s) top = fmaxf(top, m[s]);
    float den = 0.0f;
    for (std::uint32_t s = 0; s < used; ++s) den += expf(m[s] - top) * l[s];
    for (std::uint32_t s = 0; s < used; ++s) scale[h * used + s] = expf(m[s] - top) / den;
  }
  __syncthreads();
  for (std::uint32_t i = threadIdx.x; i < C; i += blockDim.x) {
    const std::uint32_t h = i / a.head_dim, d = i % a.head_dim;
    const float* acc = a.acc + std::size_t{h} * a.splits * a.head_dim + d;
    const float* w = scale + h * used;
    float num = 0.0f;
#pragma unroll 8
    for (std::uint32_t s = 0; s < used; ++s) num += w[s] * acc[std::size_t{s} * a.head_dim];
    xs[i] = num;
  }
}

// Programmatic dependent launch (sm_90): a kernel launched with the attribute may start while
// the previous one runs; it reads only weights until wait_for_previous(), which returns once the
// previous kernel has finished and its writes are visible. Launched without the attribute, both
// instructions do nothing.
__device__ __forceinline__ void let_next_start() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void wait_for_previous() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

template <WeightFormat F, MatvecInput In>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm<F>) matvec_kernel(const MatvecParams p) {
  extern __shared__ float xs[];  // the input vector, p.w.cols values
  __shared__ float red[kWarps];
  let_next_start();
  const std::uint32_t n = p.w.cols, units = n / kUnitCols<F>;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const std::uint32_t first = blockIdx.x * kWarps + warp;
  // The weights do not depend on the previous kernel: their first loads overlap its end.
  uint4 pre[kPrefetch<F>];
  float pre_scale[kPrefetch<F>];
#pragma unroll
  for (int k = 0; k < kPrefetch<F>; ++k) {
    const std::uint32_t i = lane + 32 * k;
    if (first < p.w.rows && i < units) {
      pre[k] = __ldg(row_units<F>(p.w, first) + i);
      pre_scale[k] = unit_scale<F>(p.w, first, i);
    }
  }
  wait_for_previous();
  if constexpr (In == MatvecInput::attention) {
    combine_attention(xs, xs + n, p.partials, p.cursor->pos);
  } else if constexpr (In == MatvecInput::embed_norm) {
    const std::uint32_t token = p.cursor->token, row = p.cursor->pos + p.pos_offset;
#pragma unroll 4
    for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
      float e = element(p.wte, token, i);
      if (p.wpe.data != nullptr) e += element(p.wpe, row, i);
      xs[i] = e;
      if (blockIdx.x == 0) p.embed_out[i] = e;
    }
  } else {
    // Unrolled 16-byte loads: the input is one L2 round trip, not one per element a thread owns.
#pragma unroll 4
    for (std::uint32_t i = 4 * threadIdx.x; i < n; i += 4 * blockDim.x)
      *reinterpret_cast<float4*>(xs + i) = *reinterpret_cast<const float4*>(p.in + i);
  }
  if constexpr (In == MatvecInput::norm || In == MatvecInput::embed_norm) {
    __syncthreads();
    layernorm_in_place(xs, n, p.norm_w, p.norm_b, p.eps, red);
  }
  __syncthreads();
  for (std::uint32_t r = first; r < p.w.rows; r += gridDim.x * kWarps) {
    float s = 0.0f;
    std::uint32_t i = lane;
    if (r == first) {
#pragma unroll
      for (int k = 0; k < kPrefetch<F>; ++k, i += 32)
        if (i < units) s += unit_dot<F>(pre[k], pre_scale[k], xs + i * kUnitCols<F>);
    }
    const uint4* row = row_units<F>(p.w, r);
#pragma unroll 1
    for (; i < units; i += 32) s += unit_dot<F>(__ldg(row + i), unit_scale<F>(p.w, r, i), xs + i * kUnitCols<F>);
    s = warp_sum(s);
    if (lane == 0) {
      if (p.bias != nullptr) s += p.bias[r];
      if (p.has_act) s = detail::act_forward(s, p.act);
      if (p.residual != nullptr) s = p.residual[r] + s;
      p.out[r] = s;
    }
  }
}

// Launches with the programmatic-serialization attribute when `pdl`, else as a plain launch.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream, bool pdl,
            Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = pdl ? 1 : 0;
  MINITX_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

template <WeightFormat F>
void launch_matvec(const MatvecParams& p, cudaStream_t stream) {
  const std::uint32_t blocks = std::min<std::uint32_t>((p.w.rows + kWarps - 1) / kWarps, multiprocessors() * kBlocksPerSm<F>);
  // The input vector, and for the attention input the splits' weights after it.
  const std::size_t smem =
      (std::size_t{p.w.cols} + (p.input == MatvecInput::attention ? std::size_t{p.partials.heads} * p.partials.splits : 0)) *
      sizeof(float);
  switch (p.input) {
    case MatvecInput::vector: launch(matvec_kernel<F, MatvecInput::vector>, blocks, kThreads, smem, stream, p.pdl, p); break;
    case MatvecInput::norm: launch(matvec_kernel<F, MatvecInput::norm>, blocks, kThreads, smem, stream, p.pdl, p); break;
    case MatvecInput::embed_norm:
      launch(matvec_kernel<F, MatvecInput::embed_norm>, blocks, kThreads, smem, stream, p.pdl, p);
      break;
    case MatvecInput::attention:
      launch(matvec_kernel<F, MatvecInput::attention>, blocks, kThreads, smem, stream, p.pdl, p);
      break;
  }
}

std::uint32_t cols_per_load(WeightFormat f) {
  switch (f) {
    case WeightFormat::float32: return 4;
    case WeightFormat::bfloat16: return 8;
    case WeightFormat::q8_0: return 32;  // whole blocks
    case WeightFormat::q4_0: break;
  }
  return 32;
}

// ---- attention over the cache -----------------------------------------------------------------

// One block per (split, head): kKeyThreads threads per key score the split's kChunkKeys keys at
// once, each over D/kKeyThreads dimensions, so every load of the keys is issued before any is
// waited on; then each thread sums the values of one dimension over a share of the keys.
constexpr int kAttnThreads = 128;
constexpr int kKeyThreads = 4;
constexpr std::uint32_t kChunkKeys = kAttnThreads / kKeyThreads;  // 32: the split size decode.h's callers use

template <class T>
__global__ void __launch_bounds__(kAttnThreads) attention_kernel(const DecodeAttention<T> p) {
  let_next_start();
  wait_for_previous();
  const AttentionPartials& a = p.partials;
  const std::uint32_t pos = p.cursor->pos, split = blockIdx.x, h = blockIdx.y, D = a.head_dim, C = a.heads * D;
  const std::uint32_t begin = split * kChunkKeys;
  if (begin > pos) return;  // past the token: this split has no keys yet
  const std::uint32_t n = min(kChunkKeys, pos + 1 - begin);
  extern __shared__ float sm[];
  float* q = sm;            // D: the query, rotated
  float* w = sm + D;        // kChunkKeys: scores, then their exponentials
  float* part = w + kChunkKeys;  // D × (kAttnThreads / D): the value sums of each share of keys
  T* kc = p.k_cache + std::size_t{h} * p.capacity * D;
  T* vc = p.v_cache + std::size_t{h} * p.capacity * D;
  const float* qh = p.qkv + h * D;
  const float* kh = p.qkv + C + h * D;
  const float* vh = p.qkv + 2 * C + h * D;
  const bool own = begin + n == pos + 1;  // this split holds the token's position: it writes k and v there
  const std::uint32_t half = p.rotary_dims / 2;
  const float2* rope = p.rope + std::size_t{pos} * half;
  for (std::uint32_t d = threadIdx.x; d < D; d += blockDim.x) {
    // Rotate-half: pair (i, i + half) turns by the position's angle for i; the other dims pass.
    float qd = qh[d], kd = kh[d];
    if (d < 2 * half) {
      const std::uint32_t i = d < half ? d : d - half;
      const float2 cs = rope[i];
      const float sign = d < half ? -1.0f : 1.0f;
      const std::uint32_t mate = d < half ? d + half : d - half;
      qd = qd * cs.x + sign * qh[mate] * cs.y;
      kd = kd * cs.x + sign * kh[mate] * cs.y;
    }
    q[d] = qd;
    if (own) {
      kc[std::size_t{pos} * D + d] = from_float<T>(kd);
      vc[std::size_t{pos} * D + d] = from_float<T>(vh[d]);
    }
  }
  __syncthreads();  // q complete; the block's own cache writes visible to the block

  // Scores: key j = tid / kKeyThreads, dimensions [part·D/4, (part+1)·D/4) of it.
  const std::uint32_t j = threadIdx.x / kKeyThreads, share = threadIdx.x % kKeyThreads, span = D / kKeyThreads;
  float dot = 0.0f;
  if (j < n) {
    // The key's share in 16-byte loads, all issued before the sum (span is a multiple of 16 bytes).
    constexpr std::uint32_t kPer = 16 / sizeof(T);
    const uint4* kr = reinterpret_cast<const uint4*>(kc + std::size_t{begin + j} * D + share * span);
    const float* qs = q + share * span;
#pragma unroll 4
    for (std::uint32_t u = 0; u < span / kPer; ++u) {
      const uint4 v = kr[u];
      const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (std::uint32_t k = 0; k < kPer; ++k) dot += qs[u * kPer + k] * to_float(e[k]);
    }
  }
  for (int offset = kKeyThreads / 2; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
  if (share == 0) w[j] = j < n ? dot * rsqrtf(static_cast<float>(D)) : -INFINITY;
  __syncthreads();
  // Every thread reads the 32 scores in the same order: the same maximum and sum everywhere.
  float mx = w[0];
  for (std::uint32_t i = 1; i < n; ++i) mx = fmaxf(mx, w[i]);
  float sum = 0.0f;
  for (std::uint32_t i = 0; i < n; ++i) sum += expf(w[i] - mx);
  __syncthreads();
  if (threadIdx.x < n) w[threadIdx.x] = expf(w[threadIdx.x] - mx);
  __syncthreads();
  // Values: thread (dimension d, share g of the keys); shares added in order below.
  const std::uint32_t groups = kAttnThreads / D, d = threadIdx.x % D, g = threadIdx.x / D;
  if (g < groups) {
    const std::uint32_t per = (kChunkKeys + groups - 1) / groups;
    float acc = 0.0f;
#pragma unroll 8
    for (std::uint32_t i = g * per; i < min(n, (g + 1) * per); ++i)
      acc += w[i] * to_float(vc[std::size_t{begin + i} * D + d]);
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
                                std::size_t capacity) {
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * C) return;
  const std::size_t n = idx / C, c = idx % C, h = c / D, d = c % D;
  const std::size_t at = (h * capacity + n) * D + d;
  kc[at] = qkv[n * 3 * C + C + c];
  vc[at] = qkv[n * 3 * C + 2 * C + c];
}

__global__ void advance_kernel(DecodeCursor* cursor, const std::uint32_t* next, std::uint32_t* history,
                               std::uint32_t history_len, std::uint32_t pos_step) {
  const std::uint32_t token = *next;
  history[cursor->draw % history_len] = token;  // a ring of the newest draws
  cursor->token = token;
  cursor->pos += pos_step;
  cursor->draw += 1;
}

template <class T>
__global__ void row_to_float_kernel(float* out, const T* row, std::size_t C) {
  for (std::size_t i = threadIdx.x; i < C; i += blockDim.x) out[i] = to_float(row[i]);
}

}  // namespace

void decode_matvec(const MatvecParams& p, cudaStream_t stream) {
  if (p.w.rows == 0 || p.w.cols == 0 || p.w.data == nullptr || p.out == nullptr)
    fail_op("decode matvec: an empty matrix or output (", p.w.rows, " × ", p.w.cols, ")");
  if (p.w.cols % cols_per_load(p.w.format) != 0)
    fail_op("decode matvec: ", p.w.cols, " columns are not a multiple of ", cols_per_load(p.w.format),
            ", the vector load of this weight format");
  if ((std::size_t{p.w.cols} + std::size_t{p.partials.heads} * p.partials.splits) * sizeof(float) > 48 * 1024)
    fail_op("decode matvec: an input of ", p.w.cols, " values (and ", p.partials.heads, " × ", p.partials.splits,
            " split weights) does not fit the kernel's 48 KiB of shared memory");
  if (p.input == MatvecInput::attention && p.partials.heads * p.partials.head_dim != p.w.cols)
    fail_op("decode matvec: attention partials of ", p.partials.heads, " heads × ", p.partials.head_dim,
            " for a matrix of ", p.w.cols, " columns");
  switch (p.w.format) {
    case WeightFormat::float32: launch_matvec<WeightFormat::float32>(p, stream); break;
    case WeightFormat::bfloat16: launch_matvec<WeightFormat::bfloat16>(p, stream); break;
    case WeightFormat::q8_0: launch_matvec<WeightFormat::q8_0>(p, stream); break;
    case WeightFormat::q4_0: launch_matvec<WeightFormat::q4_0>(p, stream); break;
  }
}

template <class T>
void decode_attention(const DecodeAttention<T>& p, cudaStream_t stream) {
  const AttentionPartials& a = p.partials;
  if (a.chunk != kChunkKeys || std::size_t{a.splits} * a.chunk < p.capacity)
    fail_op("decode attention: ", a.splits, " splits of ", a.chunk, " positions for a cache of ", p.capacity,
            " (splits of ", kChunkKeys, " positions are needed)");
  if (a.head_dim % (kKeyThreads * 16 / sizeof(T)) != 0 || a.head_dim > kAttnThreads)
    fail_op("decode attention: head size ", a.head_dim, " must be a multiple of ", kKeyThreads * 16 / sizeof(T),
            " and at most ", kAttnThreads);
  if (p.rotary_dims % 2 != 0 || p.rotary_dims > a.head_dim || (p.rotary_dims > 0 && p.rope == nullptr))
    fail_op("decode attention: rotary_dims = ", p.rotary_dims, " must be even, at most the head size ", a.head_dim,
            ", and come with its table");
  const std::size_t smem = (2 * std::size_t{a.head_dim} + kChunkKeys + kAttnThreads) * sizeof(float);
  launch(attention_kernel<T>, dim3(a.splits, a.heads), kAttnThreads, smem, stream, p.pdl, p);
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
              std::size_t capacity, cudaStream_t stream) {
  if (rows > capacity) fail_op("store_kv: ", rows, " positions into a cache of ", capacity);
  if (rows == 0) return;
  store_kv_kernel<T><<<detail::grid_for(rows * C, 256), 256, 0, stream>>>(k_cache, v_cache, qkv, rows, C, C / heads,
                                                                          capacity);
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
  template void decode_attention<T>(const DecodeAttention<T>&, cudaStream_t);                                  \
  template void store_kv<T>(T*, T*, const T*, std::size_t, std::size_t, std::size_t, std::size_t, cudaStream_t); \
  template void row_to_float<T>(float*, const T*, std::size_t, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
