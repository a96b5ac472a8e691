// One decode step on the GPU (decode.cu): a token's trip through the model as one persistent
// kernel. Every block of a grid that fills the device once takes part in every phase of the step —
// per layer: norm + qkv, attention over the cache, combine + attention projection + residual,
// norm + fc + activation, fc projection + residual; then norm + head — and the phases are
// separated by counters in device memory instead of kernel boundaries. A block starts loading its
// next phase's weights before it waits for the previous phase to finish, so the weight stream
// hides the wait; a block with no work in a phase passes straight on.
//
// Why one kernel: batch 1 reads each weight once and does two flops with it. At these sizes a
// phase's own work is a microsecond or two of memory time, while a kernel boundary in a CUDA graph
// costs several (measured: 5-6 µs per launch with PDL; docs/KERNELS.md "Decode step kernels").
//
// Everything a step needs that changes from token to token (the input token, its position, the
// sampler's draw index) lives in a DecodeCursor in device memory, read when the kernel runs, so a
// step can be captured once as a CUDA graph and replayed for every token.
//
// Determinism: every output element is computed by one warp (or a fixed set of warps whose sums
// are added in warp order) in an order that depends on the shapes only, never on the grid; the
// counters' atomics order arrivals, not arithmetic. Arithmetic is fp32 whatever the storage.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "minitx/backend/cuda/ops.h"
#include "minitx/model/kv_slots.h"

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
// in the cache), and how many tokens have been sampled (the sampler's draw index). One per
// sequence of a batch.
struct DecodeCursor {
  std::uint32_t token;
  std::uint32_t pos;
  std::uint64_t draw;
};

// A layer's weights and its slice of the KV cache (heads, capacity, head_dim).
template <class T>
struct DecodeLayer {
  DeviceMatrix qkv, attproj, fc, fcproj;
  const float *ln1w, *ln1b, *qkvb, *attprojb, *ln2w, *ln2b, *fcb, *fcprojb;  // biases may be null
  T *k_cache, *v_cache;
};

// Attention over the cache is split along the sequence into chunks of this many positions; each
// (head, chunk) leaves a partial (running maximum, sum of exponentials, weighted values) that the
// next phase combines.
inline constexpr std::uint32_t kAttentionChunk = 64;

// Sequences one step decodes at most. A batched step reads each weight once for all of them:
// each sequence is a column of the matrix-vector products, computed with the very operations of
// a batch-1 step, so every sequence's logits are bit for bit those it would get alone.
inline constexpr std::uint32_t kMaxDecodeBatch = 16;
// A block-sparse pattern's layout for the step (sparse/layout.h's CSR, as DeviceLayout uploads
// it, for the model's whole context). The token at pos reads, per head, the key blocks of row
// (heads == 1 ? 0 : h)·nb + pos / block, in order: their positions, the diagonal block's cut at
// pos, are the head's kept keys, which the attention splits into chunks of kAttentionChunk.
// Keys and values sit in the cache at the rows `slots` gives (a ring for local and sinks).
struct DecodeSparse {
  const std::int32_t* row_ptr = nullptr;  // null: dense causal attention, row p for position p
  const std::int32_t* cols = nullptr;
  const std::uint8_t* kinds = nullptr;          // sparse::BlockKind per entry of cols
  const std::uint8_t* global_tokens = nullptr;  // per position; null: no global blocks
  std::uint32_t block = 0, nb = 0, heads = 1;
  BasicKvSlots<std::uint32_t> slots;
};

