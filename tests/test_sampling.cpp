// The sampling definition (minitx/infer/sampling.h, sampling_math.h) on the CPU: the integer
// helpers against 128-bit arithmetic, the fixed-point exp against std::exp, the order of the
// candidates, hand-made cases whose draw is known from u alone, top-k and top-p edges, special
// values, argument errors, and the distribution over many draws. The GPU sampler is checked
// against this one in tests/test_cuda_sampling.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "helpers.h"
#include "minitx/core/rng.h"
#include "minitx/infer/sampling.h"
#include "minitx/infer/sampling_math.h"

using namespace minitx;
namespace sm = minitx::sampling;

namespace {

__extension__ typedef unsigned __int128 u128;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The draw u = (b + 1/2) / 2^24 of sampling.h, from CounterRng's bits (exact in double).
double u_of(std::uint64_t seed, std::uint64_t index) {
  return (static_cast<double>(CounterRng(seed, sm::kStream).block(index)[0] >> 8) + 0.5) * 0x1p-24;
}

SamplingConfig config(double temperature, std::size_t top_k, double top_p, std::uint64_t seed) {
  return {temperature, top_k, top_p, seed};
}

}  // namespace

TEST_CASE("sampling: the 128-bit helpers are exact") {
  std::mt19937_64 gen(7);
  const std::uint64_t edges[] = {0, 1, 2, 0xffffffffu, 0x100000000u, sm::kOne, sm::kOne * 3, (std::uint64_t{1} << 63) - 1,
                                 std::uint64_t{1} << 63, ~std::uint64_t{0}};
  std::vector<std::uint64_t> values(std::begin(edges), std::end(edges));
  for (int i = 0; i < 2000; ++i) values.push_back(gen() >> (gen() % 64));
  for (std::uint64_t a : values)
    for (std::uint64_t b : {values[(a * 7) % values.size()], values[(a * 13 + 5) % values.size()], a}) {
      CAPTURE(a);
      CAPTURE(b);
      REQUIRE(sm::mul_hi(a, b) == static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64));
    }
  // The draw point and the top-p threshold for totals up to 2^63 (V = 2^24 weights of 2^39).
  for (std::uint64_t total : {std::uint64_t{1}, sm::kOne, sm::kOne + 12345, std::uint64_t{1} << 63, (gen() >> 1) | 1}) {
    for (std::uint32_t bits : {0u, 1u, 0x7fffffu, 0xffffffu, static_cast<std::uint32_t>(gen() >> 40)}) {
      const u128 exact = (static_cast<u128>(2 * static_cast<std::uint64_t>(bits) + 1) * total) >> 25;
      CHECK(sm::draw_point(total, bits) == static_cast<std::uint64_t>(exact));
      CHECK(sm::draw_point(total, bits) < total);
    }
    for (std::uint64_t p : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1} << 31, sm::kTopPOne - 1, sm::kTopPOne}) {
      const u128 product = static_cast<u128>(p) * total;
      const u128 ceil = (product >> 32) + ((product & 0xffffffffu) != 0 ? 1 : 0);
      CHECK(sm::top_p_threshold(total, p) == static_cast<std::uint64_t>(ceil));
    }
    CHECK(sm::top_p_threshold(total, sm::kTopPOne) == total);
  }
  CHECK(sm::top_p_fixed(0.0) == 0);
  CHECK(sm::top_p_fixed(0.5) == std::uint64_t{1} << 31);
  CHECK(sm::top_p_fixed(1.0) == sm::kTopPOne);
  CHECK(sm::top_p_fixed(1.0 - 1e-12) == sm::kTopPOne);  // closer to 1 than 2^-33
  // The draw's bits are CounterRng::uniform's, which is u rounded to float.
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const std::uint32_t bits = sm::draw_bits(5, i);
    CHECK(bits == CounterRng(5, sm::kStream).block(i)[0] >> 8);
    CHECK(static_cast<float>(u_of(5, i)) == CounterRng(5, sm::kStream).uniform(i));
  }
}

