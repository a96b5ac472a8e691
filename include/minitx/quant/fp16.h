// IEEE half precision (fp16), the type of every block scale. The *_ref functions define the
// conversion in plain integer code (round to nearest, ties to even; infinities and NaNs kept);
// the plain names use F16C when the build targets it and must give the same bits (tested).
#pragma once
#include <cstdint>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace minitx::quant {

std::uint16_t fp32_to_fp16_ref(float value);
float fp16_to_fp32_ref(std::uint16_t bits);

inline std::uint16_t fp32_to_fp16(float value) {
#if defined(__F16C__)
  return static_cast<std::uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
#else
  return fp32_to_fp16_ref(value);
#endif
}

inline float fp16_to_fp32(std::uint16_t bits) {
#if defined(__F16C__)
  return _cvtsh_ss(bits);
#else
  return fp16_to_fp32_ref(bits);
#endif
}

inline constexpr std::uint16_t kFp16MaxFinite = 0x7BFF;  // 65504

}  // namespace minitx::quant
