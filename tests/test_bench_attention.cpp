// The patterns `minitx bench attention` times (src/cli/bench_attention.h), built through the
// model's AttentionPattern and sparse::build_layout: each one's layout at T = 150, block 16 (10
// blocks, the last holding 6 tokens, so strided's column 7 shows in row 9), written as
// --export-masks writes a row ("kb:kind", kind 0 full, 1 causal, 2 global), and the KV positions
// behind its memory column. These are the layouts the published numbers were measured on: the
// rows are those the bench's own pattern code gave before it went through the descriptor.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "../src/cli/bench_attention.h"
#include "helpers.h"

namespace {

using Rows = std::vector<std::string>;

Rows rows_of(const minitx::sparse::BlockLayout& l) {
  Rows out;
  for (std::int32_t qb = 0; qb < l.nb; ++qb) {
    std::string row;
    for (std::int32_t e = l.row_ptr[qb]; e < l.row_ptr[qb + 1]; ++e)
      row += (row.empty() ? "" : " ") + std::to_string(l.cols[e]) + ":" + std::to_string(static_cast<int>(l.kinds[e]));
    out.push_back(row);
  }
  return out;
}

}  // namespace

TEST_CASE("bench attention: every preset's layout at T = 150, block 16, block by block") {
  using minitx::cli::attention_presets;
  struct Expected {
    Rows rows;
    std::int64_t kv_positions;
  };
  const std::map<std::string, Expected> expected = {
      {"causal",
       {{"0:1", "0:0 1:1", "0:0 1:0 2:1", "0:0 1:0 2:0 3:1", "0:0 1:0 2:0 3:0 4:1", "0:0 1:0 2:0 3:0 4:0 5:1",
         "0:0 1:0 2:0 3:0 4:0 5:0 6:1", "0:0 1:0 2:0 3:0 4:0 5:0 6:0 7:1", "0:0 1:0 2:0 3:0 4:0 5:0 6:0 7:0 8:1",
         "0:0 1:0 2:0 3:0 4:0 5:0 6:0 7:0 8:0 9:1"},
        150}},
      // The diagonal and the block before it: a ring of 2 blocks.
      {"local",
       {{"0:1", "0:0 1:1", "1:0 2:1", "2:0 3:1", "3:0 4:1", "4:0 5:1", "5:0 6:1", "6:0 7:1", "7:0 8:1", "8:0 9:1"}, 32}},
      // Local plus every 8th column (kb % 8 == 7): new only in row 9.
      {"strided",
       {{"0:1", "0:0 1:1", "1:0 2:1", "2:0 3:1", "3:0 4:1", "4:0 5:1", "5:0 6:1", "6:0 7:1", "7:0 8:1", "7:0 8:0 9:1"},
        150}},
      // Window 2, column 0, and (7 qb + 13 kb) % 11 == 0 adds (6, 1), (7, 3), (8, 5) and (9, 7).
      {"bigbird_peer",
       {{"0:1", "0:0 1:1", "0:0 1:0 2:1", "0:0 2:0 3:1", "0:0 3:0 4:1", "0:0 4:0 5:1", "0:0 1:0 5:0 6:1",
         "0:0 3:0 6:0 7:1", "0:0 5:0 7:0 8:1", "0:0 7:0 8:0 9:1"},
        150}},
      // Window 2, column 0, two random earlier blocks per row from CounterRng(1, 0) (all of them
      // while fewer than two are free).
      {"bigbird",
       {{"0:1", "0:0 1:1", "0:0 1:0 2:1", "0:0 1:0 2:0 3:1", "0:0 1:0 2:0 3:0 4:1", "0:0 2:0 3:0 4:0 5:1",
         "0:0 1:0 4:0 5:0 6:1", "0:0 1:0 4:0 6:0 7:1", "0:0 2:0 5:0 7:0 8:1", "0:0 1:0 4:0 8:0 9:1"},
        150}},
      // Window 2 plus the 16 global tokens (block 0), kept as global blocks below row 1.
      {"longformer",
       {{"0:1", "0:0 1:1", "0:2 1:0 2:1", "0:2 2:0 3:1", "0:2 3:0 4:1", "0:2 4:0 5:1", "0:2 5:0 6:1", "0:2 6:0 7:1",
         "0:2 7:0 8:1", "0:2 8:0 9:1"},
        150}},
      // One sink block and a window of 4: a ring of 5 blocks.
      {"sinks",
       {{"0:1", "0:0 1:1", "0:0 1:0 2:1", "0:0 1:0 2:0 3:1", "0:0 1:0 2:0 3:0 4:1", "0:0 2:0 3:0 4:0 5:1",
         "0:0 3:0 4:0 5:0 6:1", "0:0 4:0 5:0 6:0 7:1", "0:0 5:0 6:0 7:0 8:1", "0:0 6:0 7:0 8:0 9:1"},
        80}},
  };
  std::string names;
  for (const auto& preset : attention_presets()) {
    const std::string name(preset.name);
    CAPTURE(name);
    names += (names.empty() ? "" : ",") + name;
    const auto it = expected.find(name);
    REQUIRE_MESSAGE(it != expected.end(), "a preset without expected rows here");
    const auto layout = minitx::cli::preset_layout(preset, 150, 16);
    CHECK(layout.heads == 1);
    CHECK(rows_of(layout) == it->second.rows);
    CHECK(minitx::cli::preset_kv_positions(preset, 150, 16) == it->second.kv_positions);
    CHECK(&minitx::cli::attention_preset(name) == &preset);
  }
  // The default --patterns, in order; "dense" is the model's name for causal, not the bench's.
  CHECK(names == "causal,local,strided,bigbird_peer,bigbird,longformer,sinks");
  CHECK_ERROR_CONTAINS(minitx::cli::attention_preset("dense"),
                       "bench attention: unknown pattern 'dense' (causal, local, strided, bigbird_peer, bigbird, "
                       "longformer, sinks)");
}