TEST_CASE("sampling: the fixed-point exp is within 0.5 + 2^-11 of 2^39·std::exp") {
  // 0.5 for the final rounding, 2^-11 for both exps' few ulps (2^39 · 2^-52 = 2^-13 each).
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<double> uniform(-29.0, 0.0);
  double worst = 0, worst_x = 0;
  for (int i = 0; i < 300000; ++i) {
    const double x = i < 100000 ? -28.5 * i / 100000.0 : uniform(gen);
    const double want = std::ldexp(std::exp(x), sm::kFractionBits);
    const double err = std::abs(static_cast<double>(sm::fixed_exp(x)) - want);
    if (err > worst) worst = err, worst_x = x;
  }
  CAPTURE(worst_x);
  CHECK(worst <= 0.5 + 0x1p-11);
  CHECK(sm::fixed_exp(0.0) == sm::kOne);
  CHECK(sm::fixed_exp(-0.0) == sm::kOne);
  CHECK(sm::fixed_exp(-std::numbers::ln2) == sm::kOne / 2);
  CHECK(sm::fixed_exp(-2 * std::numbers::ln2) == sm::kOne / 4);
  CHECK(sm::fixed_exp(-27.6) == 1);  // 2^39·e^-27.6 ≈ 0.57
  CHECK(sm::fixed_exp(-27.8) == 0);  // ≈ 0.46
  CHECK(sm::fixed_exp(-1000.0) == 0);
  CHECK(sm::fixed_exp(-std::numeric_limits<double>::infinity()) == 0);
  CHECK(sm::fixed_exp(std::numeric_limits<double>::quiet_NaN()) == 0);
  CHECK(sm::fixed_exp(-1e-300) == sm::kOne);
  // Weights: rank 0 and ties with it weigh kOne, NaN 0, -inf below a finite max 0.
  CHECK(sm::weight(0, kNaN, kNaN, 1.0) == sm::kOne);
  CHECK(sm::weight(3, 2.0f, 2.0f, 0.5) == sm::kOne);
  CHECK(sm::weight(3, kInf, kInf, 0.5) == sm::kOne);
  CHECK(sm::weight(3, -kInf, -kInf, 0.5) == sm::kOne);
  CHECK(sm::weight(3, 1.0f, kInf, 0.5) == 0);
  CHECK(sm::weight(3, -kInf, 1.0f, 0.5) == 0);
  CHECK(sm::weight(3, kNaN, 1.0f, 0.5) == 0);
  CHECK(sm::weight(1, 0.0f, 1.0f, 1.0 / std::numbers::ln2) == sm::kOne / 2);
}

TEST_CASE("sampling: order keys follow the float order, -0 = +0, NaN last") {
  const float increasing[] = {-kInf, -3e38f, -1.0f, -1e-30f, -1e-45f, 0.0f, 1e-45f, 1e-30f, 1.0f, 1.0000001f, 3e38f, kInf};
  for (std::size_t i = 1; i < std::size(increasing); ++i) {
    CAPTURE(i);
    CHECK(sm::order_key(increasing[i - 1]) < sm::order_key(increasing[i]));
  }
  CHECK(sm::order_key(-0.0f) == sm::order_key(0.0f));
  CHECK(sm::order_key(kNaN) == 0);
  CHECK(sm::order_key(-kNaN) == 0);
  CHECK(sm::order_key(kNaN) < sm::order_key(-kInf));
}

