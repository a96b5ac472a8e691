// Block layouts: each pattern against rows written out by hand on a small T whose last block is
// partial (T = 100, block 16: 7 blocks, the last holding 4 tokens), the element mask, and the
// validation rejecting malformed layouts by the name of what is wrong.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "helpers.h"
#include "minitx/sparse/layout.h"

namespace sp = minitx::sparse;
using sp::BlockKind;
using Rows = std::vector<std::vector<std::int32_t>>;

namespace {

constexpr std::int32_t kT = 100, kBlock = 16;

Rows rows_of(const sp::BlockLayout& l, std::int32_t h = 0) {
  Rows out;
  for (std::int32_t qb = 0; qb < l.nb; ++qb) {
    const std::size_t r = static_cast<std::size_t>(h) * l.nb + qb;
    out.emplace_back(l.cols.begin() + l.row_ptr[r], l.cols.begin() + l.row_ptr[r + 1]);
  }
  return out;
}

// Every kept block is full, except the diagonal (causal).
void check_position_kinds(const sp::BlockLayout& l) {
  for (std::int32_t qb = 0; qb < l.nb; ++qb)
    for (std::int32_t e = l.row_ptr[qb]; e < l.row_ptr[qb + 1]; ++e)
      CHECK(l.kinds[e] == (l.cols[e] == qb ? BlockKind::causal : BlockKind::full));
}

}  // namespace

TEST_CASE("layout: dense causal keeps every block up to the diagonal") {
  const auto l = sp::dense_causal(kT, kBlock);
  CHECK(l.nb == 7);
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5, 6}});
  check_position_kinds(l);
  CHECK(l.density() == 1.0);
  CHECK(l.allowed(0, 99, 0));
  CHECK(l.allowed(0, 40, 40));
  CHECK_FALSE(l.allowed(0, 40, 41));
  CHECK_FALSE(l.allowed(0, 100, 3));  // past T
  // The transpose: key block 5 is attended by query blocks 5 and 6.
  CHECK(std::vector<std::int32_t>(l.t_rows.begin() + l.t_row_ptr[5], l.t_rows.begin() + l.t_row_ptr[6]) ==
        std::vector<std::int32_t>{5, 6});
}

TEST_CASE("layout: local window of W blocks") {
  const auto l = sp::local(kT, kBlock, 2);
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}});
  check_position_kinds(l);
  CHECK(l.density() == doctest::Approx(13.0 / 28.0));
  CHECK(l.allowed(0, 40, 16));       // block 2 sees block 1
  CHECK_FALSE(l.allowed(0, 40, 15));  // but not block 0
}

TEST_CASE("layout: strided is local plus every S-th block column (the peer's definition)") {
  const auto l = sp::strided(kT, kBlock, 2, 3);
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {1, 2}, {2, 3}, {2, 3, 4}, {2, 4, 5}, {2, 5, 6}});
  check_position_kinds(l);
  // Against the peer's formula: (qb - kb < W) | (kb % S == S - 1), causal.
  const auto p = sp::layout_from_predicate(kT, kBlock, 1, [](std::int32_t, std::int32_t qb, std::int32_t kb) {
    return qb - kb < 2 || kb % 3 == 2;
  });
  CHECK(p.cols == l.cols);
  CHECK(p.row_ptr == l.row_ptr);
}

TEST_CASE("layout: sinks are the first S blocks plus a window") {
  const auto l = sp::sinks(kT, kBlock, 1, 2);
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {0, 1, 2}, {0, 2, 3}, {0, 3, 4}, {0, 4, 5}, {0, 5, 6}});
  check_position_kinds(l);
}

TEST_CASE("layout: bigbird without random blocks is local plus the global columns") {
  const auto l = sp::bigbird(kT, kBlock, 2, 2, 0, 7);
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 3, 4}, {0, 1, 4, 5}, {0, 1, 5, 6}});
  check_position_kinds(l);
}

