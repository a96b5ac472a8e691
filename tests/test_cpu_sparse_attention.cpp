// The CPU block-sparse attention kernels against the masked dense oracle (every pattern, block
// size and awkward T), against the dense causal kernels bit for bit, and the decode step against
// the forward's rows; outputs start poisoned with NaN so that anything left unwritten shows.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "helpers.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/backend/cpu/sparse_attention.h"
#include "minitx/core/threads.h"
#include "minitx/sparse/attention_ref.h"
#include "minitx/sparse/layout.h"
#include "test_ops_reference.h"

namespace sp = minitx::sparse;
namespace cpu = minitx::cpu;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Pattern {
  std::string name;
  sp::BlockLayout layout;
};

// Every pattern the layouts offer, at sizes where each shows its shape: runs of consecutive
// blocks, isolated blocks, per-head layouts, and global blocks whose elements are masked.
std::vector<Pattern> patterns(std::int32_t T, std::int32_t block, std::int32_t heads) {
  return {
      {"dense_causal", sp::dense_causal(T, block)},
      {"local", sp::local(T, block, 2)},
      {"strided", sp::strided(T, block, 2, 3)},
      {"bigbird shared", sp::bigbird(T, block, 1, 1, 2, 7, 1)},
      {"bigbird per head", sp::bigbird(T, block, 2, 1, 1, 7, heads)},
      {"longformer", sp::longformer(T, block, 1, {1, T / 2, T - 1})},
      {"sinks", sp::sinks(T, block, 1, 2)},
  };
}

// max |got − want| relative to max |want|.
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 1e-30;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return worst / scale;
}

std::size_t non_finite(const std::vector<float>& v) {
  std::size_t n = 0;
  for (float x : v) n += std::isfinite(x) ? 0 : 1;
  return n;
}

// Elements whose bits differ in [begin, end) of every row of `width` (all of it by default).
std::size_t differing_bits(const std::vector<float>& a, const std::vector<float>& b, std::size_t width = 1,
                           std::size_t begin = 0, std::size_t end = 1) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (i % width >= begin && i % width < end) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0 ? 1 : 0;
  return n;
}

struct Sparse {
  std::vector<float> out, att, dinp;
};

// Forward and backward with every output (and the scratch) poisoned first.
Sparse run_sparse(const sp::BlockLayout& layout, const std::vector<float>& inp, const std::vector<float>& dout,
                  std::size_t B, std::size_t T, std::size_t C, std::size_t NH) {
  Sparse s{std::vector<float>(B * T * C, kNaN), std::vector<float>(B * NH * T * T, kNaN),
           std::vector<float>(B * T * 3 * C, kNaN)};
  std::vector<float> datt(s.att.size(), kNaN);
  cpu::sparse_attention_forward(s.out.data(), s.att.data(), inp.data(), layout, B, T, C, NH);
  cpu::sparse_attention_backward(s.dinp.data(), datt.data(), dout.data(), inp.data(), s.att.data(), layout, B, T, C,
                                 NH);
  return s;
}

// The keys (or values, part = 2) of sequence 0 as a KV cache holds them: rows of C.
std::vector<float> cache_rows(const std::vector<float>& inp, std::size_t T, std::size_t C, std::size_t part) {
  std::vector<float> rows(T * C);
  for (std::size_t t = 0; t < T; ++t)
    std::copy_n(inp.begin() + static_cast<std::ptrdiff_t>(t * 3 * C + part * C), C,
                rows.begin() + static_cast<std::ptrdiff_t>(t * C));
  return rows;
}

struct ThreadCount {
  explicit ThreadCount(int n) : old(minitx::thread_count()) { minitx::set_thread_count(n); }
  ~ThreadCount() { minitx::set_thread_count(old); }
  int old;
};

}  // namespace

