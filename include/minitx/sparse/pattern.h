// A model's attention pattern: the handful of numbers from which its block layout is built for
// any sequence length. It is part of the architecture (model/config.h): the [model.attention]
// table of a config, and lines of the checkpoint's and quantized file's model description, so a
// model trained sparse is evaluated and decoded with the same pattern.
//
// Every pattern is prefix-consistent: the layout for T tokens is the first T rows of the layout
// for any longer sequence (BigBird's random blocks are drawn per query block, Longformer's global
// tokens are the first positions), so training at T, evaluating at another length and decoding
// token by token all see the same mask.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "minitx/sparse/layout.h"

namespace minitx {
class ConfigSection;
}

namespace minitx::sparse {

struct AttentionPattern {
  enum class Kind { dense, local, strided, bigbird, longformer, sinks };
  Kind kind = Kind::dense;
  std::int32_t block = 64;          // tokens per block: 16, 32, 64 or 128
  std::int32_t window = 4;          // blocks of the local window, the diagonal included
  std::int32_t stride = 8;          // strided: every stride-th block column is kept
  std::int32_t global_blocks = 1;   // bigbird: the first G block columns (and rows)
  std::int32_t random_blocks = 2;   // bigbird: R random earlier blocks per query block
  bool per_head = false;            // bigbird: a different random draw per head
  std::uint64_t seed = 1;           // bigbird: the counter-based RNG's key
  std::int32_t global_tokens = 16;  // longformer: the first N positions are global
  std::int32_t sinks = 1;           // sinks: the first S blocks

  bool dense() const { return kind == Kind::dense; }
  // Do queries only ever read keys within `window` blocks, plus the sink blocks? Then a decoder
  // can keep its KV cache as a ring of that span (local, sinks).
  bool bounded() const { return kind == Kind::local || kind == Kind::sinks; }
};

const char* to_string(AttentionPattern::Kind kind);

// The layout for T tokens and `heads` heads. Dense is dense_causal at `dense_block` (a backend's
// own tile: the pattern's block size is for sparse patterns).
BlockLayout build_layout(const AttentionPattern& p, std::int32_t T, std::int32_t heads, std::int32_t dense_block);

// [model.attention]: pattern = "local", block = 64, window = 4, ... Keys that the chosen pattern
// does not use are errors that say which patterns use them.
AttentionPattern parse_attention_pattern(const ConfigSection& section);

// As "key value" lines for a model description: nothing for dense (files written before patterns
// existed describe dense models), else attention_pattern and the keys the pattern uses.
std::string describe_pattern(const AttentionPattern& p);
// Reads those lines back, erasing the keys it uses; absent attention_pattern means dense.
AttentionPattern parse_pattern(std::map<std::string, std::string>& keys, const std::string& where);
// "local (block 64, window 4)", for messages and tables.
std::string summarize_pattern(const AttentionPattern& p);

}  // namespace minitx::sparse
