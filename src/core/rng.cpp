#include "minitx/core/rng.h"

#include <cmath>
#include <numbers>

namespace minitx {
namespace {

// Constants of the reference implementation (Random123).
constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}

}  // namespace

Philox4x32 philox4x32_10(Philox4x32 c, std::array<std::uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c[0], hi0, lo0);
    mulhilo(kMul1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ key[0], lo1, hi0 ^ c[3] ^ key[1], lo0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return c;
}

Philox4x32 CounterRng::block(std::uint64_t index) const {
  return philox4x32_10({static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                        static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                       {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
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
