#include "minitx/quant/matmul.h"

#include <vector>

#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"

namespace minitx::quant {

namespace {

// Rows of W handed out per parallel_for unit: enough work per chunk that waking a thread pays
// off, and chunk edges on whole cache lines of each output row.
constexpr std::size_t kRowGrain = 16;

// Input rows from which the prompt kernel (DotKernels::prepare_tokens) is used: it rearranges
// four weight rows before the first token, which 2 tokens did not repay (VNNI, 512x2048 and
// 2048x512: q4_0 58 -> 71 us) and 4 did (124 -> 92 us).
constexpr std::size_t kPromptRows = 4;

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
// less overhead per row), the rest of a chunk one by one. Kernel sets may offer two faster paths
// with the same bits (dot.h):
//  - prompts: four rows by all T tokens, each weight block rearranged once for all the tokens
//    into a form that needs no reduction tree (dot_vnni_tokens.cpp). (An AVX2 kernel that only
//    unpacked each weight block once for four tokens measured no faster: the products, not the
//    unpacking, bound it.)
//  - otherwise a thread's whole chunk per token in one call, which builds the token's blocks
//    once rather than once per four rows.
template <class Block, class Dot1, class DotRows, class DotMany, class DotTokens>
void quantized_rows(float* out, const Q8Activations& inp, const QMatrix& w, const float* bias, Dot1 dot1,
                    DotRows dot_rows, DotMany dot_many, const std::byte* slices, DotTokens dot_tokens) {
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
        if (slices == nullptr && dot_many != nullptr) {
          for (std::size_t t = 0; t < T; ++t) {
            float* row = out + t * w.rows;
            dot_many(C, weights + begin * stride, stride, end - begin, inp.row(t), row + begin);
            for (o = begin; o < end; ++o) store(t, o, row[o]);  // + 0.0f without a bias, as below
          }
          return;
        }
        if (slices != nullptr) {
          thread_local std::vector<float> block;
          block.resize(4 * T);
          for (; o + 4 <= end; o += 4) {
            dot_tokens(C, weights + o * stride, stride, inp, slices, block.data());
            for (std::size_t t = 0; t < T; ++t)
              for (std::size_t r = 0; r < 4; ++r) store(t, o + r, block[4 * t + r]);
          }
        }
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
  if (w.format != Format::q8_0 && w.format != Format::q4_0)
    fail("matmul_q8: weights in format {} take fp32 inputs (use matmul)", format_name(w.format));
  const DotKernels& k = dot_kernels();  // here, not in the workers: the choice may throw
  thread_local std::vector<std::byte> buffer;
  const bool prompt = k.prepare_tokens != nullptr && inp.rows() >= kPromptRows;
  const std::byte* slices = prompt ? k.prepare_tokens(inp, buffer) : nullptr;
  if (w.format == Format::q8_0)
    quantized_rows<block_q8_0>(out, inp, w, bias, k.q8_0, k.q8_0_rows4, k.q8_0_rowsN, slices, k.q8_0_rows4xT);
  else
    quantized_rows<block_q4_0>(out, inp, w, bias, k.q4_0, k.q4_0_rows4, k.q4_0_rowsN, slices, k.q4_0_rows4xT);
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