TEST_CASE("sampling: greedy is the first largest logit, however it is asked for") {
  const std::vector<float> logits = {0.1f, 2.0f, kNaN, 2.0f, 0.5f};
  for (const SamplingConfig& c : {config(0.0, 0, 1.0, 1), config(1.0, 1, 1.0, 1), config(5.0, 1, 0.3, 2),
                                  config(1.0, 0, 0.0, 3), config(1.0, 0, 1e-12, 4)}) {
    CHECK(sampling_is_greedy(c));
    for (std::uint64_t i = 0; i < 20; ++i) CHECK(sample_token(logits, c, i) == 1);
  }
  CHECK_FALSE(sampling_is_greedy(config(1.0, 2, 1.0, 0)));
  CHECK_FALSE(sampling_is_greedy(config(1e-30, 0, 0.5, 0)));
  const SamplingConfig greedy = config(0.0, 0, 1.0, 0);
  CHECK(sample_token(std::vector<float>{-0.0f, 0.0f}, greedy, 0) == 0);
  CHECK(sample_token(std::vector<float>{0.0f, -0.0f}, greedy, 0) == 0);
  CHECK(sample_token(std::vector<float>{kNaN, -kInf, kNaN}, greedy, 0) == 1);
  CHECK(sample_token(std::vector<float>{kNaN, kNaN}, greedy, 0) == 0);
  CHECK(sample_token(std::vector<float>{1.0f, kInf, 3e38f, kInf}, greedy, 0) == 1);
  CHECK(sample_token(std::vector<float>{7.0f}, config(1.0, 0, 1.0, 0), 9) == 0);
  // A temperature small enough that every other weight underflows leaves the top token alone.
  CHECK(sample_token(std::vector<float>{1.0f, 1.0001f}, config(1e-9, 0, 1.0, 0), 3) == 1);
}

TEST_CASE("sampling: draws from equal and halving weights follow u exactly") {
  // Equal logits: weights kOne each, so the token is floor(u · kept), with u's exact value.
  const std::vector<float> equal(4, 0.25f);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const double u = u_of(3, i);  // the products below are exact
    CAPTURE(i);
    REQUIRE(sample_token(equal, config(0.7, 0, 1.0, 3), i) == static_cast<std::uint32_t>(u * 4));
    REQUIRE(sample_token(equal, config(0.7, 3, 1.0, 3), i) == static_cast<std::uint32_t>(u * 3));
    // top_p 1/2 keeps exactly half of the mass: the first two; a hair more keeps three.
    REQUIRE(sample_token(equal, config(0.7, 0, 0.5, 3), i) == static_cast<std::uint32_t>(u * 2));
    REQUIRE(sample_token(equal, config(0.7, 0, 0.5 + 0x1p-31, 3), i) == static_cast<std::uint32_t>(u * 3));
  }
  // Logits 1 and 0 at temperature 1/ln 2: weights kOne and kOne/2, so token 0 iff u·3/2 < 1.
  const std::vector<float> two = {0.0f, 1.0f};
  const double t = 1.0 / std::numbers::ln2;
  int ones = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const double u = u_of(8, i);
    const std::uint32_t want = u * 1.5 < 1.0 ? 1 : 0;
    REQUIRE(sample_token(two, config(t, 0, 1.0, 8), i) == want);
    ones += want == 1;
    // Token 1 holds 2/3 of the mass: top_p ≤ 2/3 keeps it alone (to 2^-32), above keeps both.
    REQUIRE(sample_token(two, config(t, 0, 0.6666, 8), i) == 1);
    REQUIRE(sample_token(two, config(t, 0, 0.6667, 8), i) == want);
  }
  CHECK(std::abs(ones / 2000.0 - 2.0 / 3.0) < 0.05);
}

