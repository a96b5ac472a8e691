#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/quantize.h"

namespace minitx::quant {

void Q8Activations::quantize(const float* inp, std::size_t T, std::size_t C) {
  MINITX_CHECK(C % QK == 0, "quantize activations: {} columns is not a whole number of {}-value blocks", C, QK);
  rows_ = T;
  cols_ = C;
  blocks_.resize(T * (C / QK));
  scales_.resize(blocks_.size());
  sums_.resize(blocks_.size());
  const auto work = [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t) quantize_row_q8_0(inp + t * C, blocks_.data() + t * (C / QK), C);
    describe(begin, end);
  };
  if (T == 1)
    work(0, 1);  // one row: waking threads costs more than it saves
  else
    parallel_for(T, work);
}

void Q8Activations::assign(const block_q8_0* blocks, std::size_t T, std::size_t C) {
  MINITX_CHECK(C % QK == 0, "q8_0 activations: {} columns is not a whole number of {}-value blocks", C, QK);
  rows_ = T;
  cols_ = C;
  blocks_.assign(blocks, blocks + T * (C / QK));
  scales_.resize(blocks_.size());
  sums_.resize(blocks_.size());
  describe(0, T);
}

void Q8Activations::describe(std::size_t begin, std::size_t end) {
  for (std::size_t k = begin * (cols_ / QK); k < end * (cols_ / QK); ++k) {
    scales_[k] = fp16_to_fp32(blocks_[k].d);
    std::int32_t sum = 0;
    for (std::int8_t q : blocks_[k].qs) sum += q;
    sums_[k] = sum;
  }
}

}  // namespace minitx::quant
