#include "minitx/model/weights.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/matvec.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/memory.h"
#include "minitx/core/threads.h"
#include "minitx/model/gpt.h"
#include "minitx/quant/matmul.h"
#include "minitx/quant/quantize.h"

namespace minitx {

namespace {

const float* floats(const Linear& w) { return reinterpret_cast<const float*>(w.data); }

}  // namespace

Linear fp32_linear(const float* w, std::size_t rows, std::size_t cols) {
  return quant::QMatrix{quant::Format::f32, rows, cols, reinterpret_cast<const std::byte*>(w)};
}

void linear_forward(float* out, const float* inp, const Linear& w, const float* bias, std::size_t N) {
  if (w.format == quant::Format::f32 && w.packed != nullptr)
    cpu::sgemm_packed(cpu::Trans::no, N, 1.0f, inp, w.cols, *w.packed, 0.0f, out, w.rows, bias);
  else if (w.format == quant::Format::f32)
    cpu::matmul_forward(out, inp, floats(w), bias, N, w.cols, w.rows);
  else
    quant::matmul(out, inp, w, bias, N);
}

namespace {

// Below this many weights a quantized product (about 3 µs on one core) stays on the calling
// thread. The threshold is cpu::matvec's: 2^18 measured slower at 2 threads (width 256: 2.0-2.2k
// against 3.2-3.7k q8_0 decode tokens/s), because the longer stretches of serial products let
// the pool's workers fall asleep, and waking them costs more than the products saved.
constexpr std::size_t kSerialWeights = 1 << 16;

template <class Block, class Dot1, class Dot4>
void serial_rows(float* out, const Linear& w, const quant::Q8Row& x, const float* bias, Dot1 dot1, Dot4 dot4) {
  const std::size_t stride = w.cols / quant::QK;
  const auto* rows = reinterpret_cast<const Block*>(w.data);
  std::size_t o = 0;
  for (; o + 4 <= w.rows; o += 4) dot4(w.cols, rows + o * stride, stride, x, out + o);
  for (; o < w.rows; ++o) out[o] = dot1(w.cols, rows + o * stride, x);
  if (bias != nullptr)
    for (std::size_t r = 0; r < w.rows; ++r) out[r] += bias[r];
}

}  // namespace

void linear_matvec(float* out, const Linear& w, const float* x, const float* bias) {
  if (w.format == quant::Format::f32) {
    cpu::matvec(out, floats(w), x, bias, w.rows, w.cols);
    return;
  }
  // Quantized once here, for either path; the products are the ones quant::matvec computes
  // (the same four-row and one-row kernels, so the same bits, whichever thread runs them).
  thread_local quant::Q8Activations xq;
  xq.quantize(x, 1, w.cols);
  if (w.rows * w.cols >= kSerialWeights) {
    quant::matmul_q8(out, xq, w, bias);
    return;
  }
  if (w.format == quant::Format::q8_0)
    serial_rows<quant::block_q8_0>(out, w, xq.row(0), bias, quant::vec_dot_q8_0_q8_0, quant::vec_dot4_q8_0_q8_0);
  else
    serial_rows<quant::block_q4_0>(out, w, xq.row(0), bias, quant::vec_dot_q4_0_q8_0, quant::vec_dot4_q4_0_q8_0);
}

void linear_row(float* out, const Linear& w, std::size_t r) {
  MINITX_CHECK(r < w.rows, "embedding lookup: row {} of a table of {} rows", r, w.rows);
  const std::byte* row = w.row(r);
  switch (w.format) {
    case quant::Format::f32: std::memcpy(out, row, w.cols * sizeof(float)); return;
    case quant::Format::q8_0:
      quant::dequantize_row_q8_0_ref(reinterpret_cast<const quant::block_q8_0*>(row), out, w.cols);
      return;
    case quant::Format::q4_0:
      quant::dequantize_row_q4_0_ref(reinterpret_cast<const quant::block_q4_0*>(row), out, w.cols);
      return;
  }
}

WeightField weight_field(GptWeights& w, Param kind, std::size_t layer) {
  GptLayerWeights& y = w.layers.at(layer);  // layer 0's for global tensors, which do not use it
  switch (kind) {
    case Param::wte: return {&w.wte, nullptr};
    case Param::wpe: return {&w.wpe, nullptr};
    case Param::ln1w: return {nullptr, &y.ln1w};
    case Param::ln1b: return {nullptr, &y.ln1b};
    case Param::qkvw: return {&y.qkvw, nullptr};
    case Param::qkvb: return {nullptr, &y.qkvb};
    case Param::attprojw: return {&y.attprojw, nullptr};
    case Param::attprojb: return {nullptr, &y.attprojb};
    case Param::ln2w: return {nullptr, &y.ln2w};
    case Param::ln2b: return {nullptr, &y.ln2b};
    case Param::fcw: return {&y.fcw, nullptr};
    case Param::fcb: return {nullptr, &y.fcb};
    case Param::fcprojw: return {&y.fcprojw, nullptr};
    case Param::fcprojb: return {nullptr, &y.fcprojb};
    case Param::lnfw: return {nullptr, &w.lnfw};
    case Param::lnfb: return {nullptr, &w.lnfb};
    case Param::head: break;
  }
  return {&w.head, nullptr};
}

GptWeights make_weights(const ModelConfig& m, const MatrixSource& matrix, const VectorSource& vector) {
  GptWeights w;
  w.config = m;
  w.layers.resize(m.n_layer);
  for (const ParamTensor& t : param_tensors(m))
    for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l) {
      const WeightField f = weight_field(w, t.kind, l);
      if (f.matrix != nullptr) *f.matrix = matrix(t, l);
      else *f.vector = vector(t, l);
    }
  if (m.tied_head) w.head = w.wte;
  return w;
}

