#include "minitx/infer/linear.h"

#include <cstring>
#include <memory>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/matvec.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/infer/kv_cache.h"
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

GptWeights weights_of(const GptModel& model) {
  const ModelConfig& m = model.config;
  const GptParams& p = model.params;
  const std::size_t C = m.n_embd;
  GptWeights w;
  w.config = m;
  w.wte = fp32_linear(p.wte, m.vocab_size, C);
  w.wpe = fp32_linear(p.wpe, m.context, C);
  w.lnfw = p.lnfw;
  w.lnfb = p.lnfb;
  w.layers.resize(m.n_layer);
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    GptLayerWeights& y = w.layers[l];
    y.ln1w = p.ln1w + l * C;
    y.ln1b = p.ln1b + l * C;
    y.qkvw = fp32_linear(p.qkvw + l * 3 * C * C, 3 * C, C);
    y.qkvb = p.qkvb + l * 3 * C;
    y.attprojw = fp32_linear(p.attprojw + l * C * C, C, C);
    y.attprojb = p.attprojb + l * C;
    y.ln2w = p.ln2w + l * C;
    y.ln2b = p.ln2b + l * C;
    y.fcw = fp32_linear(p.fcw + l * 4 * C * C, 4 * C, C);
    y.fcb = p.fcb + l * 4 * C;
    y.fcprojw = fp32_linear(p.fcprojw + l * 4 * C * C, C, 4 * C);
    y.fcprojb = p.fcprojb + l * C;
  }
  return w;
}

GptWeights with_packed_matrices(GptWeights w, PackHead head) {
  if (w.packed_storage != nullptr) return w;
  std::vector<Linear*> targets;
  const auto want = [&](Linear& x) {
    if (x.format == quant::Format::f32) targets.push_back(&x);
  };
  if (head == PackHead::yes) want(w.wte);
  for (GptLayerWeights& y : w.layers) {
    want(y.qkvw);
    want(y.attprojw);
    want(y.fcw);
    want(y.fcprojw);
  }
  auto storage = std::make_shared<std::vector<cpu::PackedB>>();
  storage->reserve(targets.size());  // no reallocation: the pointers below stay valid
  for (Linear* x : targets) {
    // Linear holds W (OC, C); the product needs op(B) = Wᵀ (C × OC).
    storage->emplace_back(cpu::Trans::yes, x->cols, x->rows, floats(*x), x->cols);
    x->packed = &storage->back();
  }
  w.packed_storage = std::move(storage);
  return w;
}

void gpt_forward(const GptWeights& w, GptActivations& a, const std::uint32_t* ids, std::size_t B, std::size_t T,
                 KvCache* cache) {
  const ModelConfig& m = w.config;
  const std::size_t L = m.n_layer, C = m.n_embd, NH = m.n_head, BT = B * T;
  if (w.wte.format == quant::Format::f32 && w.wpe.format == quant::Format::f32) {
    cpu::encoder_forward(a.encoded, ids, floats(w.wte), floats(w.wpe), BT, T, C);
  } else {
    // Quantized tables: one row of each dequantized per token, never the whole table.
    parallel_for(BT, [&](std::size_t begin, std::size_t end) {
      std::vector<float> pos(C);
      for (std::size_t n = begin; n < end; ++n) {
        float* o = a.encoded + n * C;
        linear_row(o, w.wte, ids[n]);
        linear_row(pos.data(), w.wpe, n % T);
        for (std::size_t c = 0; c < C; ++c) o[c] += pos[c];
      }
    });
  }
  const float* residual = a.encoded;
  for (std::size_t l = 0; l < L; ++l) {
    const GptLayerWeights& y = w.layers[l];
    float* ln1 = a.ln1 + l * a.s_btc;
    float* qkv = a.qkv + l * a.s_bt3c;
    float* atty = a.atty + l * a.s_btc;
    float* attproj = a.attproj + l * a.s_btc;
    float* residual2 = a.residual2 + l * a.s_btc;
    float* ln2 = a.ln2 + l * a.s_btc;
    float* fch = a.fch + l * a.s_bt4c;
    float* fch_gelu = a.fch_gelu + l * a.s_bt4c;
    float* fcproj = a.fcproj + l * a.s_btc;
    float* residual3 = a.residual3 + l * a.s_btc;
    cpu::layernorm_forward(ln1, a.ln1_mean + l * a.s_bt, a.ln1_rstd + l * a.s_bt, residual, y.ln1w, y.ln1b, BT, C);
    linear_forward(qkv, ln1, y.qkvw, y.qkvb, BT);
    if (cache != nullptr) cache->store(l, 0, qkv, T);
    cpu::attention_forward(atty, a.att + l * a.s_att, qkv, B, T, C, NH);
    linear_forward(attproj, atty, y.attprojw, y.attprojb, BT);
    cpu::residual_forward(residual2, residual, attproj, BT * C);
    cpu::layernorm_forward(ln2, a.ln2_mean + l * a.s_bt, a.ln2_rstd + l * a.s_bt, residual2, y.ln2w, y.ln2b, BT, C);
    linear_forward(fch, ln2, y.fcw, y.fcb, BT);
    cpu::gelu_forward(fch_gelu, fch, BT * 4 * C);
    linear_forward(fcproj, fch_gelu, y.fcprojw, y.fcprojb, BT);
    cpu::residual_forward(residual3, residual2, fcproj, BT * C);
    residual = residual3;
  }
  cpu::layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, w.lnfw, w.lnfb, BT, C);
}

void gpt_logits(const GptWeights& w, float* logits, const float* x, std::size_t N) {
  linear_forward(logits, x, w.wte, nullptr, N);
}

std::size_t weight_bytes(const GptWeights& w) {
  const auto bytes = [](const Linear& x) { return x.rows * quant::row_bytes(x.format, x.cols); };
  const std::size_t C = w.config.n_embd;
  std::size_t total = bytes(w.wte) + bytes(w.wpe) + 2 * C * sizeof(float);
  for (const GptLayerWeights& y : w.layers)
    total += bytes(y.qkvw) + bytes(y.attprojw) + bytes(y.fcw) + bytes(y.fcprojw) + 13 * C * sizeof(float);
  return total;
}

}  // namespace minitx
