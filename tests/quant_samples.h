// Test data for the quantization tests: counter-based (value i of stream `seed` depends only on
// both), so every run and every thread count sees the same numbers.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace minitx::quant::testing {

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1).
inline float uniform(std::uint64_t seed, std::uint64_t i) {
  return static_cast<float>(static_cast<double>(mix(seed * 0x100000001B3ull + i) >> 11) * 0x1p-52 - 1.0);
}

inline float gaussian(std::uint64_t seed, std::uint64_t i) {
  const double u1 = (static_cast<double>(mix(seed * 0x100000001B3ull + 2 * i) >> 11) + 1.0) * 0x1p-53;
  const double u2 = static_cast<double>(mix(seed * 0x100000001B3ull + 2 * i + 1) >> 11) * 0x1p-53;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// Rows that stress the quantizers: gaussian weights, outliers, blocks of zeros, a constant
// block, ± pairs of equal magnitude, values so small the scale is subnormal in fp16, and
// values whose scale lands on fp16 rounding boundaries.
inline std::vector<float> awkward_values(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t block = i / 32, lane = i % 32;
    const float g = gaussian(seed, i);
    switch (block % 8) {
      case 0: v[i] = 0.02f * g; break;
      case 1: v[i] = lane == 7 ? 3.0f : 0.01f * g; break;                 // one outlier
      case 2: v[i] = 0.0f; break;
      case 3: v[i] = 0.125f; break;                                        // constant
      case 4: v[i] = lane % 2 ? -0.5f : 0.5f; break;                       // +m and -m
      case 5: v[i] = 1e-6f * g; break;                                     // subnormal scales
      case 6: v[i] = (lane == 3 ? -1.0f : lane == 9 ? 0.97f : 0.3f * g); break;  // opposite side near m
      default: v[i] = 1000.0f * uniform(seed, i); break;
    }
  }
  return v;
}

}  // namespace minitx::quant::testing