std::vector<float> dense_parameters(const GptWeights& w) {
  const ModelConfig& m = w.config;
  const ParamLayout layout = param_layout(m);
  std::vector<float> out = allocating(fmt::format("an fp32 copy of {} parameters", layout.total),
                                      static_cast<double>(layout.total) * sizeof(float),
                                      [&] { return std::vector<float>(layout.total); });
  GptWeights view = w;  // a copy of the pointers, for weight_field's mutable access
  for (const ParamTensor& t : param_tensors(m))
    for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l) {
      float* dst = out.data() + layout.offset[static_cast<std::size_t>(t.kind)] + l * t.slice();
      const WeightField f = weight_field(view, t.kind, l);
      if (f.vector != nullptr) {
        std::copy_n(*f.vector, t.slice(), dst);
        continue;
      }
      for (std::size_t r = 0; r < t.rows; ++r) linear_row(dst + r * t.cols, *f.matrix, r);
    }
  return out;
}

GptWeights weights_of(const GptModel& model) {
  const ModelConfig& m = model.config;
  const GptParams& p = model.params;
  return make_weights(
      m,
      [&](const ParamTensor& t, std::size_t l) { return fp32_linear(p.at(t.kind) + l * t.slice(), t.rows, t.cols); },
      [&](const ParamTensor& t, std::size_t l) -> const float* { return p.at(t.kind) + l * t.slice(); });
}

GptWeights with_packed_matrices(GptWeights w, PackHead head) {
  if (w.packed_storage != nullptr) return w;
  std::vector<Linear*> targets;
  const auto want = [&](Linear& x) {
    if (x.format == quant::Format::f32) targets.push_back(&x);
  };
  if (head == PackHead::yes) want(w.head);
  for (GptLayerWeights& y : w.layers) {
    want(y.qkvw);
    want(y.attprojw);
    want(y.fcw);
    want(y.fcprojw);
  }
  double bytes = 0;
  for (const Linear* x : targets) bytes += static_cast<double>(x->rows * x->cols) * sizeof(float);
  w.packed_storage = allocating(fmt::format("a packed copy of {} weight matrices", targets.size()), bytes, [&] {
    auto storage = std::make_shared<std::vector<cpu::PackedB>>();
    storage->reserve(targets.size());  // no reallocation: the pointers below stay valid
    for (Linear* x : targets) {
      // Linear holds W (OC, C); the product needs op(B) = Wᵀ (C × OC).
      storage->emplace_back(cpu::Trans::yes, x->cols, x->rows, floats(*x), x->cols);
      x->packed = &storage->back();
    }
    return storage;
  });
  return w;
}

std::size_t weight_bytes(const GptWeights& w) {
  const auto bytes = [](const Linear& x) { return x.rows * quant::row_bytes(x.format, x.cols); };
  const ModelConfig& m = w.config;
  const std::size_t C = m.n_embd;
  const std::size_t layer_vectors = 4 * C + (m.bias ? 3 * C + C + m.ffn_width() + C : 0);
  std::size_t total = bytes(w.wte) + bytes(w.wpe) + (m.tied_head ? 0 : bytes(w.head)) + 2 * C * sizeof(float);
  for (const GptLayerWeights& y : w.layers)
    total += bytes(y.qkvw) + bytes(y.attprojw) + bytes(y.fcw) + bytes(y.fcprojw) + layer_vectors * sizeof(float);
  return total;
}

}  // namespace minitx