TEST_CASE("cpu sparse attention: forward and backward equal the masked dense reference for every pattern") {
  const std::size_t B = 2, NH = 3, D = 12, C = NH * D;
  int combinations = 0;
  for (std::size_t T : {37, 100, 129})
    for (std::int32_t block : {16, 32, 64, 128}) {
      const auto inp = minitx::test::rand_floats(B * T * 3 * C, T), dout = minitx::test::rand_floats(B * T * C, T + 1);
      for (const Pattern& pattern : patterns(static_cast<std::int32_t>(T), block, NH)) {
        CAPTURE(pattern.name);
        CAPTURE(T);
        CAPTURE(block);
        const sp::BlockLayout& l = pattern.layout;
        const Sparse got = run_sparse(l, inp, dout, B, T, C, NH);
        CHECK(non_finite(got.out) == 0);
        CHECK(non_finite(got.att) == 0);
        CHECK(non_finite(got.dinp) == 0);

        std::vector<float> want(B * T * C), dwant(B * T * 3 * C);
        sp::attention_ref_forward(want.data(), nullptr, inp.data(), l, B, T, C, NH);
        sp::attention_ref_backward(dwant.data(), dout.data(), inp.data(), l, B, T, C, NH);
        CHECK(relative_error(got.out, want) < 1e-6);
        CHECK(relative_error(got.dinp, dwant) < 3e-6);

        // att: exactly 0 wherever the mask says no, a distribution over the rest.
        std::size_t wrong_zeros = 0, bad_rows = 0;
        for (std::size_t b = 0; b < B; ++b)
          for (std::size_t h = 0; h < NH; ++h)
            for (std::size_t i = 0; i < T; ++i) {
              const float* row = &got.att[((b * NH + h) * T + i) * T];
              double sum = 0;
              for (std::size_t j = 0; j < T; ++j) {
                const bool allowed =
                    l.allowed(static_cast<std::int32_t>(h), static_cast<std::int32_t>(i), static_cast<std::int32_t>(j));
                wrong_zeros += allowed == (row[j] == 0.0f) ? 1 : 0;
                sum += row[j];
              }
              bad_rows += std::abs(sum - 1.0) < 1e-5 ? 0 : 1;
            }
        CHECK(wrong_zeros == 0);
        CHECK(bad_rows == 0);
        ++combinations;
      }
    }
  CHECK(combinations == 3 * 4 * 7);
}

TEST_CASE("cpu sparse attention: the dense-causal layout gives cpu::attention_forward/backward's bits") {
  const std::size_t B = 2, NH = 3, D = 16, C = NH * D;
  for (std::size_t T : {37, 100, 129, 300, 600})
    for (std::int32_t block : {16, 32, 64, 128}) {
      CAPTURE(T);
      CAPTURE(block);
      const auto inp = minitx::test::rand_floats(B * T * 3 * C, 2 * T), dout = minitx::test::rand_floats(B * T * C, 2 * T + 1);
      std::vector<float> out(B * T * C), att(B * NH * T * T), datt(att.size()), dinp(B * T * 3 * C, 0.0f);
      cpu::attention_forward(out.data(), att.data(), inp.data(), B, T, C, NH);
      cpu::attention_backward(dinp.data(), datt.data(), dout.data(), inp.data(), att.data(), B, T, C, NH);
      const Sparse got = run_sparse(sp::dense_causal(static_cast<std::int32_t>(T), block), inp, dout, B, T, C, NH);
      CHECK(differing_bits(got.out, out) == 0);
      CHECK(differing_bits(got.att, att) == 0);
      // dQ always; dK and dV when both kernels cut their sums over queries at the same rows.
      CHECK(differing_bits(got.dinp, dinp, 3 * C, 0, C) == 0);
      if (block == 64 || T <= 256)
        CHECK(differing_bits(got.dinp, dinp, 3 * C, C, 3 * C) == 0);
      else
        CHECK(relative_error(got.dinp, dinp) < 1e-6);
    }
}

TEST_CASE("cpu sparse attention: decode equals the forward's row and reads only the keys the layout allows") {
  const std::size_t NH = 3, D = 12, C = NH * D, T = 100;
  const auto inp = minitx::test::rand_floats(T * 3 * C, 40);
  const auto keys = cache_rows(inp, T, C, 1), values = cache_rows(inp, T, C, 2);
  for (std::int32_t block : {16, 32}) {
    for (const Pattern& pattern : patterns(static_cast<std::int32_t>(T), block, NH)) {
      CAPTURE(pattern.name);
      CAPTURE(block);
      const sp::BlockLayout& l = pattern.layout;
      std::vector<float> out(T * C), att(NH * T * T);
      cpu::sparse_attention_forward(out.data(), att.data(), inp.data(), l, 1, T, C, NH);
      double worst = 0;
      std::size_t poisoned_reads = 0;
      for (std::size_t pos = 0; pos < T; ++pos) {
        std::vector<float> got(C, kNaN), scores(NH * (pos + 1), kNaN);
        cpu::sparse_attention_decode(got.data(), scores.data(), inp.data() + pos * 3 * C, keys.data(), values.data(), l,
                                     pos, C, NH);
        for (std::size_t c = 0; c < C; ++c)
          worst = std::max(worst, std::abs(static_cast<double>(got[c]) - out[pos * C + c]));
        // The same call with every key and value this row may not see set to NaN.
        std::vector<float> k2 = keys, v2 = values, again(C, kNaN);
        for (std::size_t h = 0; h < NH; ++h)
          for (std::size_t j = 0; j <= pos; ++j)
            if (!l.allowed(static_cast<std::int32_t>(h), static_cast<std::int32_t>(pos), static_cast<std::int32_t>(j)))
              for (std::size_t d = 0; d < D; ++d) k2[j * C + h * D + d] = v2[j * C + h * D + d] = kNaN;
        cpu::sparse_attention_decode(again.data(), scores.data(), inp.data() + pos * 3 * C, k2.data(), v2.data(), l,
                                     pos, C, NH);
        poisoned_reads += differing_bits(again, got);
      }
      CHECK(worst < 3e-6);
      CHECK(poisoned_reads == 0);
    }
  }
}

