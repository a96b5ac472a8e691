// The GPT's weights as inference reads them, whatever their storage: every matrix is a
// `Linear` (a quant::QMatrix: fp32 rows or packed q8_0/q4_0 blocks), every vector fp32. One
// forward pass, one decode step (block.h), one decoder (infer/decoder.h) and one perplexity loop
// (infer/perplexity.h) run on this view, so an fp32 checkpoint and a quantized model file go through
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
// L = layers, C = channels, F = FFN width, V = vocab rows, P = position rows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "minitx/model/config.h"
#include "minitx/model/params.h"
#include "minitx/quant/tensor.h"

namespace minitx {

struct GptModel;
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

// One layer's weights; a bias the architecture lacks is null.
struct GptLayerWeights {
  const float *ln1w, *ln1b;  // (C)
  Linear qkvw;               // (3C, C)
  const float* qkvb;         // (3C)
  Linear attprojw;           // (C, C)
  const float* attprojb;     // (C)
  const float *ln2w, *ln2b;  // (C)
  Linear fcw;                // (F, C)
  const float* fcb;          // (F)
  Linear fcprojw;            // (C, F)
  const float* fcprojb;      // (C)
};

struct GptWeights {
  ModelConfig config;
  Linear wte;   // (V, C) token embedding
  Linear wpe;   // (P, C) learned positions; no rows with rotary positions
  std::vector<GptLayerWeights> layers;  // L of them
  const float *lnfw, *lnfb;             // (C)
  Linear head;  // (V, C) output head: wte itself when tied
  // Owns what the matrices' `packed` point to (shared, so that copies of the view stay valid).
  std::shared_ptr<const std::vector<cpu::PackedB>> packed_storage;
};

// The view of any storage, built from the tensor table: `matrix` gives each matrix slice (its
// expected rows and cols are in the ParamTensor), `vector` each vector slice. The one place
// where table entries become the view's fields.
using MatrixSource = std::function<Linear(const ParamTensor& tensor, std::size_t layer)>;
using VectorSource = std::function<const float*(const ParamTensor& tensor, std::size_t layer)>;
GptWeights make_weights(const ModelConfig& config, const MatrixSource& matrix, const VectorSource& vector);

// The view's field that holds one table entry (params.h) of a layer: a matrix or a vector,
// exactly one of the two non-null. The one mapping between the table and the view's fields.
struct WeightField {
  Linear* matrix = nullptr;
  const float** vector = nullptr;
};
WeightField weight_field(GptWeights& w, Param kind, std::size_t layer);

// Every parameter in the tensor table's layout (param_layout), as fp32: quantized matrices
// dequantized. What a device that multiplies dense matrices (a GPU prefill) starts from.
std::vector<float> dense_parameters(const GptWeights& w);

// Views of an fp32 model's parameters (valid while the model lives).
GptWeights weights_of(const GptModel& model);

// The same view with the fp32 layer matrices also packed for prompt-sized products: for
// evaluation and prefill, which multiply fixed weights by many rows. Costs those matrices' bytes
// again; quantized matrices and an already packed view are left as they are. The output head is
// packed only when asked (`head`): evaluation multiplies every position by it, while a decoder
// needs the logits of the last position only, a matrix-vector product.
enum class PackHead { no, yes };
GptWeights with_packed_matrices(GptWeights w, PackHead head);

// Storage bytes of the view's matrices and vectors (what a decode step streams).
std::size_t weight_bytes(const GptWeights& w);

}  // namespace minitx
