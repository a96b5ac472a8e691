#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "minitx/quant/fp16.h"

using namespace minitx::quant;

TEST_CASE("quant fp16: every half converts to fp32 exactly, as F16C does, and back") {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    const float ref = fp16_to_fp32_ref(half);
    REQUIRE(std::bit_cast<std::uint32_t>(ref) == std::bit_cast<std::uint32_t>(fp16_to_fp32(half)));
    if (!std::isnan(ref)) {
      REQUIRE(fp32_to_fp16_ref(ref) == half);
      REQUIRE(fp32_to_fp16(ref) == half);
    }
  }
  CHECK(fp16_to_fp32_ref(0x3C00) == 1.0f);
  CHECK(fp16_to_fp32_ref(0x7BFF) == 65504.0f);
  CHECK(fp16_to_fp32_ref(0x0001) == 0x1p-24f);
  CHECK(std::isinf(fp16_to_fp32_ref(0xFC00)));
}

TEST_CASE("quant fp16: fp32 rounds to nearest, ties to even, bit for bit like F16C") {
  // A stride through all 2^32 bit patterns (every sign, exponent and NaN class) ...
  for (std::uint64_t bits = 0; bits < (1ull << 32); bits += 4093) {
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
    REQUIRE(fp32_to_fp16_ref(f) == fp32_to_fp16(f));
  }
  // ... and every exact tie and its neighbours, where rounding decides.
  for (std::uint32_t h = 0; h < 0x7C00; ++h) {
    const std::uint32_t lo = std::bit_cast<std::uint32_t>(fp16_to_fp32_ref(static_cast<std::uint16_t>(h)));
    const std::uint32_t hi = std::bit_cast<std::uint32_t>(fp16_to_fp32_ref(static_cast<std::uint16_t>(h + 1)));
    const std::uint32_t mid = lo + (hi - lo) / 2;
    for (std::uint32_t bits : {mid - 1, mid, mid + 1})
      for (std::uint32_t sign : {0u, 0x80000000u}) {
        const float f = std::bit_cast<float>(bits | sign);
        REQUIRE(fp32_to_fp16_ref(f) == fp32_to_fp16(f));
      }
  }
  CHECK(fp32_to_fp16_ref(65519.0f) == 0x7BFF);
  CHECK(fp32_to_fp16_ref(65520.0f) == 0x7C00);     // the tie rounds to even: infinity
  CHECK(fp32_to_fp16_ref(0x1p-25f) == 0x0000);     // tie between 0 and the smallest subnormal
  CHECK(fp32_to_fp16_ref(0x1.8p-24f) == 0x0002);   // tie between 1 and 2 units: even
  CHECK(fp32_to_fp16_ref(1.0f + 0x1p-11f) == 0x3C00);
  CHECK(fp32_to_fp16_ref(1.0f + 0x1.8p-10f) == 0x3C02);
}
