// The one-, four- and many-row AVX-512 VNNI kernels: dot_avx2.cpp's loop, with dot_vnni.h's integer
// sums and scale loads.
#include "dot_vnni.h"

#if defined(__AVX2__)
#include <cstdint>
#include <vector>

#include "minitx/core/error.h"

namespace minitx::quant {

namespace {

using detail::add_group;
using detail::add_tail;
using detail::horizontal_sum;
using vnni::activation;
using vnni::block_sum;
using vnni::block_sums;
using vnni::Group;
using vnni::widened_scales;

// R weight rows against one activation row, in dot_avx2.cpp's float order.
template <std::size_t R, class Block>
MINITX_VNNI inline void dot_rows(std::size_t n, const Block* x, std::size_t stride, const Q8Row& y, float* out) {
  MINITX_CHECK(n % QK == 0, "vec_dot: {} values is not a whole number of {}-value blocks", n, QK);
  const std::size_t blocks = n / QK;
  __m256 acc[R];
  for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  std::size_t b = 0;
  for (; b + 8 <= blocks; b += 8) {
    const Group g = activation<Block>(y, b);
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      const Block* row = x + r * stride + b;
      acc[r] = add_group(acc[r], widened_scales(row), y, b, block_sums(row, g));
    }
  }
  for (std::size_t r = 0; r < R; ++r) out[r] = horizontal_sum(acc[r]);
  for (; b < blocks; ++b)
    for (std::size_t r = 0; r < R; ++r) {
      const Block& block = x[r * stride + b];
      out[r] = add_tail(out[r], block.d, y, b, block_sum(block, y.blocks[b], y.sums[b]));
    }
}

// `rows` weight rows against one activation row, each four as dot_rows<4>, the rest as
// dot_rows<1>. One call per thread's share of a product: the activation's groups are built once
// (not once per four rows) and the per-call costs are paid once.
template <class Block>
MINITX_VNNI void dot_many(std::size_t n, const Block* x, std::size_t stride, std::size_t rows, const Q8Row& y,
                          float* out) {
  MINITX_CHECK(n % QK == 0, "vec_dot: {} values is not a whole number of {}-value blocks", n, QK);
  const std::size_t blocks = n / QK, groups = blocks / 8;
  constexpr std::size_t kGroupBytes = 5 * 64;  // Group: 4 registers and the offsets, padded
  thread_local std::vector<std::byte> buffer;
  buffer.resize(groups * kGroupBytes + 64);
  std::byte* const cache = buffer.data() + (64 - reinterpret_cast<std::uintptr_t>(buffer.data()) % 64);
  for (std::size_t g = 0; g < groups; ++g) {
    const Group group = activation<Block>(y, 8 * g);
    std::byte* at = cache + g * kGroupBytes;
    for (int j = 0; j < 4; ++j) _mm512_store_si512(at + 64 * j, group.y[j]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(at + 256), group.offset);
  }
  std::size_t o = 0;
  for (; o + 4 <= rows; o += 4) {
    const Block* x4 = x + o * stride;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (std::size_t g = 0; g < groups; ++g) {
      const std::byte* at = cache + g * kGroupBytes;
      Group group;
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) group.y[j] = _mm512_load_si512(at + 64 * j);
      group.offset = _mm256_load_si256(reinterpret_cast<const __m256i*>(at + 256));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < 4; ++r) {
        const Block* row = x4 + r * stride + 8 * g;
        acc[r] = add_group(acc[r], widened_scales(row), y, 8 * g, block_sums(row, group));
      }
    }
    for (std::size_t r = 0; r < 4; ++r) out[o + r] = horizontal_sum(acc[r]);
    vnni::add_tails(8 * groups, blocks, x4, stride, y, out + o);
  }
  for (; o < rows; ++o) dot_rows<1>(n, x + o * stride, 0, y, out + o);
}

}  // namespace

MINITX_VNNI void vec_dotN_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride, std::size_t rows,
                                         const Q8Row& y, float* out) {
  dot_many(n, x, stride, rows, y, out);
}

MINITX_VNNI void vec_dotN_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride, std::size_t rows,
                                         const Q8Row& y, float* out) {
  dot_many(n, x, stride, rows, y, out);
}

bool cpu_has_avx512_vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return has;
}

MINITX_VNNI float vec_dot_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, const Q8Row& y) {
  float out;
  dot_rows<1>(n, x, 0, y, &out);
  return out;
}

MINITX_VNNI float vec_dot_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, const Q8Row& y) {
  float out;
  dot_rows<1>(n, x, 0, y, &out);
  return out;
}

MINITX_VNNI void vec_dot4_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y,
                                         float* out) {
  dot_rows<4>(n, x, stride, y, out);
}

MINITX_VNNI void vec_dot4_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y,
                                         float* out) {
  dot_rows<4>(n, x, stride, y, out);
}

}  // namespace minitx::quant
#endif