TEST_CASE("layout: bigbird random blocks are seeded, distinct and per head") {
  const std::int32_t T = 1000, R = 2;
  const auto a = sp::bigbird(T, kBlock, 1, 1, R, 42, 4), b = sp::bigbird(T, kBlock, 1, 1, R, 42, 4);
  const auto other = sp::bigbird(T, kBlock, 1, 1, R, 43, 4);
  CHECK(a.cols == b.cols);
  CHECK(a.cols != other.cols);
  CHECK(rows_of(a, 0) != rows_of(a, 1));
  for (std::int32_t h = 0; h < 4; ++h) {
    const Rows rows = rows_of(a, h);
    for (std::int32_t qb = 0; qb < a.nb; ++qb) {
      // diagonal + column 0 + R random among the qb - 1 others (fewer when fewer are free).
      const std::size_t expect = qb == 0 ? 1 : 2 + static_cast<std::size_t>(std::min(R, qb - 1));
      CHECK(rows[qb].size() == expect);
      CHECK(rows[qb].front() == 0);
      CHECK(rows[qb].back() == qb);
    }
  }
}

TEST_CASE("layout: longformer global tokens attend and are attended, causally") {
  const auto l = sp::longformer(kT, kBlock, 1, {0, 50});  // token 50 lies in block 3
  CHECK(rows_of(l) == Rows{{0}, {0, 1}, {0, 2}, {0, 1, 2, 3}, {0, 3, 4}, {0, 3, 5}, {0, 3, 6}});
  for (std::int32_t qb = 0; qb < l.nb; ++qb)
    for (std::int32_t e = l.row_ptr[qb]; e < l.row_ptr[qb + 1]; ++e)
      CHECK(l.kinds[e] == (l.cols[e] == qb ? BlockKind::causal : BlockKind::global));
  CHECK(l.allowed(0, 20, 0));         // every token sees token 0
  CHECK_FALSE(l.allowed(0, 20, 5));   // but not its neighbours outside the window
  CHECK(l.allowed(0, 50, 40));        // token 50 sees everything before it
  CHECK(l.allowed(0, 60, 50));        // and is seen by everything after it
  CHECK_FALSE(l.allowed(0, 60, 47));  // block 2: neither token is global
  CHECK_FALSE(l.allowed(0, 40, 50));  // causally
  CHECK(l.allowed(0, 99, 97));        // the window (the diagonal block)
}

TEST_CASE("layout: validation names what is wrong") {
  const auto c = BlockKind::causal, f = BlockKind::full;
  // T = 40, block 16: 3 blocks. A valid layout first.
  CHECK(sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 0, 1, 1, 2}, {c, f, c, f, c}).kept_blocks() == 5);
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 48, 1, {0, 1}, {0}, {c}), "bad-shape");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 3}, {0, 0, 1}, {c, f, c}), "bad-offsets");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 0, 1, 1, 3}, {c, f, c, f, c}),
                       "out-of-range");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 1, 0, 1, 2}, {c, c, f, f, c}), "unsorted");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 2, 4, 5}, {0, 1, 0, 1, 2}, {c, f, f, c, c}), "not-causal");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 2, 4}, {0, 0, 1, 2}, {c, f, f, c}), "no-diagonal");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 0, 1, 1, 2}, {c, f, f, f, c}), "bad-kind");
  CHECK_ERROR_CONTAINS(
      sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 0, 1, 1, 2}, {c, BlockKind::global, c, f, c}), "bad-kind");
  CHECK_ERROR_CONTAINS(sp::layout_from_rows(40, 16, 1, {0, 1, 3, 5}, {0, 0, 1, 1, 2}, {c, f, c, f, c}, {1, 0}),
                       "bad-globals");
  auto l = sp::dense_causal(40, 16);
  l.t_rows[0] = 2;
  CHECK_ERROR_CONTAINS(sp::validate(l), "transpose-mismatch");
  auto k = sp::dense_causal(40, 16);
  k.kinds[1] = static_cast<BlockKind>(7);
  CHECK_ERROR_CONTAINS(sp::validate(k), "bad-kind");
}