TEST_CASE("sampling: ties go to the lower id, top-k counts candidates, specials") {
  const std::vector<float> logits = {2.0f, 5.0f, 5.0f, 1.0f, 5.0f};
  int counts[5] = {};
  for (std::uint64_t i = 0; i < 3000; ++i) ++counts[sample_token(logits, config(1.0, 2, 1.0, 4), i)];
  CHECK(counts[1] > 1300);
  CHECK(counts[2] > 1300);
  CHECK(counts[0] + counts[3] + counts[4] == 0);  // the third 5.0 (id 4) is cut by top-k 2
  // top_k at or past V is no limit.
  for (std::uint64_t i = 0; i < 200; ++i) {
    const std::uint32_t any = sample_token(logits, config(0.8, 0, 0.9, 6), i);
    CHECK(sample_token(logits, config(0.8, 5, 0.9, 6), i) == any);
    CHECK(sample_token(logits, config(0.8, 1000, 0.9, 6), i) == any);
  }
  // NaN is never drawn while a number is there; +inf takes all the mass; all -inf is uniform.
  const std::vector<float> nan_mix = {kNaN, 0.0f, kNaN, -1.0f};
  const std::vector<float> inf_mix = {1.0f, kInf, -kInf, kInf, 3e38f};
  const std::vector<float> all_minus_inf(3, -kInf);
  int minus_inf_counts[3] = {};
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const std::uint32_t a = sample_token(nan_mix, config(50.0, 0, 1.0, 1), i);
    CHECK((a == 1 || a == 3));
    const std::uint32_t b = sample_token(inf_mix, config(1.0, 0, 1.0, 1), i);
    CHECK((b == 1 || b == 3));
    ++minus_inf_counts[sample_token(all_minus_inf, config(1.0, 0, 1.0, 1), i)];
  }
  for (int c : minus_inf_counts) CHECK(c > 250);
  // All NaN: the first (the only candidate with weight) whatever the config.
  CHECK(sample_token(std::vector<float>(4, kNaN), config(1.0, 0, 1.0, 2), 5) == 0);
}

TEST_CASE("sampling: arguments outside the definition are errors that name them") {
  const std::vector<float> logits = {1.0f, 2.0f};
  CHECK_ERROR_CONTAINS(sample_token({}, config(1.0, 0, 1.0, 0), 0), "no logits (V = 0)");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(-0.5, 0, 1.0, 0), 0), "temperature = -0.5");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(std::nan(""), 0, 1.0, 0), 0), "temperature = nan");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(HUGE_VAL, 0, 1.0, 0), 0), "temperature = inf");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(1.0, 0, 1.5, 0), 0), "top_p = 1.5 is outside [0, 1]");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(1.0, 0, -0.1, 0), 0), "top_p = -0.1");
  CHECK_ERROR_CONTAINS(sample_token(logits, config(1.0, 0, std::nan(""), 0), 0), "top_p = nan");
  CHECK_ERROR_CONTAINS(check_sampling(sm::kMaxCandidates + 1, config(1.0, 0, 1.0, 0)), "V = 16777217 candidates");
  check_sampling(sm::kMaxCandidates, config(0.0, 0, 0.0, 0));  // the bounds themselves are fine
}

TEST_CASE("sampling: frequencies over many draws match the softmax of the kept tokens") {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(12);
  for (float& l : logits) l = normal(gen);
  for (const SamplingConfig& c : {config(1.0, 0, 1.0, 21), config(0.6, 0, 1.0, 22), config(1.3, 6, 1.0, 23),
                                  config(0.9, 0, 0.8, 24), config(1.0, 8, 0.7, 25)}) {
    CAPTURE(c.temperature);
    CAPTURE(c.top_k);
    CAPTURE(c.top_p);
    // The expected distribution in double: sort, cut top-k, softmax, cut top-p, renormalise.
    std::vector<std::uint32_t> order(logits.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return logits[a] > logits[b]; });
    const std::size_t k = c.top_k > 0 ? c.top_k : order.size();
    std::vector<double> p(k);
    double total = 0;
    for (std::size_t j = 0; j < k; ++j) total += p[j] = std::exp((logits[order[j]] - logits[order[0]]) / c.temperature);
    std::size_t keep = 0;
    for (double mass = 0; keep < k && mass < c.top_p * total;) mass += p[keep++];
    total = 0;
    for (std::size_t j = 0; j < keep; ++j) total += p[j];
    const int n = 100000;
    std::vector<int> counts(logits.size());
    for (std::uint64_t i = 0; i < n; ++i) ++counts[sample_token(logits, c, i)];
    for (std::size_t j = 0; j < order.size(); ++j) {
      const double want = j < keep ? p[j] / total : 0.0;
      const double sigma = std::sqrt(want * (1 - want) / n);
      CAPTURE(j);
      CHECK(std::abs(counts[order[j]] / static_cast<double>(n) - want) <= 5 * sigma + 1e-9);
    }
  }
}
