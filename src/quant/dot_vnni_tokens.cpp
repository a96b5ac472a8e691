// The prompt kernel (matmul.cpp): four weight rows against T activation rows. The integer sums
// of a group of 8 blocks need no reduction tree when each register holds one 4-byte slice of
// all 8 blocks (lane i for block i): 8 vpdpbusd accumulate s_i straight into lane i, the lane
// add_group wants it in. Turning blocks into slices is an 8×8 transpose, so it is done once per
// product for the activations (prepare_tokens_vnni) and once per four rows for the weights, which
// every token then reuses. Per output, the float operations are dot_rows<4>'s (dot_vnni.cpp).
#include "dot_vnni.h"

#if defined(__AVX2__)
#include <cstdint>
#include <vector>

#include "minitx/core/error.h"

namespace minitx::quant {

namespace {

using detail::add_group;
using detail::horizontal_sum;
using vnni::add_tails;
using vnni::widened_scales;

constexpr std::size_t kSlices = 8, kGroupBytes = kSlices * 32;  // one group of one row, as slices

// c[k] lane i = 4-byte word k of r[i].
MINITX_VNNI inline void transpose(const __m256i r[8], __m256i c[8]) {
  __m256i t[8], u[8];
#pragma GCC unroll 8
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 2; ++i)
#pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      u[4 * i + 2 * h] = _mm256_unpacklo_epi64(t[4 * i + h], t[4 * i + h + 2]);
      u[4 * i + 2 * h + 1] = _mm256_unpackhi_epi64(t[4 * i + h], t[4 * i + h + 2]);
    }
#pragma GCC unroll 8
  for (int k = 0; k < 4; ++k) {
    c[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    c[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

MINITX_VNNI inline void store_slices(const __m256i r[8], std::byte* at) {
  __m256i c[8];
  transpose(r, c);
#pragma GCC unroll 8
  for (std::size_t k = 0; k < kSlices; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(at + 32 * k), c[k]);
}

// A weight block's 32 values as unsigned bytes in element order (see vnni::Group for the offsets).
MINITX_VNNI inline __m256i unsigned_bytes(const block_q8_0& x) {
  return _mm256_xor_si256(vnni::load32(x.qs), _mm256_set1_epi8(-128));
}
MINITX_VNNI inline __m256i unsigned_bytes(const block_q4_0& x) {
  const __m128i packed = vnni::load16(x.qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

std::byte* aligned(std::vector<std::byte>& buffer, std::size_t bytes) {
  buffer.resize(bytes + 64);
  return buffer.data() + (64 - reinterpret_cast<std::uintptr_t>(buffer.data()) % 64);
}

template <class Block>
MINITX_VNNI void dot_rows4_tokens(std::size_t n, const Block* x, std::size_t stride, const Q8Activations& y,
                                  const std::byte* slices, float* out) {
  MINITX_CHECK(n % QK == 0 && n == y.cols(), "vec_dot: {} values for activations of {}", n, y.cols());
  const std::size_t blocks = n / QK, groups = blocks / 8;
  // Per group: four rows of slices, then their widened scales (scales8's values).
  constexpr std::size_t kRowBytes = kGroupBytes + 32, kQuadBytes = 4 * kRowBytes;
  thread_local std::vector<std::byte> buffer;
  std::byte* const w = aligned(buffer, groups * kQuadBytes);
  for (std::size_t g = 0; g < groups; ++g)
    for (std::size_t r = 0; r < 4; ++r) {
      const Block* row = x + r * stride + 8 * g;
      __m256i bytes[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) bytes[i] = unsigned_bytes(row[i]);
      std::byte* at = w + g * kQuadBytes + r * kRowBytes;
      store_slices(bytes, at);
      _mm256_store_ps(reinterpret_cast<float*>(at + kGroupBytes), widened_scales(row));
    }
  constexpr int kShift = std::is_same_v<Block, block_q4_0> ? 3 : 7;  // 8·Σqy or 128·Σqy
  for (std::size_t t = 0; t < y.rows(); ++t) {
    const Q8Row yt = y.row(t);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (std::size_t g = 0; g < groups; ++g) {
      const auto* a = reinterpret_cast<const __m256i*>(slices + (t * groups + g) * kGroupBytes);
      __m256i act[kSlices];
#pragma GCC unroll 8
      for (std::size_t k = 0; k < kSlices; ++k) act[k] = _mm256_load_si256(a + k);
      const __m256i sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yt.sums + 8 * g));
      const __m256i offset = _mm256_slli_epi32(sums, kShift);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < 4; ++r) {
        const std::byte* at = w + g * kQuadBytes + r * kRowBytes;
        const auto* ws = reinterpret_cast<const __m256i*>(at);
        // Two chains, to halve the wait on vpdpbusd's latency.
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (std::size_t k = 0; k < kSlices; k += 2) {
          even = _mm256_dpbusd_epi32(even, _mm256_load_si256(ws + k), act[k]);
          odd = _mm256_dpbusd_epi32(odd, _mm256_load_si256(ws + k + 1), act[k + 1]);
        }
        const __m256i s = _mm256_sub_epi32(_mm256_add_epi32(even, odd), offset);
        acc[r] = add_group(acc[r], _mm256_load_ps(reinterpret_cast<const float*>(at + kGroupBytes)), yt, 8 * g, s);
      }
    }
    float* o = out + 4 * t;
    for (std::size_t r = 0; r < 4; ++r) o[r] = horizontal_sum(acc[r]);
    add_tails(8 * groups, blocks, x, stride, yt, o);
  }
}

}  // namespace

MINITX_VNNI const std::byte* prepare_tokens_vnni(const Q8Activations& y, std::vector<std::byte>& buffer) {
  const std::size_t groups = y.cols() / QK / 8;
  std::byte* const slices = aligned(buffer, y.rows() * groups * kGroupBytes);
  for (std::size_t t = 0; t < y.rows(); ++t) {
    const Q8Row yt = y.row(t);
    for (std::size_t g = 0; g < groups; ++g) {
      __m256i bytes[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) bytes[i] = vnni::load32(yt.blocks[8 * g + i].qs);
      store_slices(bytes, slices + (t * groups + g) * kGroupBytes);
    }
  }
  return slices;
}

MINITX_VNNI void vec_dot4xT_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride,
                                           const Q8Activations& y, const std::byte* slices, float* out) {
  dot_rows4_tokens(n, x, stride, y, slices, out);
}

MINITX_VNNI void vec_dot4xT_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride,
                                           const Q8Activations& y, const std::byte* slices, float* out) {
  dot_rows4_tokens(n, x, stride, y, slices, out);
}

}  // namespace minitx::quant
#endif
