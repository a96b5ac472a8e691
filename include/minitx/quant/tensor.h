// A named weight tensor in one storage format. Rows are the last dimension: a tensor of shape
// (d0, ..., dk) holds d0*...*d(k-1) rows of dk values, each row a whole number of blocks, so a
// (out, in) weight matrix quantized by rows feeds y = W x directly.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "minitx/quant/format.h"

namespace minitx::quant {

// A read-only view of a tensor as a matrix, what the kernels take.
struct QMatrix {
  Format format = Format::f32;
  std::size_t rows = 0, cols = 0;
  const std::byte* data = nullptr;  // rows * row_bytes(format, cols) bytes

  const std::byte* row(std::size_t r) const { return data + r * row_bytes(format, cols); }
};

struct QTensor {
  std::string name;
  Format format = Format::f32;
  std::vector<std::size_t> shape;  // rank 1 to 4, every dimension >= 1
  std::vector<std::byte> data;     // rows back to back, no padding

  std::size_t cols() const { return shape.empty() ? 0 : shape.back(); }
  std::size_t rows() const;
  std::size_t numel() const { return rows() * cols(); }
  QMatrix matrix() const { return {format, rows(), cols(), data.data()}; }
  // Matrix i along the first dimension of a stacked tensor, e.g. layer i of an (L, 3C, C) weight.
  QMatrix slice(std::size_t i) const;
};

inline constexpr std::size_t kMaxRank = 4;

// Bytes a tensor of this format and shape occupies. Throws, naming `what`, for a rank outside
// 1..4, a zero dimension, a size that overflows, or a row that is not a whole number of blocks.
std::size_t tensor_bytes(Format format, std::span<const std::size_t> shape, const std::string& what);

// Quantizes `values` (row-major, shape.product() of them) with the reference quantizers, rows
// in parallel (each row is independent, so the result does not depend on the thread count).
// Rejects non-finite values and magnitudes an fp16 scale cannot express, naming the tensor.
QTensor quantize_tensor(std::string name, std::vector<std::size_t> shape, std::span<const float> values, Format format);
std::vector<float> dequantize_tensor(const QTensor& tensor);

}  // namespace minitx::quant
