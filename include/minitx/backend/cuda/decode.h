// The kernels of one decode step on the GPU (decode.cu): a token's trip through the model is a
// chain of matrix-vector products, each fused with what it reads before and writes after, so a
// layer is five launches — norm + qkv, attention over the cache, combine + attention projection
// + residual, norm + fc + activation, fc projection + residual — and the head one more.
//
// Everything a step needs to know that changes from token to token (the input token, its
// position, the sampler's draw index) lives in a DecodeCursor in device memory and is read by the
// kernels when they run, so one step can be captured once as a CUDA graph and replayed for every
// token. Grids are sized from the shapes and the context, never from the position: a block past
// the current position exits at once.
//
// Programmatic dependent launch (`pdl`, Hopper): the matrix-vector and attention kernels may be
// launched to start while the previous kernel finishes; they load their first weights, then wait
// for it before reading anything it writes. A step is a chain of small kernels, each a few
// microseconds of latency, so overlapping one's start with the other's end is most of the gain.
//
// Determinism: every output element is computed by one warp or one thread, in an order fixed by
// the shapes; no atomics. Arithmetic is fp32 whatever the storage.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {

// How a matrix's weights are stored on the device, as the decode kernels read them.
//   float32, bfloat16  rows × cols values
//   q8_0       rows × cols int8, and rows × cols/32 fp16 scales: x = d·q
//   q4_0       rows × cols/2 bytes in the CPU's block packing (byte j of a block: element j in the
//              low nibble, j + 16 in the high), and the scales: x = d·(nibble - 8)
// Quantized weights are split from their scales so that a warp reads both with aligned 16-byte loads.
enum class WeightFormat : std::uint8_t { float32, bfloat16, q8_0, q4_0 };

struct DeviceMatrix {
  WeightFormat format = WeightFormat::float32;
  std::uint32_t rows = 0, cols = 0;
  const void* data = nullptr;
  const std::uint16_t* scales = nullptr;  // fp16 bits, quantized formats only
};

// Where decoding stands, in device memory: the token to feed, its position (= positions already
// in the cache), and how many tokens have been sampled (the sampler's draw index).
struct DecodeCursor {
  std::uint32_t token;
  std::uint32_t pos;
  std::uint64_t draw;
};

// ---- the fused matrix-vector product ---------------------------------------------------------
// out[r] = residual[r] + act(W[r]·x + bias[r]) for r < W.rows (residual, bias and act optional),
// where the input vector x (W.cols values) is made by the block itself from one of:
enum class MatvecInput : std::uint8_t {
  vector,     // x = in[0 .. cols)
  norm,       // x = LayerNorm(in) with norm_w, norm_b, eps
  embed_norm, // e = wte[cursor.token] (+ wpe[cursor.pos + pos_offset]); block 0 stores e in
              // `embed_out` (the residual stream); x = LayerNorm(e)
  attention,  // x = the attention output, combined from decode_attention's per-split partials
};

// The per-split partial results of attention over the cache: for each head and split, the
// running maximum m, the sum l of exp(score - m), and acc = Σ exp(score - m)·v (head_dim values).
struct AttentionPartials {
  float *m, *l, *acc;  // (heads, splits), (heads, splits), (heads, splits, head_dim)
  std::uint32_t heads, head_dim, splits, chunk;  // splits · chunk ≥ the cache's capacity
};

struct MatvecParams {
  DeviceMatrix w;
  float* out = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;  // may be `out` itself: each element is read, then written, by one lane
  bool has_act = false;
  Activation act = Activation::gelu_tanh;
  // input
  MatvecInput input = MatvecInput::vector;
  const float* in = nullptr;  // vector and norm inputs
  const float *norm_w = nullptr, *norm_b = nullptr;
  float eps = 1e-5f;
  DeviceMatrix wte, wpe;  // embed_norm: wpe.data null without learned positions
  std::uint32_t pos_offset = 0;
  float* embed_out = nullptr;
  AttentionPartials partials{};
  const DecodeCursor* cursor = nullptr;  // embed_norm and attention read it
  bool pdl = false;  // launch as a programmatic dependent of the previous kernel (below)
};
void decode_matvec(const MatvecParams& p, cudaStream_t stream);

// ---- attention of the cursor's token over the cache ------------------------------------------
// qkv: the token's q|k|v (3C floats, as the qkv product wrote them, before rotary positions).
// Each block takes one head and one split of kAttentionChunk positions; the block whose split holds the
// token's own position rotates its k (rotary models) and writes k and v into the cache there, so
// no other block ever reads a position being written. Cache layout: (heads, capacity, head_dim).
template <class T>
struct DecodeAttention {
  const float* qkv;
  T *k_cache, *v_cache;
  std::uint32_t capacity;
  std::uint32_t rotary_dims;  // 0: learned positions
  const float2* rope;         // rope_table of the cache's positions (rotary models)
  AttentionPartials partials;
  const DecodeCursor* cursor;
  bool pdl;
};
template <class T>
void decode_attention(const DecodeAttention<T>& p, cudaStream_t stream);

// Splits are of this many positions (AttentionPartials::chunk).
inline constexpr std::uint32_t kAttentionChunk = 32;

// cos and sin of every position's rotary angles: (positions, rotary_dims / 2), computed once per
// decoder in double and rounded to fp32, as rotary.cu computes them for the prefill.
void rope_table(float2* out, std::size_t positions, std::size_t rotary_dims, double log2_base, cudaStream_t stream);

// Bytes of a partials buffer for `heads` × `splits` of head_dim.
inline std::size_t attention_partials_floats(std::size_t heads, std::size_t splits, std::size_t head_dim) {
  return heads * splits * (head_dim + 2);
}

// ---- prefill and bookkeeping ---------------------------------------------------------------
// Copies k and v of `rows` positions from qkv rows (rows, 3C) — already rotated — into the cache
// at positions [0, rows).
template <class T>
void store_kv(T* k_cache, T* v_cache, const T* qkv, std::size_t rows, std::size_t C, std::size_t heads,
              std::size_t capacity, cudaStream_t stream);

// After the sampler chose `next`: history[cursor.draw % history_len] = next (a ring of the newest
// draws), cursor.token = next, cursor.draw += 1
// and cursor.pos += pos_step (1 after a step, 0 after a prefill, which set the position itself).
void decode_advance(DecodeCursor* cursor, const std::uint32_t* next, std::uint32_t* history,
                    std::uint32_t history_len, std::uint32_t pos_step, cudaStream_t stream);

// The last row (C values of T) of a prefill's final LayerNorm, as fp32, for the head's matvec.
template <class T>
void row_to_float(float* out, const T* row, std::size_t C, cudaStream_t stream);

}  // namespace minitx::cuda
