// The patterns `minitx bench attention` times, by name (cmd_bench_attention.cpp). Each is a
// sparse::AttentionPattern, the descriptor a model's [model.attention] reads, turned into a layout
// by the model's own sparse::build_layout at the bench's --block: one way from a pattern to a
// layout. The one mask no pattern describes, the peer script's hash-drawn BigBird, is marked.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "minitx/sparse/layout.h"
#include "minitx/sparse/pattern.h"

namespace minitx::cli {

struct AttentionPreset {
  std::string_view name;             // the CSV's pattern column
  sparse::AttentionPattern pattern;  // its block is the bench's --block
  // bigbird_peer: the random blocks are torch_peers.py's hash of (qb, kb), not CounterRng draws;
  // the window and global blocks are the pattern's.
  bool peer_hash = false;
};

// In the order of the default --patterns.
const std::vector<AttentionPreset>& attention_presets();
// Fails "bench attention: unknown pattern 'NAME' (causal, local, ...)".
const AttentionPreset& attention_preset(const std::string& name);
// One head's layout for T tokens in blocks of `block`.
sparse::BlockLayout preset_layout(const AttentionPreset& preset, std::int32_t T, std::int32_t block);
// The positions whose k and v a decoder at length T must still hold: a later query of a bounded
// pattern (local, sinks) reads only its window and sinks, so its cache can be a ring of that span
// (as the model's KvCache keeps it); every other pattern may read any earlier position.
std::int64_t preset_kv_positions(const AttentionPreset& preset, std::int32_t T, std::int32_t block);

}  // namespace minitx::cli
