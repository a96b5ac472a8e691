// sgemm against the double-precision triple loop, for every transpose, edge sizes, alpha/beta,
// and bit-identity across thread counts and across row positions (batch-size independence).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <vector>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"

using minitx::cpu::Trans;

namespace {

std::vector<float> random_matrix(std::size_t count, std::uint64_t stream) {
  const minitx::CounterRng rng(7, stream);
  std::vector<float> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = rng.uniform(i) * 2.0f - 1.0f;
  return out;
}

struct Case {
  std::size_t m, n, k;
  Trans ta, tb;
  float alpha, beta;
};

std::vector<float> run(const Case& c, bool reference, const std::vector<float>& a, const std::vector<float>& b) {
  const std::size_t lda = c.ta == Trans::yes ? c.m : c.k, ldb = c.tb == Trans::yes ? c.k : c.n;
  std::vector<float> out = random_matrix(c.m * c.n, 3);
  (reference ? minitx::cpu::sgemm_reference : minitx::cpu::sgemm)(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda,
                                                                  b.data(), ldb, c.beta, out.data(), c.n);
  return out;
}

}  // namespace

TEST_CASE("sgemm matches the double reference for every transpose and edge size") {
  for (Trans ta : {Trans::no, Trans::yes})
    for (Trans tb : {Trans::no, Trans::yes})
      for (const auto& [m, n, k] : {std::array<std::size_t, 3>{1, 1, 1}, {7, 17, 5}, {6, 16, 256}, {13, 33, 257},
                                    {150, 530, 600}, {1, 300, 70}}) {
        for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{1.0f, 1.0f}, std::pair{0.5f, -2.0f}}) {
          const Case c{m, n, k, ta, tb, alpha, beta};
          CAPTURE(c.m);
          CAPTURE(c.n);
          CAPTURE(c.k);
          CAPTURE(static_cast<int>(ta));
          CAPTURE(static_cast<int>(tb));
          CAPTURE(alpha);
          CAPTURE(beta);
          const auto a = random_matrix(c.m * c.k, 1), b = random_matrix(c.k * c.n, 2);
          const auto got = run(c, false, a, b), want = run(c, true, a, b);
          double worst = 0;
          for (std::size_t i = 0; i < got.size(); ++i)
            worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
          // Each term is below 1 in magnitude; float rounding grows like sqrt(k)·2^-24 at worst ~k·2^-24.
          CHECK(worst <= 4e-7 * static_cast<double>(c.k) + 1e-6);
        }
      }
}

TEST_CASE("sgemm with beta = 0 ignores NaN in C and k = 0 scales C") {
  std::vector<float> a(6, 1.0f), b(6, 1.0f), c(4, std::nanf(""));
  minitx::cpu::sgemm(Trans::no, Trans::no, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>(4, 3.0f));
  minitx::cpu::sgemm(Trans::no, Trans::no, 2, 2, 0, 1.0f, a.data(), 3, b.data(), 2, 2.0f, c.data(), 2);
  CHECK(c == std::vector<float>(4, 6.0f));
}

TEST_CASE("sgemm is bit-identical for 1 and 2 threads and for any row position") {
  const std::size_t m = 300, n = 700, k = 600;
  const auto a = random_matrix(m * k, 1), b = random_matrix(k * n, 2);
  const int saved = minitx::thread_count();
  std::vector<float> c1(m * n), c2(m * n);
  minitx::set_thread_count(1);
  minitx::cpu::sgemm(Trans::no, Trans::yes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c1.data(), n);
  minitx::set_thread_count(2);
  minitx::cpu::sgemm(Trans::no, Trans::yes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c2.data(), n);
  minitx::set_thread_count(saved);
  CHECK(c1 == c2);
  // Rows 37..41 alone (a different tile position and M) give the same bits.
  std::vector<float> part(5 * n);
  minitx::cpu::sgemm(Trans::no, Trans::yes, 5, n, k, 1.0f, a.data() + 37 * k, k, b.data(), k, 0.0f, part.data(), n);
  CHECK(std::vector<float>(c1.begin() + 37 * n, c1.begin() + 42 * n) == part);
}
