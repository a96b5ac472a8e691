// Block-sparse causal attention on the CPU: cpu::attention_forward/backward/decode restricted to
// the blocks a sparse::BlockLayout keeps, with the same activation buffers, so a model can call
// either. Work is proportional to the kept blocks; masked blocks are never multiplied.
//
// Shapes as cpu::attention_forward: inp (B, T, 3C) holds q, k, v side by side with heads
// contiguous in C; out (B, T, C); att (B, NH, T, T) the softmax probabilities, saved for the
// backward, with every entry the layout masks (and every j > i) exactly 0. layout.T must be T
// and layout.heads 1 (shared) or NH; anything else is a minitx::Error.
//
// Bits: with sparse::dense_causal the forward (out and att) and decode equal
// cpu::attention_forward and cpu::attention_decode bit for bit at every block size. The
// backward's dQ does too; dK and dV sum over query rows in 256-row chunks counted from the
// first query block that attends the key block, as the dense kernel counts from its 64-row key
// tile, so they are bit-exact at block 64 or when T ≤ 256, and within float rounding otherwise.
// Every reduction runs in an order fixed by the layout and the shapes, never by the threads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "minitx/model/kv_slots.h"
#include "minitx/sparse/layout.h"

namespace minitx::cpu {

void sparse_attention_forward(float* out, float* att, const float* inp, const sparse::BlockLayout& layout,
                              std::size_t B, std::size_t T, std::size_t C, std::size_t NH);

// dinp (B, T, 3C) is overwritten, where cpu::attention_backward accumulates (+=) like the other
// CPU backward passes: every element of dinp is written here, so it may start as garbage, and a
// caller that accumulates must sum separately. Fed zeros, the dense kernel gives the same values.
// datt: scratch of att's size (only its kept blocks are written).
void sparse_attention_backward(float* dinp, float* datt, const float* dout, const float* inp, const float* att,
                               const sparse::BlockLayout& layout, std::size_t B, std::size_t T, std::size_t C,
                               std::size_t NH);

// Where position p's key and value rows sit in a KV cache (model/kv_slots.h).
using KvSlots = BasicKvSlots<std::size_t>;

// One query at position pos against cached keys and values of positions [0, pos], rows of
// stride C at the rows `slots` gives: q (C), out (C), scores scratch of NH·(pos + 1) floats.
// Reads only the keys and values the layout allows row pos (pos < layout.T); equals row pos of
// sparse_attention_forward up to float rounding (dot products instead of sgemm tiles).
void sparse_attention_decode(float* out, float* scores, const float* q, const float* keys, const float* values,
                             const sparse::BlockLayout& layout, std::size_t pos, std::size_t C, std::size_t NH,
                             const KvSlots& slots = {});

}  // namespace minitx::cpu
