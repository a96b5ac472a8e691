#include "minitx/quant/fp16.h"

#include <bit>

namespace minitx::quant {

// Round `value >> shift` to nearest, ties to even, looking at the bits shifted out.
static std::uint32_t shift_round_even(std::uint32_t value, unsigned shift) {
  const std::uint32_t kept = value >> shift;
  const std::uint32_t rest = value & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

std::uint16_t fp32_to_fp16_ref(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000;
  const std::uint32_t abs = bits & 0x7FFFFFFF;
  std::uint32_t half;
  if (abs > 0x7F800000) {
    half = 0x7E00 | ((abs >> 13) & 0x1FF);  // NaN: quiet, top payload bits kept (as F16C does)
  } else if (abs >= 0x477FF000) {
    half = 0x7C00;  // 65520 and up round to infinity
  } else if (abs >= 0x38800000) {
    // Normal in fp16: rebias the exponent (127 -> 15); a carry out of the mantissa correctly
    // bumps the exponent.
    half = shift_round_even(abs - (112u << 23), 13);
  } else {
    // Subnormal in fp16: the result counts units of 2^-24.
    const std::uint32_t exponent = abs >> 23;
    const std::uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
    const std::uint32_t shift = 126 - exponent;  // value = mantissa * 2^-24 / 2^shift
    half = shift > 24 ? 0 : shift_round_even(mantissa, shift);
  }
  return static_cast<std::uint16_t>(sign | half);
}

float fp16_to_fp32_ref(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1F;
  const std::uint32_t mantissa = half & 0x3FF;
  if (exponent == 0x1F) {
    // Infinity, or a NaN made quiet (as F16C does) with its payload kept.
    const std::uint32_t quiet = mantissa != 0 ? 0x400000 : 0;
    return std::bit_cast<float>(sign | 0x7F800000 | quiet | (mantissa << 13));
  }
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in fp32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

}  // namespace minitx::quant
