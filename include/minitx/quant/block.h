// Quantized block formats. Each block covers QK consecutive weights of one row (blocks never
// cross rows) and holds an fp16 scale `d` plus packed integers. The reference functions in
// quantize.h and dot.h define what the bits mean; every optimised kernel is tested against them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minitx::quant {

inline constexpr std::size_t QK = 32;  // weights per block, for every format here

// q8_0: x[i] ≈ d * qs[i]. Our quantizers write qs in [-127, 127]; the kernels also accept -128 in
// weights (files from elsewhere), but activations must stay within ±127 (see dot.h).
struct block_q8_0 {
  std::uint16_t d;     // fp16 bits
  std::int8_t qs[QK];
};
static_assert(sizeof(block_q8_0) == 2 + QK, "q8_0 is 34 bytes per 32 weights (8.5 bits each)");

// q4_0: x[i] ≈ d * (nibble(i) - 8), nibbles 0..15. Byte j holds element j in its low nibble and
// element j + 16 in its high nibble, so one 16-byte load unpacks into elements 0..15 and 16..31
// with a mask and a shift and no shuffles.
struct block_q4_0 {
  std::uint16_t d;     // fp16 bits
  std::uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q4_0) == 2 + QK / 2, "q4_0 is 18 bytes per 32 weights (4.5 bits each)");

// Nibble access, the one definition of the q4_0 packing.
inline int q4_0_get(const block_q4_0& b, std::size_t i) {
  const unsigned byte = b.qs[i % (QK / 2)];
  return static_cast<int>(i < QK / 2 ? byte & 0x0F : byte >> 4) - 8;
}
// `q` in [-8, 7]; the other nibble of the byte is kept.
inline void q4_0_set(block_q4_0& b, std::size_t i, int q) {
  const unsigned nibble = static_cast<unsigned>(q + 8) & 0x0F;
  std::uint8_t& byte = b.qs[i % (QK / 2)];
  byte = static_cast<std::uint8_t>(i < QK / 2 ? (byte & 0xF0) | nibble : (byte & 0x0F) | (nibble << 4));
}

}  // namespace minitx::quant
