#include "minitx/quant/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/quant/quantize.h"

namespace minitx::quant {

std::size_t QTensor::rows() const {
  std::size_t rows = 1;
  for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return rows;
}

QMatrix QTensor::slice(std::size_t i) const {
  MINITX_CHECK(shape.size() >= 3, "{}: slice needs a stack of matrices (rank 3 or more), the rank is {}", name, shape.size());
  MINITX_CHECK(i < shape[0], "{}: slice {} of {}", name, i, shape[0]);
  const std::size_t rows_each = rows() / shape[0];
  return {format, rows_each, cols(), data.data() + i * rows_each * row_bytes(format, cols())};
}

std::size_t tensor_bytes(Format format, std::span<const std::size_t> shape, const std::string& what) {
  MINITX_CHECK(!shape.empty() && shape.size() <= kMaxRank, "{}: rank {} is not supported (1 to {})", what, shape.size(),
               kMaxRank);
  // Limits far beyond any model keep every product below 2^63.
  constexpr std::size_t kMaxElems = std::size_t{1} << 48;
  std::size_t elems = 1;
  for (std::size_t dim : shape) {
    MINITX_CHECK(dim >= 1 && dim <= kMaxElems, "{}: dimension {} is outside 1 to 2^48", what, dim);
    elems *= dim;
    MINITX_CHECK(elems <= kMaxElems, "{}: more than 2^48 elements", what);
  }
  const FormatInfo& info = format_info(format);
  MINITX_CHECK(shape.back() % info.block_elems == 0, "{}: {} rows need a multiple of {} values, the last dimension is {}",
               what, info.name, info.block_elems, shape.back());
  return elems / info.block_elems * info.block_bytes;
}

QTensor quantize_tensor(std::string name, std::vector<std::size_t> shape, std::span<const float> values, Format format) {
  QTensor t{std::move(name), format, std::move(shape), {}};
  t.data.resize(tensor_bytes(format, t.shape, t.name));
  MINITX_CHECK(values.size() == t.numel(), "{}: expected {} values for its shape, got {}", t.name, t.numel(),
               values.size());
  // The largest magnitude whose scale still fits in fp16: 127 (q8_0) or 7.5 (q4_0) steps of 65504.
  const float limit = format == Format::q8_0 ? 127.0f * 65504.0f
                      : format == Format::q4_0 ? 7.5f * 65504.0f
                                               : std::numeric_limits<float>::max();
  for (std::size_t i = 0; i < values.size(); ++i)
    MINITX_CHECK(std::isfinite(values[i]) && std::fabs(values[i]) <= limit,
                 "{}: value {} at index {} cannot be stored as {}", t.name, values[i], i, format_name(format));
  const std::size_t cols = t.cols(), stride = row_bytes(format, cols);
  std::byte* out = t.data.data();
  const float* in = values.data();
  parallel_for(t.rows(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      std::byte* row = out + r * stride;
      const float* x = in + r * cols;
      switch (format) {
        case Format::f32: std::memcpy(row, x, stride); break;
        case Format::q8_0: quantize_row_q8_0_ref(x, reinterpret_cast<block_q8_0*>(row), cols); break;
        case Format::q4_0: quantize_row_q4_0_ref(x, reinterpret_cast<block_q4_0*>(row), cols); break;
      }
    }
  });
  return t;
}

std::vector<float> dequantize_tensor(const QTensor& t) {
  const std::size_t expected = tensor_bytes(t.format, t.shape, t.name);
  MINITX_CHECK(t.data.size() == expected, "{}: holds {} bytes, its format and shape need {}", t.name, t.data.size(),
               expected);
  std::vector<float> values(t.numel());
  const std::size_t cols = t.cols(), stride = row_bytes(t.format, cols);
  for (std::size_t r = 0; r < t.rows(); ++r) {
    const std::byte* row = t.data.data() + r * stride;
    float* y = values.data() + r * cols;
    switch (t.format) {
      case Format::f32: std::memcpy(y, row, stride); break;
      case Format::q8_0: dequantize_row_q8_0_ref(reinterpret_cast<const block_q8_0*>(row), y, cols); break;
      case Format::q4_0: dequantize_row_q4_0_ref(reinterpret_cast<const block_q4_0*>(row), y, cols); break;
    }
  }
  return values;
}

}  // namespace minitx::quant