template <class T>
struct DecodeStep {
  const DecodeLayer<T>* layers;  // device memory, n_layer of them
  std::uint32_t n_layer, C, heads, head_dim, ffn;
  std::uint32_t capacity;  // cache rows per head (a ring's rows for local and sinks)
  std::uint32_t rotary_dims;  // 0: learned positions (wpe, at pos + pos_offset)
  std::uint32_t pos_offset;
  Activation act;
  bool parallel_residual;  // GPT-NeoX: the MLP reads the layer's input, not input + attention
  float eps;
  DeviceMatrix wte, wpe, head;  // wpe.data null for rotary models
  const float *lnfw, *lnfb;
  const float2* rope;  // rope_table of the cache's positions (rotary models)
  // Sequences decoded at once (1..kMaxDecodeBatch). Sequence s's cache of a layer starts
  // s · cache_stride elements after the layer's k_cache (and v_cache).
  std::uint32_t batch;
  std::size_t cache_stride;
  // Activations (fp32), one row per sequence: the residual stream x and x2 (C), the token's
  // q|k|v (3C), the MLP's hidden values h (ffn), the attention partials
  // (attention_partials_floats), and the logits (head rows).
  float *x, *x2, *qkv, *h, *partials, *logits;
  DecodeCursor* cursor;  // batch of them
  // Greedy decoding inside the step (best null: off, the logits are left for a sampler): the
  // first largest logit, as sample_token picks it, becomes the next token, and the cursor moves
  // on as decode_advance does (`next`, `history`). Per sequence: `best` is one zeroed word, left
  // zeroed, `next` one token, `history` a ring of history_len. Only the first `tokens` logits are
  // candidates (the head may be padded past the tokenizer).
  struct Greedy {
    std::uint64_t* best;
    std::uint32_t *next, *history;
    std::uint32_t history_len, tokens;
  } greedy;
  // decode_step_counters(n_layer) zeroed words: the phases' arrival counters. The kernel leaves
  // them zeroed for the next step.
  std::uint32_t* counters;
  DecodeSparse sparse;  // row_ptr null: dense, the kernel without any of the sparse code
  // Optional (null: none): decode_step_phases(n_layer) + 1 globaltimer readings, taken by block 0
  // as each phase starts and when the step ends, for a profile.
  std::uint64_t* times;
};

std::size_t decode_step_counters(std::size_t n_layer);
inline std::size_t decode_step_phases(std::size_t n_layer) { return 5 * n_layer + 1; }

// Checks the shapes (naming what does not fit) and launches the step: the token of each cursor
// in, each sequence's logits out, k and v of each cursor's position written into its cache.
template <class T>
void decode_step(const DecodeStep<T>& p, cudaStream_t stream);

// logits = head · x for one fp32 vector x (the prefill's last row after its final LayerNorm), with
// the step's matrix-vector code.
void decode_logits(const DeviceMatrix& head, const float* x, float* logits, cudaStream_t stream);

// Floats of the attention partials for `heads` over a cache of `capacity` positions (a sparse
// pattern's kept keys never outnumber its cache's rows).
std::size_t attention_partials_floats(std::size_t heads, std::size_t capacity, std::size_t head_dim);

// cos and sin of every position's rotary angles: (positions, rotary_dims / 2), computed once per
// decoder in double and rounded to fp32, as rotary.cu computes them for the prefill.
void rope_table(float2* out, std::size_t positions, std::size_t rotary_dims, double log2_base, cudaStream_t stream);

// ---- prefill and bookkeeping ---------------------------------------------------------------
// Copies k and v of `rows` positions from qkv rows (rows, 3C) — already rotated — into the cache
// of `capacity` rows per head, position p at row slots(p); in a ring, only the positions that
// the last ones leave standing.
template <class T>
void store_kv(T* k_cache, T* v_cache, const T* qkv, std::size_t rows, std::size_t C, std::size_t heads,
              std::size_t capacity, const BasicKvSlots<std::uint32_t>& slots, cudaStream_t stream);

// After the sampler chose `next`: history[cursor.draw % history_len] = next (a ring of the newest
// draws), cursor.token = next, cursor.draw += 1
// and cursor.pos += pos_step (1 after a step, 0 after a prefill, which set the position itself).
void decode_advance(DecodeCursor* cursor, const std::uint32_t* next, std::uint32_t* history,
                    std::uint32_t history_len, std::uint32_t pos_step, cudaStream_t stream);

// The last row (C values of T) of a prefill's final LayerNorm, as fp32, for the head.
template <class T>
void row_to_float(float* out, const T* row, std::size_t C, cudaStream_t stream);

}  // namespace minitx::cuda
