// Column sums over many rows, in an order fixed by the shape: rows are cut into blocks of
// kRowBlock, each block summed in row order, then the block sums added in block order.
// Private to src/backend/cpu.
#pragma once
#include <cstddef>
#include <vector>

namespace minitx::cpu::detail {

inline constexpr std::size_t kRowBlock = 64;

// out[c] += Σ_n value(n, c) for c in [0, C). `value` is called once per (n, c).
template <class Value>
void accumulate_column_sums(float* out, std::size_t N, std::size_t C, const Value& value);

}  // namespace minitx::cpu::detail

#include "minitx/core/threads.h"

namespace minitx::cpu::detail {

template <class Value>
void accumulate_column_sums(float* out, std::size_t N, std::size_t C, const Value& value) {
  const std::size_t blocks = (N + kRowBlock - 1) / kRowBlock;
  // Reused across calls: a fresh buffer of this size would be mapped and faulted in every time.
  // (A reference, so that the workers use the calling thread's buffer, not their own.)
  thread_local std::vector<float> buffer;
  std::vector<float>& partial = buffer;
  partial.assign(blocks * C, 0.0f);
  parallel_for(blocks, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      float* p = partial.data() + b * C;
      const std::size_t n_end = std::min(N, (b + 1) * kRowBlock);
      for (std::size_t n = b * kRowBlock; n < n_end; ++n)
        for (std::size_t c = 0; c < C; ++c) p[c] += value(n, c);
    }
  });
  for (std::size_t b = 0; b < blocks; ++b)
    for (std::size_t c = 0; c < C; ++c) out[c] += partial[b * C + c];
}

}  // namespace minitx::cpu::detail
