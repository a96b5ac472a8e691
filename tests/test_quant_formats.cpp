// One walk through every quantized format (after ggml's test-quantize-fns): round-trip error,
// the fast kernels against the reference, and dot-product error.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/quantize.h"
#include "quant_samples.h"

using namespace minitx::quant;
using namespace minitx::quant::testing;

namespace {

// What the walk needs of a format, with blocks stored as raw bytes.
struct FormatCase {
  std::string name;
  std::size_t block_bytes;
  void (*quantize)(const float*, std::byte*, std::size_t);
  void (*dequantize)(const std::byte*, float*, std::size_t);
  float (*dot_ref)(std::size_t, const std::byte*, const block_q8_0*);
  float (*dot)(std::size_t, const std::byte*, const Q8Row&);
  int (*get)(const std::byte* block, std::size_t i);  // the integer of element i
};

template <class Block>
const Block* blocks(const std::byte* p) { return reinterpret_cast<const Block*>(p); }

const std::vector<FormatCase>& formats() {
  static const std::vector<FormatCase> cases = {
      {"q8_0", sizeof(block_q8_0),
       [](const float* x, std::byte* y, std::size_t n) { quantize_row_q8_0_ref(x, reinterpret_cast<block_q8_0*>(y), n); },
       [](const std::byte* x, float* y, std::size_t n) { dequantize_row_q8_0_ref(blocks<block_q8_0>(x), y, n); },
       [](std::size_t n, const std::byte* x, const block_q8_0* y) { return vec_dot_q8_0_q8_0_ref(n, blocks<block_q8_0>(x), y); },
       [](std::size_t n, const std::byte* x, const Q8Row& y) { return vec_dot_q8_0_q8_0(n, blocks<block_q8_0>(x), y); },
       [](const std::byte* b, std::size_t i) { return static_cast<int>(blocks<block_q8_0>(b)->qs[i]); }},
      {"q4_0", sizeof(block_q4_0),
       [](const float* x, std::byte* y, std::size_t n) { quantize_row_q4_0_ref(x, reinterpret_cast<block_q4_0*>(y), n); },
       [](const std::byte* x, float* y, std::size_t n) { dequantize_row_q4_0_ref(blocks<block_q4_0>(x), y, n); },
       [](std::size_t n, const std::byte* x, const block_q8_0* y) { return vec_dot_q4_0_q8_0_ref(n, blocks<block_q4_0>(x), y); },
       [](std::size_t n, const std::byte* x, const Q8Row& y) { return vec_dot_q4_0_q8_0(n, blocks<block_q4_0>(x), y); },
       [](const std::byte* b, std::size_t i) { return q4_0_get(*blocks<block_q4_0>(b), i); }},
  };
  return cases;
}

float scale_of(const std::byte* block) {
  std::uint16_t d;
  std::memcpy(&d, block, sizeof d);
  return fp16_to_fp32(d);
}

// x * (1 / d) is within 2u|x / d| of x / d (u = 2^-24), and |x / d| <= 127.5, so the rounded
// integer is within 0.5 + 127.5 * 2^-23 < 0.5 + 2^-16 steps of x; q * d itself is exact.
constexpr double kHalfStep = 0.5 + 0x1p-16;

}  // namespace

TEST_CASE("quant formats: every value comes back within half a step of its block") {
  const std::size_t n = 32 * 64;
  for (std::uint64_t seed : {1, 2, 3}) {
    const std::vector<float> x = awkward_values(n, seed);
    for (const FormatCase& f : formats()) {
      CAPTURE(f.name);
      std::vector<std::byte> q(n / QK * f.block_bytes);
      std::vector<float> back(n);
      f.quantize(x.data(), q.data(), n);
      f.dequantize(q.data(), back.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        const std::byte* block = q.data() + i / QK * f.block_bytes;
        const double d = std::fabs(static_cast<double>(scale_of(block)));
        CAPTURE(i);
        CAPTURE(x[i]);
        CAPTURE(back[i]);
        REQUIRE(std::isfinite(back[i]));
        // Exact: the dequantized value is the block's integer times its scale.
        REQUIRE(back[i] == static_cast<float>(f.get(block, i % QK)) * scale_of(block));
        const double err = std::fabs(static_cast<double>(x[i]) - static_cast<double>(back[i]));
        REQUIRE(err <= d * kHalfStep);
      }
    }
  }
}

