#include "minitx/core/rng.h"

#include <cmath>
#include <numbers>

#include "minitx/core/philox.h"

namespace minitx {

// One implementation for host and device (philox.h); this wrapper keeps rng.h's std::array API.
Philox4x32 philox4x32_10(Philox4x32 c, std::array<std::uint32_t, 2> key) {
  const philox::Block r = philox::philox4x32_10(philox::Block{{c[0], c[1], c[2], c[3]}}, key[0], key[1]);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

Philox4x32 CounterRng::block(std::uint64_t index) const {
  const philox::Block r = philox::counter_block(seed_, stream_, index);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

std::uint64_t CounterRng::bits64(std::uint64_t index) const {
  const Philox4x32 r = block(index);
  return (static_cast<std::uint64_t>(r[1]) << 32) | r[0];
}

float CounterRng::uniform(std::uint64_t index) const {
  const std::uint32_t top24 = block(index)[0] >> 8;
  return (static_cast<float>(top24) + 0.5f) * 0x1p-24f;
}

std::uint64_t CounterRng::below(std::uint64_t index, std::uint64_t n) const { return bits64(index) % n; }

float CounterRng::normal(std::uint64_t index) const {
  const Philox4x32 r = block(index);
  // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
  const double u1 = (static_cast<double>(r[0]) + 1.0) * 0x1p-32;
  const double u2 = static_cast<double>(r[1]) * 0x1p-32;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

}  // namespace minitx
