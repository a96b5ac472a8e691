// The GPT's weights as inference reads them, whatever their storage: every matrix is a
// `Linear` (a quant::QMatrix: fp32 rows or packed q8_0/q4_0 blocks), every vector fp32. One
// forward pass (`gpt_forward` below), one decoder (decoder.h) and one perplexity loop
// (perplexity.h) run on this view, so an fp32 checkpoint and a quantized model file go through
// the same code and differ only in how a linear layer is applied:
//
//   fp32       cpu::matmul_forward (rows of a prompt) or cpu::matvec (one token), bit for bit
//              what the fp32 model computed before the view existed; with_packed_matrices()
//              adds a copy of each matrix in sgemm's panels, which prompts then multiply
//              (cpu::sgemm_packed: the same bits, without repacking the weights per product)
//   q8_0/q4_0  each input row quantized to q8_0 blocks once per product, then integer dot
//              products with the packed weight rows (quant/matmul.h); weights are never
//              dequantized, except one embedding row per token for the lookup
//
// L = layers, C = channels, V = vocab, T = context.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "minitx/model/config.h"
#include "minitx/quant/tensor.h"

namespace minitx {

struct GptModel;
struct GptActivations;
struct KvCache;
namespace cpu {
class PackedB;
}

// W (OC, C): rows = OC, cols = C.
struct Linear : quant::QMatrix {
  Linear() = default;
  Linear(const quant::QMatrix& m) : quant::QMatrix(m) {}  // NOLINT(google-explicit-constructor): any matrix is one
  const cpu::PackedB* packed = nullptr;                   // fp32 only: Wᵀ in sgemm's panels, or null
};

// A view of fp32 rows as a Linear.
Linear fp32_linear(const float* w, std::size_t rows, std::size_t cols);

// out (N, OC) = inp (N, C) · Wᵀ + bias (OC, may be null).
void linear_forward(float* out, const float* inp, const Linear& w, const float* bias, std::size_t N);
// out (OC) = W x + bias: the one-token product of decoding.
void linear_matvec(float* out, const Linear& w, const float* x, const float* bias);
// out (C) = row r of W, dequantized when W is quantized (the embedding lookup).
void linear_row(float* out, const Linear& w, std::size_t r);

struct GptLayerWeights {
  const float *ln1w, *ln1b;  // (C)
  Linear qkvw;               // (3C, C)
  const float* qkvb;         // (3C)
  Linear attprojw;           // (C, C)
  const float* attprojb;     // (C)
  const float *ln2w, *ln2b;  // (C)
  Linear fcw;                // (4C, C)
  const float* fcb;          // (4C)
  Linear fcprojw;            // (C, 4C)
  const float* fcprojb;      // (C)
};

struct GptWeights {
  ModelConfig config;
  Linear wte;  // (V, C) token embedding, tied with the output head
  Linear wpe;  // (T, C) learned positions
  std::vector<GptLayerWeights> layers;  // L of them
  const float *lnfw, *lnfb;             // (C)
  // Owns what the matrices' `packed` point to (shared, so that copies of the view stay valid).
  std::shared_ptr<const std::vector<cpu::PackedB>> packed_storage;
};

// Views of an fp32 model's parameters (valid while the model lives).
GptWeights weights_of(const GptModel& model);

// The same view with the fp32 layer matrices also packed for prompt-sized products: for
// evaluation and prefill, which multiply fixed weights by many rows. Costs those matrices' bytes
// again; quantized matrices and an already packed view are left as they are. The tied output
// head is packed only when asked (`head`): evaluation multiplies every position by it, while a
// decoder needs the logits of the last position only, a matrix-vector product.
enum class PackHead { no, yes };
GptWeights with_packed_matrices(GptWeights w, PackHead head);

// Runs the transformer up to the final LayerNorm (acts.lnf); see gpt.h's gpt_forward, which
// is this function on weights_of(model).
void gpt_forward(const GptWeights& w, GptActivations& acts, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache = nullptr);

// logits (N, V) = x (N, C) · wteᵀ.
void gpt_logits(const GptWeights& w, float* logits, const float* x, std::size_t N);

// Storage bytes of the view's matrices and vectors (what a decode step streams).
std::size_t weight_bytes(const GptWeights& w);

}  // namespace minitx