TEST_CASE("quant formats: the block of largest magnitude lands on the grid's end") {
  float x[QK];
  for (std::size_t i = 0; i < QK; ++i) x[i] = 0.01f * static_cast<float>(i) - 0.1f;
  x[5] = 2.0f;
  block_q8_0 b8;
  quantize_row_q8_0_ref(x, &b8, QK);
  CHECK(b8.qs[5] == 127);
  block_q4_0 b4;
  quantize_row_q4_0_ref(x, &b4, QK);
  CHECK(q4_0_get(b4, 5) == -8);  // the maximum takes the longer side, with a negative scale
  CHECK(fp16_to_fp32(b4.d) == -0.25f);
  // A block of zeros has scale 0 and all-zero integers, not NaN.
  float zeros[QK] = {};
  quantize_row_q4_0_ref(zeros, &b4, QK);
  CHECK(b4.d == 0);
  for (std::size_t i = 0; i < QK; ++i) CHECK(q4_0_get(b4, i) == 0);
}

TEST_CASE("quant formats: q4_0 packing and unpacking are exact, in the documented layout") {
  block_q4_0 b{};
  for (std::size_t i = 0; i < QK; ++i) q4_0_set(b, i, static_cast<int>(i % 16) - 8);
  for (std::size_t i = 0; i < QK; ++i) CHECK(q4_0_get(b, i) == static_cast<int>(i % 16) - 8);
  // Byte j: element j in the low nibble, element j + 16 in the high nibble, both offset by 8.
  for (std::size_t j = 0; j < QK / 2; ++j) CHECK(b.qs[j] == static_cast<std::uint8_t>((j % 16) | ((j % 16) << 4)));
  // Every pair of values through one byte.
  for (int lo = -8; lo <= 7; ++lo)
    for (int hi = -8; hi <= 7; ++hi) {
      q4_0_set(b, 3, lo);
      q4_0_set(b, 19, hi);
      REQUIRE(q4_0_get(b, 3) == lo);
      REQUIRE(q4_0_get(b, 19) == hi);
    }
  q4_0_set(b, 3, 7);
  q4_0_set(b, 19, -8);
  b.d = fp32_to_fp16(0.5f);
  float y[QK];
  dequantize_row_q4_0_ref(&b, y, QK);
  CHECK(y[3] == 3.5f);
  CHECK(y[19] == -4.0f);
}

TEST_CASE("quant formats: the fast q8_0 activation quantizer writes the reference's bytes") {
  for (std::size_t n : {32, 64, 96, 32 * 64}) {
    for (std::uint64_t seed : {4, 5}) {
      const std::vector<float> x = awkward_values(n, seed);
      std::vector<block_q8_0> ref(n / QK), fast(n / QK);
      quantize_row_q8_0_ref(x.data(), ref.data(), n);
      quantize_row_q8_0(x.data(), fast.data(), n);
      REQUIRE(std::memcmp(ref.data(), fast.data(), n / QK * sizeof(block_q8_0)) == 0);
    }
  }
  // Exact ties x / d = k + 1/2 round to even in both.
  float x[QK];
  for (std::size_t i = 0; i < QK; ++i) x[i] = static_cast<float>(i) + 0.5f;
  x[0] = 127.0f;  // d = 1
  block_q8_0 ref, fast;
  quantize_row_q8_0_ref(x, &ref, QK);
  quantize_row_q8_0(x, &fast, QK);
  CHECK(std::memcmp(&ref, &fast, sizeof ref) == 0);
  CHECK(ref.qs[1] == 2);  // 1.5 -> 2
  CHECK(ref.qs[2] == 2);  // 2.5 -> 2
}