TEST_CASE("cpu sparse attention: decode with the dense-causal layout gives cpu::attention_decode's bits") {
  // C = 192: the longer positions pass attention_decode's threshold for running heads in parallel.
  const std::size_t NH = 3, C = 192, T = 300;
  const auto inp = minitx::test::rand_floats(T * 3 * C, 50);
  const auto keys = cache_rows(inp, T, C, 1), values = cache_rows(inp, T, C, 2);
  for (std::int32_t block : {16, 64, 128}) {
    const auto layout = sp::dense_causal(static_cast<std::int32_t>(T), block);
    for (std::size_t pos : {0, 1, 15, 16, 63, 170, 299}) {
      CAPTURE(block);
      CAPTURE(pos);
      const float* q = inp.data() + pos * 3 * C;
      std::vector<float> want(C), scores(NH * (pos + 1)), got(C, kNaN);
      cpu::attention_decode(want.data(), scores.data(), q, keys.data(), values.data(), pos + 1, C, NH);
      cpu::sparse_attention_decode(got.data(), scores.data(), q, keys.data(), values.data(), layout, pos, C, NH);
      CHECK(differing_bits(got, want) == 0);
    }
  }
}

TEST_CASE("cpu sparse attention: results do not depend on the thread count") {
  const std::size_t B = 2, NH = 4, D = 16, C = NH * D, T = 200;
  const auto inp = minitx::test::rand_floats(B * T * 3 * C, 60), dout = minitx::test::rand_floats(B * T * C, 61);
  const auto layout = sp::bigbird(static_cast<std::int32_t>(T), 16, 3, 1, 2, 9, static_cast<std::int32_t>(NH));
  auto run = [&](int threads) {
    ThreadCount scope(threads);
    Sparse s = run_sparse(layout, inp, dout, B, T, C, NH);
    std::vector<float> decoded(C), scores(NH * T);
    const auto keys = cache_rows(inp, T, C, 1), values = cache_rows(inp, T, C, 2);
    cpu::sparse_attention_decode(decoded.data(), scores.data(), inp.data() + (T - 1) * 3 * C, keys.data(),
                                 values.data(), layout, T - 1, C, NH);
    s.out.insert(s.out.end(), decoded.begin(), decoded.end());
    return s;
  };
  const Sparse one = run(1), three = run(3);
  CHECK(differing_bits(one.out, three.out) == 0);
  CHECK(differing_bits(one.att, three.att) == 0);
  CHECK(differing_bits(one.dinp, three.dinp) == 0);
}

TEST_CASE("cpu sparse attention: a layout of another shape is an error that names both") {
  const std::size_t B = 1, NH = 3, C = 24, T = 37;
  std::vector<float> inp(B * T * 3 * C, 0.5f), out(B * T * C), att(B * NH * T * T), dinp(inp.size()), datt(att.size());
  const auto other_t = sp::local(64, 16, 2);
  CHECK_ERROR_CONTAINS(cpu::sparse_attention_forward(out.data(), att.data(), inp.data(), other_t, B, T, C, NH),
                       "sparse_attention_forward: the layout is for T = 64, the input has T = 37");
  CHECK_ERROR_CONTAINS(cpu::sparse_attention_backward(dinp.data(), datt.data(), out.data(), inp.data(), att.data(),
                                                      other_t, B, T, C, NH),
                       "sparse_attention_backward: the layout is for T = 64, the input has T = 37");
  const auto two_heads = sp::bigbird(static_cast<std::int32_t>(T), 16, 1, 1, 1, 3, 2);
  CHECK_ERROR_CONTAINS(cpu::sparse_attention_forward(out.data(), att.data(), inp.data(), two_heads, B, T, C, NH),
                       "the layout has 2 heads, the input 3");
  const auto layout = sp::local(static_cast<std::int32_t>(T), 16, 2);
  CHECK_ERROR_CONTAINS(cpu::sparse_attention_decode(out.data(), att.data(), inp.data(), inp.data(), inp.data(), layout,
                                                    T, C, NH),
                       "position 37 is past the layout's T = 37");
  CHECK_ERROR_CONTAINS(cpu::sparse_attention_forward(out.data(), att.data(), inp.data(), layout, B, T, 25, NH),
                       "C = 25 is not a multiple of NH = 3");
}
