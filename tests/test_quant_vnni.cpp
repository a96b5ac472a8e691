// The AVX-512 VNNI kernels against their AVX2 twins: bit for bit, since dispatch.cpp picks one
// or the other by CPU and MINITX_GEMM_ISA and results must not depend on that choice.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/matmul.h"
#include "quant_samples.h"

#if defined(__AVX2__)
using namespace minitx::quant;
using namespace minitx::quant::testing;
using minitx::cpu::GemmIsa;

namespace {

// Row lengths in values, with and without a tail past the last whole group of 8 blocks.
constexpr std::size_t kSizes[] = {32, 256, 288, 4096, 4128};

std::uint64_t bits(std::uint64_t seed, std::uint64_t i) { return mix(seed * 0x100000001B3ull + i); }

// A random fp16 scale of either sign, over several binades.
std::uint16_t random_scale(std::uint64_t seed, std::uint64_t i) {
  return fp32_to_fp16(uniform(seed, i) * static_cast<float>(1u << (bits(seed, i + 7) % 12)) / 64.0f);
}

// Mostly uniform bytes; some blocks all at one extreme, some alternating between both.
std::int8_t random_q8(std::uint64_t seed, std::size_t b, std::size_t i, int lo) {
  switch (b % 5) {
    case 1: return static_cast<std::int8_t>(lo);
    case 2: return 127;
    case 3: return static_cast<std::int8_t>(i % 2 ? lo : 127);
    default: return static_cast<std::int8_t>(lo + static_cast<int>(bits(seed, b * QK + i) % (128u - lo)));
  }
}

// Weights may hold -128 (files from elsewhere), activations only -127..127 (dot.h).
std::vector<block_q8_0> q8_blocks(std::size_t count, std::uint64_t seed, int lo) {
  std::vector<block_q8_0> v(count);
  for (std::size_t b = 0; b < count; ++b) {
    v[b].d = random_scale(seed, b);
    for (std::size_t i = 0; i < QK; ++i) v[b].qs[i] = random_q8(seed, b, i, lo);
  }
  return v;
}

// Nibbles: uniform, all 0, all 15, or alternating 0 and 15.
std::vector<block_q4_0> q4_blocks(std::size_t count, std::uint64_t seed) {
  std::vector<block_q4_0> v(count);
  for (std::size_t b = 0; b < count; ++b) {
    v[b].d = random_scale(seed, b);
    for (std::size_t i = 0; i < QK / 2; ++i) {
      const auto random = static_cast<std::uint8_t>(bits(seed, b * QK + i));
      const std::uint8_t byte[] = {random, 0x00, 0xFF, static_cast<std::uint8_t>(i % 2 ? 0x0F : 0xF0), random};
      v[b].qs[i] = byte[b % 5];
    }
  }
  return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

template <class Block, class Dot1, class Dot4>
void compare(const std::vector<Block>& w, std::size_t n, std::size_t stride, const Q8Row& x, Dot1 avx2, Dot1 vnni,
             Dot4 avx2_4, Dot4 vnni_4) {
  for (std::size_t r = 0; r < 4; ++r) {
    CAPTURE(r);
    REQUIRE(same_bits(avx2(n, w.data() + r * stride, x), vnni(n, w.data() + r * stride, x)));
  }
  float a[4], v[4];
  avx2_4(n, w.data(), stride, x, a);
  vnni_4(n, w.data(), stride, x, v);
  for (std::size_t r = 0; r < 4; ++r) {
    CAPTURE(r);
    REQUIRE(same_bits(a[r], v[r]));
  }
}

// Without VNNI there is nothing to compare: doctest counts these as skipped, not as passed.
const auto kNeedsVnni = doctest::skip(!cpu_has_avx512_vnni());

// Restores the kernel choice that a test pinned.
struct PinnedIsa {
  GemmIsa saved = minitx::cpu::gemm_isa();
  ~PinnedIsa() { minitx::cpu::set_gemm_isa(saved); }
};

}  // namespace

TEST_CASE("quant vnni: the VNNI dot products give the AVX2 kernels' bits" * kNeedsVnni) {
  for (std::size_t n : kSizes) {
    const std::size_t nb = n / QK, stride = nb + 3;  // rows not adjacent
    CAPTURE(n);
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      CAPTURE(seed);
      const std::vector<block_q8_0> xs = q8_blocks(nb, 100 + seed, -127);
      Q8Activations act;
      act.assign(xs.data(), 1, n);
      const Q8Row x = act.row(0);
      compare(q8_blocks(4 * stride, 200 + seed, -128), n, stride, x, vec_dot_q8_0_q8_0_avx2, vec_dot_q8_0_q8_0_vnni,
              vec_dot4_q8_0_q8_0_avx2, vec_dot4_q8_0_q8_0_vnni);
      compare(q4_blocks(4 * stride, 300 + seed), n, stride, x, vec_dot_q4_0_q8_0_avx2, vec_dot_q4_0_q8_0_vnni,
              vec_dot4_q4_0_q8_0_avx2, vec_dot4_q4_0_q8_0_vnni);
    }
  }
}

TEST_CASE("quant vnni: MINITX_GEMM_ISA=avx2 chooses the AVX2 quantized kernels") {
  PinnedIsa pin;
  minitx::cpu::set_gemm_isa(GemmIsa::avx2);
  CHECK((dot_kernels().q8_0 == &vec_dot_q8_0_q8_0_avx2));
  CHECK((dot_kernels().q4_0_rows4 == &vec_dot4_q4_0_q8_0_avx2));
}

TEST_CASE("quant vnni: MINITX_GEMM_ISA=avx512 chooses the VNNI quantized kernels" * kNeedsVnni) {
  PinnedIsa pin;
  minitx::cpu::set_gemm_isa(GemmIsa::avx512);
  CHECK((dot_kernels().q8_0 == &vec_dot_q8_0_q8_0_vnni));
  CHECK((dot_kernels().q4_0_rows4 == &vec_dot4_q4_0_q8_0_vnni));
}

TEST_CASE("quant vnni: quantized products give the same bits with either kernel" * kNeedsVnni) {
  PinnedIsa pin;
  // Rows in groups of four and single (thread chunks of 16); T from 4 takes the prompt kernel.
  const std::size_t OC = 70;
  for (std::size_t C : kSizes) {
    for (std::size_t T : {1, 3, 4, 7, 128}) {
      CAPTURE(C);
      CAPTURE(T);
      const std::vector<block_q8_0> xs = q8_blocks(T * C / QK, 400 + T, -127);
      Q8Activations act;
      act.assign(xs.data(), T, C);
      const std::vector<block_q8_0> w8 = q8_blocks(OC * C / QK, 500 + C, -128);
      const std::vector<block_q4_0> w4 = q4_blocks(OC * C / QK, 600 + C);
      const QMatrix m8{Format::q8_0, OC, C, reinterpret_cast<const std::byte*>(w8.data())};
      const QMatrix m4{Format::q4_0, OC, C, reinterpret_cast<const std::byte*>(w4.data())};
      for (const QMatrix& m : {m8, m4}) {
        CAPTURE(format_name(m.format));
        std::vector<float> wide(T * OC), narrow(T * OC);
        minitx::cpu::set_gemm_isa(GemmIsa::avx512);
        matmul_q8(wide.data(), act, m, nullptr);
        minitx::cpu::set_gemm_isa(GemmIsa::avx2);
        matmul_q8(narrow.data(), act, m, nullptr);
        REQUIRE(std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(float)) == 0);
      }
    }
  }
}
#endif
