// The arithmetic of sampling (sampling.h), shared by the CPU sampler (src/infer/sampling.cpp) and
// the CUDA one (src/backend/cuda/sampling.cu), so that both choose the same token by construction.
//
// Why the definition looks like this. A parallel GPU sampler sums the weights in a different order
// than a sequential loop, and std::exp and CUDA's exp differ in the last bit; with floating point
// either difference moves a cumulative sum across the draw now and then, and the devices disagree.
// So every step is made order-free and bit-reproducible:
//  - the order of the candidates is a total order on (logit, id), computed from integer keys
//    (order_key): decreasing logit, ties by the lower id, NaN after everything, -0 equal to +0;
//  - a weight is an integer, round(2^39 · exp((logit - max) / T)) (weight, fixed_exp), so sums
//    are exact and associative: a sequential loop and a parallel scan give the same integers.
//    2^39 because V ≤ 2^24 candidates of weight ≤ 2^39 sum to at most 2^63, so no partial sum
//    can overflow. A weight resolves 2^-39 of the top token's, so tokens less likely than
//    ~1e-12 × the top token get weight 0 and are never drawn (they also were almost never
//    drawn before);
//  - our own exp: only IEEE-754 double operations that are correctly rounded (+, -, ×, ÷, the
//    conversions, an exact scaling by 2^n), done one at a time. On the device each one is an
//    explicit __dadd_rn/__dmul_rn/... intrinsic, which nvcc never contracts into an FMA; on the
//    host the project compiles with -ffp-contract=off and without -ffast-math, so g++ neither
//    contracts nor reassociates. The same bits come out on both, whatever the library's exp does;
//  - top-p and the draw are decided in 64- and 128-bit integers (top_p_threshold, draw_point).
// Accuracy of fixed_exp: the final rounding to an integer plus under 2^-52 relative, i.e. within
// 0.5 + 2^-13 of 2^39·exp(x) (measured against expl over 2·10^7 points; tests/test_sampling.cpp
// checks 0.5 + 2^-11 against std::exp, which has its own ulp).
#pragma once
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "minitx/core/host_device.h"
#include "minitx/core/philox.h"

namespace minitx::sampling {

inline constexpr std::uint64_t kStream = 0x73616d706c65;  // the Philox stream of draws: "sample"
inline constexpr int kFractionBits = 39;
inline constexpr std::uint64_t kOne = std::uint64_t{1} << kFractionBits;  // the weight of exp(0)
inline constexpr std::size_t kMaxCandidates = std::size_t{1} << 24;      // so that Σ weights < 2^64
inline constexpr std::uint64_t kTopPOne = std::uint64_t{1} << 32;         // top_p = 1 in top_p_fixed

namespace detail {

// One correctly rounded operation each, never fused with its neighbours (see the header comment).
MINITX_HD double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
MINITX_HD double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
MINITX_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
MINITX_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
// Round to the nearest integer, ties to even (exact: the result is representable).
MINITX_HD double round_even(double x) {
#if defined(__CUDA_ARCH__)
  return rint(x);
#else
  return std::rint(x);
#endif
}
// 2^e for a normal exponent, built from its bits: exact on both sides.
MINITX_HD double pow2(int e) {
  const std::uint64_t bits = static_cast<std::uint64_t>(1023 + e) << 52;
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  return std::bit_cast<double>(bits);
#endif
}
MINITX_HD std::uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<std::uint32_t>(x);
#endif
}

}  // namespace detail

// The high 64 bits of the 128-bit product a·b.
MINITX_HD std::uint64_t mul_hi(std::uint64_t a, std::uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const std::uint64_t low = a0 * b0, mid1 = a0 * b1, mid2 = a1 * b0;
  const std::uint64_t carry = ((low >> 32) + (mid1 & 0xffffffffu) + (mid2 & 0xffffffffu)) >> 32;
  return a1 * b1 + (mid1 >> 32) + (mid2 >> 32) + carry;
#endif
}

