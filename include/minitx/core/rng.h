// Counter-based randomness: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11). A value is a pure function of (seed, stream, index), so the numbers a tensor
// or a batch gets never depend on thread count, call order or how much was drawn before.
#pragma once
#include <array>
#include <cstdint>

namespace minitx {

using Philox4x32 = std::array<std::uint32_t, 4>;

// One Philox4x32-10 block: 10 rounds of the bijection keyed by `key`.
Philox4x32 philox4x32_10(Philox4x32 counter, std::array<std::uint32_t, 2> key);

// Streams separate independent uses of one seed (initialisation of each tensor, batches, sampling).
class CounterRng {
 public:
  CounterRng(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}

  // Four 32-bit words for `index`; the counter is (index, stream), the key is the seed.
  Philox4x32 block(std::uint64_t index) const;
  std::uint64_t bits64(std::uint64_t index) const;
  // Uniform in (0, 1), 24 random bits, never exactly 0 or 1.
  float uniform(std::uint64_t index) const;
  // Uniform in [0, n) for n >= 1 (64-bit draw; the modulo bias is below 2^-40 for n < 2^24).
  std::uint64_t below(std::uint64_t index, std::uint64_t n) const;
  // Standard normal by Box-Muller on the first two words, computed in double.
  float normal(std::uint64_t index) const;

 private:
  std::uint64_t seed_, stream_;
};

}  // namespace minitx
