// The dense kernel's plan (attention.cpp), walked over kept blocks only. Consecutive kept blocks
// form a run and each run is one sgemm, so a local window costs one product per query block.
// Scores, probabilities and their gradients live at their (i, j) places in att and datt (row
// stride T): the transposed walk of the backward then reads the same blocks as plain
// sub-matrices, and with the dense-causal layout every product, softmax and row sum is the
// very call the dense kernel makes on the same numbers (the tile sizes may differ, which sgemm
// guarantees cannot change a bit).
#include "minitx/backend/cpu/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/matvec.h"
#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "simd_math.h"

namespace minitx::cpu {
namespace {

using sparse::BlockKind;
using sparse::BlockLayout;

// Consecutive kept blocks of one CSR row: token columns [begin, end) (end clipped where the
// caller says) and the entries [e0, e1) of the row that make it up.
struct Run {
  std::size_t begin, end;
  std::int32_t e0, e1;
};

void collect_runs(std::vector<Run>& runs, const std::int32_t* blocks, std::int32_t e0, std::int32_t e1,
                  std::size_t block, std::size_t limit) {
  runs.clear();
  for (std::int32_t e = e0; e < e1;) {
    std::int32_t f = e + 1;
    while (f < e1 && blocks[f] == blocks[f - 1] + 1) ++f;
    const std::size_t first = static_cast<std::size_t>(blocks[e]), last = static_cast<std::size_t>(blocks[f - 1]);
    runs.push_back({first * block, std::min(limit, (last + 1) * block), e, f});
    e = f;
  }
}

// A global block keeps (i, j) only when token i or j is global: does row i need the per-key test?
bool global_masks_row(const BlockLayout& l, BlockKind kind, std::size_t i) {
  return kind == BlockKind::global && l.global_tokens[i] == 0;
}

// Row i's masked keys inside its global blocks get -inf, which exp turns into an exact 0.
void mask_globals(float* row, std::size_t i, const std::vector<Run>& runs, const BlockLayout& l, std::size_t T) {
  const std::size_t bs = static_cast<std::size_t>(l.block);
  for (const Run& r : runs)
    for (std::int32_t e = r.e0; e < r.e1; ++e) {
      if (!global_masks_row(l, l.kinds[e], i)) continue;
      const std::size_t j0 = static_cast<std::size_t>(l.cols[e]) * bs, j1 = std::min(T, j0 + bs);
      for (std::size_t j = j0; j < j1; ++j)
        if (l.global_tokens[j] == 0) row[j] = -INFINITY;
    }
}

// Softmax in place over the runs' columns below n. The exponentials are summed run by run and
// the sums added in run order: for the single run [0, n) of a dense row this is exactly
// causal_softmax_row's arithmetic (and max is exact in any order).
void softmax_runs(float* row, const std::vector<Run>& runs, std::size_t n) {
  float max = -INFINITY;
  for (const Run& r : runs)
    for (std::size_t j = r.begin; j < std::min(r.end, n); ++j) max = std::max(max, row[j]);
  float sum = 0.0f;
  for (const Run& r : runs) sum += detail::exp_shifted_sum(row + r.begin, std::min(r.end, n) - r.begin, max);
  const float inv = 1.0f / sum;
  for (const Run& r : runs)
    for (std::size_t j = r.begin; j < std::min(r.end, n); ++j) row[j] *= inv;
}

// Columns [0, T) outside the runs' columns below n become 0: att is complete for any reader.
void zero_outside(float* row, const std::vector<Run>& runs, std::size_t n, std::size_t T) {
  std::size_t done = 0;
  for (const Run& r : runs) {
    std::fill(row + done, row + r.begin, 0.0f);
    done = std::min(r.end, n);
  }
  std::fill(row + done, row + T, 0.0f);
}

// dS = P ⊙ (dP − Σ_j P·dP) in place over dP on row i's kept columns, summed in column order as
// the dense kernel does; the diagonal block's columns past i become 0 for the dK pass.
void softmax_grad_row(float* dr, const float* pr, std::size_t i, const std::vector<Run>& runs) {
  float dot = 0.0f;
  for (const Run& r : runs)
    for (std::size_t j = r.begin; j < std::min(r.end, i + 1); ++j) dot += pr[j] * dr[j];
  for (const Run& r : runs)
    for (std::size_t j = r.begin; j < std::min(r.end, i + 1); ++j) dr[j] = pr[j] * (dr[j] - dot);
  std::fill(dr + i + 1, dr + runs.back().end, 0.0f);
}

void check_args(const char* what, const BlockLayout& l, std::size_t T, std::size_t C, std::size_t NH) {
  MINITX_CHECK(NH >= 1 && C % NH == 0, "{}: C = {} is not a multiple of NH = {}", what, C, NH);
  MINITX_CHECK(l.T >= 1 && static_cast<std::size_t>(l.T) == T, "{}: the layout is for T = {}, the input has T = {}",
               what, l.T, T);
  MINITX_CHECK(l.heads == 1 || static_cast<std::size_t>(l.heads) == NH,
               "{}: the layout has {} heads, the input {} (a layout has 1 head, shared, or one per head)", what,
               l.heads, NH);
  // What indexing relies on; the rest was checked when the layout was built (sparse::validate).
  const std::size_t rows = static_cast<std::size_t>(l.heads) * static_cast<std::size_t>(l.nb) + 1;
  MINITX_CHECK(l.block > 0 && l.nb == (l.T + l.block - 1) / l.block && l.row_ptr.size() == rows &&
                   l.t_row_ptr.size() == rows,
               "{}: the layout's lists do not fit its shape (make layouts with the sparse:: builders)", what);
}

std::size_t layout_row(const BlockLayout& l, std::size_t h, std::size_t block) {
  return (l.heads == 1 ? 0 : h) * static_cast<std::size_t>(l.nb) + block;
}

}  // namespace

void sparse_attention_forward(float* out, float* att, const float* inp, const BlockLayout& layout, std::size_t B,
                              std::size_t T, std::size_t C, std::size_t NH) {
  check_args("sparse_attention_forward", layout, T, C, NH);
  const std::size_t hs = C / NH, C3 = 3 * C, bs = static_cast<std::size_t>(layout.block);
  const std::size_t nb = static_cast<std::size_t>(layout.nb);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  parallel_for(B * NH, [&](std::size_t begin, std::size_t end) {
    std::vector<Run> runs;
    for (std::size_t bh = begin; bh < end; ++bh) {
      const std::size_t b = bh / NH, h = bh % NH;
      const float* q = inp + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* p = att + bh * T * T;
      float* o = out + b * T * C + h * hs;
      for (std::size_t qb = 0; qb < nb; ++qb) {
        const std::size_t i0 = qb * bs, i1 = std::min(T, i0 + bs), rows = i1 - i0;
        const std::size_t r = layout_row(layout, h, qb);
        collect_runs(runs, layout.cols.data(), layout.row_ptr[r], layout.row_ptr[r + 1], bs, T);
        for (const Run& run : runs)
          sgemm(Trans::no, Trans::yes, rows, run.end - run.begin, hs, scale, q + i0 * C3, C3, k + run.begin * C3, C3,
                0.0f, p + i0 * T + run.begin, T);
        for (std::size_t i = i0; i < i1; ++i) {
          float* row = p + i * T;
          if (!layout.global_tokens.empty()) mask_globals(row, i, runs, layout, T);
          softmax_runs(row, runs, i + 1);
          zero_outside(row, runs, i + 1, T);
        }
        for (std::size_t n = 0; n < runs.size(); ++n)
          sgemm(Trans::no, Trans::no, rows, hs, runs[n].end - runs[n].begin, 1.0f, p + i0 * T + runs[n].begin, T,
                v + runs[n].begin * C3, C3, n == 0 ? 0.0f : 1.0f, o + i0 * C, C);
      }
    }
  });
}

void sparse_attention_backward(float* dinp, float* datt, const float* dout, const float* inp, const float* att,
                               const BlockLayout& layout, std::size_t B, std::size_t T, std::size_t C, std::size_t NH) {
  check_args("sparse_attention_backward", layout, T, C, NH);
  const std::size_t hs = C / NH, C3 = 3 * C, bs = static_cast<std::size_t>(layout.block);
  const std::size_t nb = static_cast<std::size_t>(layout.nb);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  parallel_for(B * NH, [&](std::size_t begin, std::size_t end) {
    std::vector<Run> runs;
    for (std::size_t bh = begin; bh < end; ++bh) {
      const std::size_t b = bh / NH, h = bh % NH;
      const float* q = inp + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* dq = dinp + b * T * C3 + h * hs;
      float* dk = dq + C;
      float* dv = dq + 2 * C;
      const float* p = att + bh * T * T;
      float* ds = datt + bh * T * T;
      const float* d_o = dout + b * T * C + h * hs;
      // Query blocks: dP = dO·Vᵀ on kept blocks, dS row by row, dQ = scale·dS·K. The first run
      // overwrites dQ (every query block keeps its diagonal, so every row is written).
      for (std::size_t qb = 0; qb < nb; ++qb) {
        const std::size_t i0 = qb * bs, i1 = std::min(T, i0 + bs), rows = i1 - i0;
        const std::size_t r = layout_row(layout, h, qb);
        collect_runs(runs, layout.cols.data(), layout.row_ptr[r], layout.row_ptr[r + 1], bs, T);
        for (const Run& run : runs)
          sgemm(Trans::no, Trans::yes, rows, run.end - run.begin, hs, 1.0f, d_o + i0 * C, C, v + run.begin * C3, C3,
                0.0f, ds + i0 * T + run.begin, T);
        for (std::size_t i = i0; i < i1; ++i) softmax_grad_row(ds + i * T, p + i * T, i, runs);
        for (std::size_t n = 0; n < runs.size(); ++n)
          sgemm(Trans::no, Trans::no, rows, hs, runs[n].end - runs[n].begin, scale, ds + i0 * T + runs[n].begin, T,
                k + runs[n].begin * C3, C3, n == 0 ? 0.0f : 1.0f, dq + i0 * C3, C3);
      }
      // Key blocks over the transpose, query blocks in increasing order: dV = Pᵀ·dO and
      // dK = scale·dSᵀ·Q, the first run overwriting (every key block is attended by its own
      // query block). Consecutive query blocks make one product, as the dense kernel's one
      // product over all later queries.
      for (std::size_t kb = 0; kb < nb; ++kb) {
        const std::size_t j0 = kb * bs, j1 = std::min(T, j0 + bs), keys = j1 - j0;
        const std::size_t r = layout_row(layout, h, kb);
        collect_runs(runs, layout.t_rows.data(), layout.t_row_ptr[r], layout.t_row_ptr[r + 1], bs, T);
        for (std::size_t n = 0; n < runs.size(); ++n) {
          const std::size_t r0 = runs[n].begin, queries = runs[n].end - r0;
          const float beta = n == 0 ? 0.0f : 1.0f;
          sgemm(Trans::yes, Trans::no, keys, hs, queries, 1.0f, p + r0 * T + j0, T, d_o + r0 * C, C, beta,
                dv + j0 * C3, C3);
          sgemm(Trans::yes, Trans::no, keys, hs, queries, scale, ds + r0 * T + j0, T, q + r0 * C3, C3, beta,
                dk + j0 * C3, C3);
        }
      }
    }
  });
}

void sparse_attention_decode(float* out, float* scores, const float* q, const float* keys, const float* values,
                             const BlockLayout& layout, std::size_t pos, std::size_t C, std::size_t NH,
                             const KvSlots& slots) {
  check_args("sparse_attention_decode", layout, static_cast<std::size_t>(layout.T), C, NH);
  MINITX_CHECK(pos < static_cast<std::size_t>(layout.T), "sparse_attention_decode: position {} is past the layout's T = {}",
               pos, layout.T);
  const std::size_t hs = C / NH, n = pos + 1, bs = static_cast<std::size_t>(layout.block), qb = pos / bs;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const bool globals = !layout.global_tokens.empty();
  // Arithmetic as attention_decode's, over the kept keys: dot products, one softmax per run,
  // then the weighted values summed in key order. Masked keys are skipped, never read.
  auto heads = [&](std::size_t h0, std::size_t h1) {
    thread_local std::vector<Run> runs;
    for (std::size_t h = h0; h < h1; ++h) {
      const std::size_t r = layout_row(layout, h, qb);
      collect_runs(runs, layout.cols.data(), layout.row_ptr[r], layout.row_ptr[r + 1], bs, n);
      float* s = scores + h * n;
      const float* qh = q + h * hs;
      auto for_each_key = [&](auto&& fn) {
        for (const Run& run : runs)
          for (std::int32_t e = run.e0; e < run.e1; ++e) {
            const std::size_t j0 = static_cast<std::size_t>(layout.cols[e]) * bs, j1 = std::min(n, j0 + bs);
            const bool masked = globals && global_masks_row(layout, layout.kinds[e], pos);
            for (std::size_t j = j0; j < j1; ++j) fn(j, masked && layout.global_tokens[j] == 0);
          }
      };
      for_each_key([&](std::size_t j, bool masked) {
        s[j] = masked ? -INFINITY : scale * dot(qh, keys + slots(j) * C + h * hs, hs);
      });
      softmax_runs(s, runs, n);
      float* o = out + h * hs;
      std::fill(o, o + hs, 0.0f);
      for_each_key([&](std::size_t j, bool masked) {
        if (masked) return;
        const float pj = s[j];
        const float* vj = values + slots(j) * C + h * hs;
        for (std::size_t e = 0; e < hs; ++e) o[e] += pj * vj[e];
      });
    }
  };
  // As attention_decode: heads in parallel only when there is enough to read to pay for it.
  const std::size_t r0 = layout_row(layout, 0, qb);
  const std::size_t kept_blocks = static_cast<std::size_t>(layout.row_ptr[r0 + 1] - layout.row_ptr[r0]);
  if (kept_blocks * bs * C < 32768)
    heads(0, NH);
  else
    parallel_for(NH, heads);
}

}  // namespace minitx::cpu
