#include "minitx/quant/matmul.h"

#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"

namespace minitx::quant {

namespace {

// Rows of W handed out per parallel_for unit: enough work per chunk that waking a thread pays
// off, and chunk edges on whole cache lines of each output row.
constexpr std::size_t kRowGrain = 16;

void check_shapes(const QMatrix& w, std::size_t T, const char* op) {
  MINITX_CHECK(w.data != nullptr || w.rows * w.cols == 0, "{}: weight matrix has no data", op);
  MINITX_CHECK(T >= 1, "{}: needs at least one input row", op);
  MINITX_CHECK(w.cols % format_info(w.format).block_elems == 0, "{}: {} weights need a multiple of {} columns, got {}",
               op, format_name(w.format), format_info(w.format).block_elems, w.cols);
}

// fp32 weights: W's rows split over threads, each row dotted with all T inputs while it sits in
// L1. `dot(row, t)` is the product of weight row `row` with input row t.
template <class Dot>
void rows_times_inputs(float* out, const QMatrix& w, const float* bias, std::size_t T, Dot dot) {
  const std::size_t stride = row_bytes(w.format, w.cols);
  parallel_for(
      w.rows,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t o = begin; o < end; ++o) {
          const std::byte* row = w.data + o * stride;
          const float b = bias != nullptr ? bias[o] : 0.0f;
          for (std::size_t t = 0; t < T; ++t) out[t * w.rows + o] = dot(row, t) + b;
        }
      },
      kRowGrain);
}

// Quantized weights: four rows at a time through the four-row kernel (exactly vec_dot's bits,
// less overhead per row), the rest of a chunk one by one. (A kernel that unpacks each weight
// block once for four prompt tokens measured no faster: the products, not the unpacking, bound it.)
template <class Block, class Dot1, class DotRows>
void quantized_rows(float* out, const Q8Activations& inp, const QMatrix& w, const float* bias, Dot1 dot1,
                    DotRows dot_rows) {
  const std::size_t C = w.cols, stride = C / QK, T = inp.rows();
  const auto* weights = reinterpret_cast<const Block*>(w.data);
  const auto store = [&](std::size_t t, std::size_t o, float value) {
    out[t * w.rows + o] = value + (bias != nullptr ? bias[o] : 0.0f);
  };
  parallel_for(
      w.rows,
      [&](std::size_t begin, std::size_t end) {
        float four[4];
        std::size_t o = begin;
        for (; o + 4 <= end; o += 4)
          for (std::size_t t = 0; t < T; ++t) {
            dot_rows(C, weights + o * stride, stride, inp.row(t), four);
            for (std::size_t r = 0; r < 4; ++r) store(t, o + r, four[r]);
          }
        for (; o < end; ++o)
          for (std::size_t t = 0; t < T; ++t) store(t, o, dot1(C, weights + o * stride, inp.row(t)));
      },
      kRowGrain);
}

}  // namespace

void matmul_q8(float* out, const Q8Activations& inp, const QMatrix& w, const float* bias) {
  check_shapes(w, inp.rows(), "matmul_q8");
  MINITX_CHECK(inp.cols() == w.cols, "matmul_q8: inputs have {} columns, the weights {}", inp.cols(), w.cols);
  switch (w.format) {
    case Format::q8_0:
      quantized_rows<block_q8_0>(out, inp, w, bias, vec_dot_q8_0_q8_0, vec_dot4_q8_0_q8_0);
      return;
    case Format::q4_0:
      quantized_rows<block_q4_0>(out, inp, w, bias, vec_dot_q4_0_q8_0, vec_dot4_q4_0_q8_0);
      return;
    case Format::f32: break;
  }
  fail("matmul_q8: weights in format {} take fp32 inputs (use matmul)", format_name(w.format));
}

void matmul(float* out, const float* inp, const QMatrix& w, const float* bias, std::size_t T) {
  check_shapes(w, T, "matmul");
  if (w.format == Format::f32) {
    rows_times_inputs(out, w, bias, T, [&](const std::byte* row, std::size_t t) {
      return vec_dot_f32(w.cols, reinterpret_cast<const float*>(row), inp + t * w.cols);
    });
    return;
  }
  // Kept per thread so that a decode loop does not allocate on every call.
  thread_local Q8Activations scratch;
  scratch.quantize(inp, T, w.cols);
  matmul_q8(out, scratch, w, bias);
}

}  // namespace minitx::quant
