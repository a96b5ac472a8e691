// Philox4x32-10 (Salmon et al., SC'11) as a host/device function, so that a CUDA kernel draws the
// very numbers CounterRng gives on the CPU (rng.h wraps this one implementation). Integer
// arithmetic only: every compiler and both devices give the same words.
#pragma once
#include <cstdint>

#include "minitx/core/host_device.h"

namespace minitx::philox {

// Constants of the reference implementation (Random123).
inline constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

struct Block {
  std::uint32_t v[4];
};

// Ten rounds of the bijection on counter `c` keyed by (k0, k1).
MINITX_HD Block philox4x32_10(Block c, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c.v[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c = Block{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

// CounterRng's block: the counter is (index, stream), the key is the seed, low words first.
MINITX_HD Block counter_block(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return philox4x32_10(Block{{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                              static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

}  // namespace minitx::philox
