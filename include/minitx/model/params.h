// The tensor table: one list of every parameter tensor of a model, from which everything else is
// derived — offsets into the one allocation (and so the struct of named pointers, llm.c style),
// checkpoint order, the names of tensors in quantized files, the weight views of inference and
// the Hugging Face name mapping of the importer. Optional tensors (positions, biases, an untied
// head) are entries that a descriptor includes or not, never special cases elsewhere.
//
// A per-layer tensor is stored stacked, (L, rows, cols): layer l's slice is contiguous. The same
// layout serves the gradients and the two AdamW moments.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "minitx/model/config.h"

namespace minitx {

// Every tensor a model can have, in storage order. The values are also the RNG stream of each
// tensor's initialisation, so adding a kind never changes how an existing one is drawn.
enum class Param : std::uint8_t {
  wte,       // (V, C)        token embedding (also the head when tied)
  wpe,       // (P, C)        learned positions, P = context + offset
  ln1w,      // (L, C)
  ln1b,      // (L, C)
  qkvw,      // (L, 3C, C)    q, k, v stacked by rows, heads contiguous in each
  qkvb,      // (L, 3C)
  attprojw,  // (L, C, C)
  attprojb,  // (L, C)
  ln2w,      // (L, C)
  ln2b,      // (L, C)
  fcw,       // (L, F, C)     F = FFN width
  fcb,       // (L, F)
  fcprojw,   // (L, C, F)
  fcprojb,   // (L, C)
  lnfw,      // (C)
  lnfb,      // (C)
  head,      // (V, C)        untied output head
};
inline constexpr std::size_t kParamKinds = 17;

struct ParamTensor {
  enum class Init { normal, residual_normal, zeros, ones };
  Param kind;
  const char* name;   // "wte", "qkvw", …; a layer's slice in files is "h.<l>.<name>"
  bool per_layer;
  std::size_t rows, cols;  // of one layer's slice; cols = 0 for a vector
  Init init;
  bool decay;  // weight decay applies to matrices and embeddings, not to biases and norms

  std::size_t slice() const { return rows * (cols == 0 ? 1 : cols); }
  std::size_t size(std::size_t n_layer) const { return per_layer ? n_layer * slice() : slice(); }
  bool matrix() const { return cols != 0; }
};

// The tensors this architecture has, in storage order.
std::vector<ParamTensor> param_tensors(const ModelConfig& config);
std::size_t param_count(const ModelConfig& config);
// Offset (in floats) of each kind in the allocation, and whether the model has it.
struct ParamLayout {
  std::size_t offset[kParamKinds] = {};
  bool present[kParamKinds] = {};
  std::size_t total = 0;
};
ParamLayout param_layout(const ModelConfig& config);

// The name of one slice in model files: "wte", "h.3.qkvw".
std::string tensor_name(const ParamTensor& t, std::size_t layer);

// Named pointers into one allocation; a tensor the architecture lacks is null. Per-layer
// pointers point at layer 0; layer l's slice is at + l · slice().
struct GptParams {
  float* wte;
  float* wpe;
  float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
  float *lnfw, *lnfb;
  float* head;
  float* at(Param kind) const;
};
GptParams bind_params(float* base, const ModelConfig& config);

// GPT-2 initialisation: N(0, init_std) for matrices and embeddings, divided by √(2L) for the two
// projections into the residual stream; zeros for biases, ones for norm weights. Element i of
// tensor kind k is drawn from Philox (seed, stream k, index i).
void init_params(float* base, const ModelConfig& config, std::uint64_t seed);

}  // namespace minitx
