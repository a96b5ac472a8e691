// sgemm against the double-precision triple loop, for every transpose, edge sizes, alpha/beta,
// and bit-identity across thread counts and across row positions (batch-size independence).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdlib>
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

TEST_CASE("sgemm_packed gives sgemm's bits, with and without a bias, for any thread count") {
  const int saved = minitx::thread_count();
  for (int threads : {1, 2, 3})
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes})
        for (const auto& [m, n, k] : {std::array<std::size_t, 3>{1, 1, 1}, {7, 17, 5}, {13, 33, 257},
                                      {128, 530, 600}, {200, 300, 512}, {5, 1000, 70}, {4, 3, 0}}) {
          minitx::set_thread_count(threads);
          CAPTURE(threads);
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          const std::size_t lda = ta == Trans::yes ? m : k, ldb = tb == Trans::yes ? k : n;
          const auto a = random_matrix(m * k, 1), b = random_matrix(k * n, 2), bias = random_matrix(n, 4);
          const minitx::cpu::PackedB packed(tb, k, n, b.data(), ldb);
          CHECK(packed.k() == k);
          CHECK(packed.n() == n);
          for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, -2.0f}}) {
            std::vector<float> want = random_matrix(m * n, 3), got = want;
            minitx::cpu::sgemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(), n);
            minitx::cpu::sgemm_packed(ta, m, alpha, a.data(), lda, packed, beta, got.data(), n);
            CHECK(got == want);
          }
          // The bias path equals C preset to the bias with beta = 1 (what matmul_forward did).
          std::vector<float> want(m * n), got(m * n, std::nanf(""));
          for (std::size_t i = 0; i < m; ++i) std::copy(bias.begin(), bias.end(), want.begin() + static_cast<std::ptrdiff_t>(i * n));
          minitx::cpu::sgemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 1.0f, want.data(), n);
          minitx::cpu::sgemm_packed(ta, m, 1.0f, a.data(), lda, packed, 0.0f, got.data(), n, bias.data());
          CHECK(got == want);
        }
  minitx::set_thread_count(saved);
}

TEST_CASE("sgemm_packed refuses a bias together with a nonzero beta") {
  const std::vector<float> a(4, 1.0f), b(4, 1.0f), bias(2, 0.0f);
  std::vector<float> c(4, 0.0f);
  const minitx::cpu::PackedB packed(Trans::no, 2, 2, b.data(), 2);
  CHECK_THROWS_WITH(minitx::cpu::sgemm_packed(Trans::no, 2, 1.0f, a.data(), 2, packed, 1.0f, c.data(), 2, bias.data()),
                    doctest::Contains("beta must be 0"));
}

TEST_CASE("the AVX-512 and AVX2 micro-kernels give the same bits") {
  using minitx::cpu::GemmIsa;
  const GemmIsa saved = minitx::cpu::gemm_isa();
  if (!minitx::cpu::cpu_has_avx512()) {
    CHECK_THROWS_WITH(minitx::cpu::set_gemm_isa(GemmIsa::avx512), doctest::Contains("no AVX-512F"));
    MESSAGE("skipped: this CPU has no AVX-512F, so only the AVX2 kernel runs");
    return;
  }
  if (const char* env = std::getenv("MINITX_GEMM_ISA"); env == nullptr || *env == '\0')
    CHECK(saved == GemmIsa::avx512);  // the default where the CPU has it, unless pinned
  // Column counts cover whole pairs of panels, a pair with a partial second panel, and a lone
  // last panel; k covers one block, several, and a partial last one.
  for (Trans ta : {Trans::no, Trans::yes})
    for (Trans tb : {Trans::no, Trans::yes})
      for (const auto& [m, n, k] : {std::array<std::size_t, 3>{1, 1, 1}, {7, 17, 5}, {6, 32, 256}, {13, 47, 257},
                                    {128, 530, 600}, {31, 300, 70}, {72, 272, 513}}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        const std::size_t lda = ta == Trans::yes ? m : k, ldb = tb == Trans::yes ? k : n;
        const auto a = random_matrix(m * k, 1), b = random_matrix(k * n, 2), bias = random_matrix(n, 4);
        const minitx::cpu::PackedB packed(tb, k, n, b.data(), ldb);
        std::vector<float> out[2], out_packed[2];
        for (GemmIsa isa : {GemmIsa::avx2, GemmIsa::avx512}) {
          minitx::cpu::set_gemm_isa(isa);
          auto& c = out[static_cast<int>(isa)];
          auto& cp = out_packed[static_cast<int>(isa)];
          c = random_matrix(m * n, 3);
          cp.assign(m * n, 0.0f);
          minitx::cpu::sgemm(ta, tb, m, n, k, 0.3f, a.data(), lda, b.data(), ldb, -1.7f, c.data(), n);  // inexact scalings
          minitx::cpu::sgemm_packed(ta, m, 1.0f, a.data(), lda, packed, 0.0f, cp.data(), n, bias.data());
        }
        CHECK(out[0] == out[1]);
        CHECK(out_packed[0] == out_packed[1]);
      }
  minitx::cpu::set_gemm_isa(saved);
}