TEST_CASE("quant formats: fast dot products equal the reference") {
  // Block counts below, at and beyond the kernels' groups of 8, with and without a tail.
  for (std::size_t n : {32, 96, 256, 352, 512, 2048, 2080}) {
    const std::vector<float> a = awkward_values(n, 11), x = awkward_values(n, 12);
    Q8Activations act;
    act.quantize(x.data(), 1, n);
    const block_q8_0* xq = act.row(0).blocks;
    for (const FormatCase& f : formats()) {
      CAPTURE(f.name);
      CAPTURE(n);
      std::vector<std::byte> w(n / QK * f.block_bytes);
      f.quantize(a.data(), w.data(), n);

      // Integer parts: with every scale set to 1 all partial sums are integers below 2^24,
      // exact in fp32 in any order, so the kernels must agree exactly.
      std::vector<std::byte> w1 = w;
      std::vector<block_q8_0> x1(xq, xq + n / QK);
      for (std::size_t b = 0; b < n / QK; ++b) {
        const std::uint16_t one = 0x3C00;
        std::memcpy(w1.data() + b * f.block_bytes, &one, sizeof one);
        x1[b].d = one;
      }
      Q8Activations act1;
      act1.assign(x1.data(), 1, n);
      REQUIRE(f.dot(n, w1.data(), act1.row(0)) == f.dot_ref(n, w1.data(), x1.data()));

      // Real scales. Both compute S = Σ_k D_k s_k with the same D_k = fp32(dw_k·dx_k) and exact
      // s_k. The reference rounds each product and each of its n_b - 1 additions: error <=
      // n_b·u·A with A = Σ_k |D_k s_k| and u = 2^-24. The kernel's FMAs add n_b/8 exact products
      // per lane (one rounding each), 3 roundings reduce the lanes, and each of at most 7 tail
      // blocks costs 2: error <= (n_b/8 + 17)·u·A. So |ref - fast| <= (9/8·n_b + 17)·u·A.
      double A = 0.0;
      for (std::size_t b = 0; b < n / QK; ++b) {
        const std::byte* wb = w.data() + b * f.block_bytes;
        const float D = scale_of(wb) * fp16_to_fp32(xq[b].d);
        long s = 0;
        for (std::size_t i = 0; i < QK; ++i) s += f.get(wb, i) * xq[b].qs[i];
        A += std::fabs(static_cast<double>(D) * static_cast<double>(s));
      }
      const double blocks_n = static_cast<double>(n / QK);
      const double bound = (1.125 * blocks_n + 17.0) * 0x1p-24 * A;
      const float ref = f.dot_ref(n, w.data(), xq), fast = f.dot(n, w.data(), act.row(0));
      CAPTURE(ref);
      CAPTURE(fast);
      CAPTURE(bound);
      REQUIRE(std::fabs(static_cast<double>(ref) - static_cast<double>(fast)) <= bound);
    }
  }
}

TEST_CASE("quant formats: q8_0 weights of -128 (allowed in files) multiply correctly") {
  block_q8_0 w{}, x{};
  w.d = x.d = 0x3C00;
  for (std::size_t i = 0; i < QK; ++i) {
    w.qs[i] = static_cast<std::int8_t>(i % 2 ? -128 : 127);
    x.qs[i] = static_cast<std::int8_t>(i % 3 ? -127 : 127);
  }
  Q8Activations act;
  act.assign(&x, 1, QK);
  CHECK(vec_dot_q8_0_q8_0(QK, &w, act.row(0)) == vec_dot_q8_0_q8_0_ref(QK, &w, &x));
  std::vector<block_q8_0> w8(8, w), x8(8, x);  // the grouped path, too
  act.assign(x8.data(), 1, 8 * QK);
  CHECK(vec_dot_q8_0_q8_0(8 * QK, w8.data(), act.row(0)) == vec_dot_q8_0_q8_0_ref(8 * QK, w8.data(), x8.data()));
}

TEST_CASE("quant formats: row lengths that are not whole blocks are errors") {
  float x[48] = {};
  block_q8_0 y[2];
  CHECK_THROWS_WITH(quantize_row_q8_0_ref(x, y, 48), doctest::Contains("not a whole number of 32-value blocks"));
  CHECK_THROWS_WITH(quantize_row_q8_0(x, y, 48), doctest::Contains("not a whole number"));
}

TEST_CASE("quant formats: the fp32 dot product kernel agrees with the reference") {
  for (std::size_t n : {1, 7, 8, 31, 32, 33, 100, 512}) {
    std::vector<float> a(n), b(n);
    double A = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = uniform(21, i);
      b[i] = uniform(22, i);
      A += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    // Different summation orders; each within n * u * A of the exact sum.
    const double bound = 2.0 * static_cast<double>(n + 8) * 0x1p-24 * A;
    CHECK(std::fabs(static_cast<double>(vec_dot_f32(n, a.data(), b.data())) - vec_dot_f32_ref(n, a.data(), b.data())) <= bound);
  }
}

TEST_CASE("quant formats: magnitudes beyond fp16's range saturate instead of making inf or NaN") {
  float x[QK];
  for (std::size_t i = 0; i < QK; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * 1e9f;
  block_q8_0 b8, fast;
  quantize_row_q8_0_ref(x, &b8, QK);
  quantize_row_q8_0(x, &fast, QK);
  CHECK(b8.d == kFp16MaxFinite);
  CHECK(b8.qs[0] == 127);
  CHECK(b8.qs[1] == -127);
  CHECK(std::memcmp(&b8, &fast, sizeof b8) == 0);
  block_q4_0 b4;
  quantize_row_q4_0_ref(x, &b4, QK);
  CHECK((b4.d & 0x7FFF) == kFp16MaxFinite);
  CHECK(q4_0_get(b4, 0) == -8);
  CHECK(q4_0_get(b4, 1) == 7);
}