// A key whose unsigned order is the candidates' order by logit: larger key = larger logit.
// -0 and +0 get one key (they compare equal as floats, so the lower id goes first, as
// std::max_element would have it); NaN gets 0, below -inf, so it is never preferred to a number.
MINITX_HD std::uint32_t order_key(float logit) {
  if (logit != logit) return 0;
  if (logit == 0.0f) logit = 0.0f;
  const std::uint32_t u = detail::float_bits(logit);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

// round(2^39 · e^x) for x ≤ 0; 0 for NaN, -inf, and every x where the result rounds to 0.
// Range reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts, Cody and Waite, so
// n·ln2_hi is exact), e^r by its Taylor series to degree 13 in Horner form (truncation below
// 1e-17 relative), then the exact scaling by 2^(n+39) and one rounding to an integer.
MINITX_HD std::uint64_t fixed_exp(double x) {
  using namespace detail;
  if (!(x >= -28.0)) return 0;  // 2^39·e^-28 ≈ 0.38 rounds to 0; also NaN and -inf
  if (x >= 0.0) return kOne;
  constexpr double kLog2e = 0x1.71547652b82fep+0;
  constexpr double kLn2Hi = 0x1.62e42fee00000p-1;  // 32 significant bits
  constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;
  // n = round(x·log2 e), ties up; 0.5 - t ≥ 0.5 here, so truncation is the floor.
  const int n = -static_cast<int>(sub(0.5, mul(x, kLog2e)));
  const double dn = static_cast<double>(n);
  const double r = sub(sub(x, mul(dn, kLn2Hi)), mul(dn, kLn2Lo));
  constexpr double kInvFactorial[14] = {
      0x1.0000000000000p+0,  0x1.0000000000000p+0,  0x1.0000000000000p-1,  0x1.5555555555555p-3,
      0x1.5555555555555p-5,  0x1.1111111111111p-7,  0x1.6c16c16c16c17p-10, 0x1.a01a01a01a01ap-13,
      0x1.a01a01a01a01ap-16, 0x1.71de3a556c734p-19, 0x1.27e4fb7789f5cp-22, 0x1.ae64567f544e4p-26,
      0x1.1eed8eff8d898p-29, 0x1.6124613a86d09p-33};
  double p = kInvFactorial[13];
  for (int k = 12; k >= 0; --k) p = add(mul(p, r), kInvFactorial[k]);
  // n ≥ -41 for x ≥ -28, so 2^(n+39) is a normal number and the product is exact.
  const auto w = static_cast<std::uint64_t>(round_even(mul(p, pow2(n + kFractionBits))));
  return w < kOne ? w : kOne;  // e^r rounds to at most 1 for n = 0; the bound is kept explicit
}

// The weight of the candidate at `rank` in the order, given `max`, the logit at rank 0.
// Rank 0 always weighs kOne, so the total is never 0 (even if every logit is NaN); a logit equal
// to max weighs kOne too (this covers ties at +inf or -inf, where logit - max is NaN).
MINITX_HD std::uint64_t weight(std::size_t rank, float logit, float max, double temperature) {
  if (rank == 0 || logit == max) return kOne;
  if (logit != logit) return 0;
  const double diff = detail::sub(static_cast<double>(logit), static_cast<double>(max));
  return fixed_exp(detail::div(diff, temperature));
}

// top_p in [0, 1] as a fraction of 2^32, rounded to nearest: the resolution of the top-p cut.
// Host only: the CUDA sampler converts once per call and passes the integer to its kernels.
inline std::uint64_t top_p_fixed(double top_p) {
  return static_cast<std::uint64_t>(std::rint(top_p * static_cast<double>(kTopPOne)));
}

// The mass a kept prefix must reach: ceil(top_p32 · total / 2^32). The kept candidates are the
// smallest prefix whose cumulative weight is ≥ this; since it is ≤ total, there is one, and when
// it is 0 (top_p = 0) the prefix is the first candidate alone.
MINITX_HD std::uint64_t top_p_threshold(std::uint64_t total, std::uint64_t top_p32) {
  const std::uint64_t hi = mul_hi(top_p32, total), lo = top_p32 * total;
  return ((hi << 32) | (lo >> 32)) + ((lo & 0xffffffffu) != 0 ? 1 : 0);
}

// The top 24 bits of Philox (seed, kStream, index)'s first word, the bits of CounterRng::uniform.
// The draw is u = (bits + 1/2) / 2^24 exactly, not uniform's float, which rounds that value to
// even for bits ≥ 2^23 (and to 1.0 for the largest), so that u stays in (0, 1).
MINITX_HD std::uint32_t draw_bits(std::uint64_t seed, std::uint64_t index) {
  return philox::counter_block(seed, kStream, index).v[0] >> 8;
}

// floor(u · total) for u = (bits + 1/2)/2^24 = (2·bits + 1)/2^25, exactly. It is < total, and the
// token drawn is the first kept candidate whose cumulative weight exceeds it.
MINITX_HD std::uint64_t draw_point(std::uint64_t total, std::uint32_t bits) {
  const std::uint64_t a = 2 * static_cast<std::uint64_t>(bits) + 1;
  const std::uint64_t hi = mul_hi(a, total), lo = a * total;
  return (hi << 39) | (lo >> 25);
}

}  // namespace minitx::sampling
