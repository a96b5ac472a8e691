// Philox4x32-10 against the known-answer vectors of the Random123 distribution, and the
// properties the rest of minitx relies on: pure function of (seed, stream, index), ranges.
#include <doctest/doctest.h>

#include <cmath>

#include "minitx/core/rng.h"

TEST_CASE("philox4x32_10 matches the Random123 known answers") {
  using minitx::Philox4x32;
  CHECK(minitx::philox4x32_10({0, 0, 0, 0}, {0, 0}) == Philox4x32{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(minitx::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        Philox4x32{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(minitx::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        Philox4x32{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("CounterRng is a pure function of seed, stream and index") {
  const minitx::CounterRng a(42, 1), b(42, 1), other_stream(42, 2), other_seed(43, 1);
  CHECK(a.bits64(5) == b.bits64(5));
  CHECK(a.bits64(5) != a.bits64(6));
  CHECK(a.bits64(5) != other_stream.bits64(5));
  CHECK(a.bits64(5) != other_seed.bits64(5));
}

TEST_CASE("CounterRng ranges and moments") {
  const minitx::CounterRng rng(1, 0);
  double sum = 0, sum_sq = 0, usum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = rng.uniform(static_cast<std::uint64_t>(i));
    REQUIRE(u > 0.0f);
    REQUIRE(u < 1.0f);
    usum += u;
    const double x = rng.normal(static_cast<std::uint64_t>(i));
    REQUIRE(std::isfinite(x));
    sum += x;
    sum_sq += x * x;
    REQUIRE(rng.below(static_cast<std::uint64_t>(i), 10) < 10);
  }
  CHECK(std::abs(usum / n - 0.5) < 0.01);
  CHECK(std::abs(sum / n) < 0.02);
  CHECK(std::abs(sum_sq / n - 1.0) < 0.02);
}
