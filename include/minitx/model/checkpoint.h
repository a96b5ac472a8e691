// Checkpoints (out/model.ckpt): the model's shape, the tokenizer it was trained with, the step,
// the parameters and the AdamW moments.
//
// Layout, little-endian:
//   0   magic "MTXCKPT\0"                 8  u32 format version (1)        12 u32 header bytes (192)
//   16  u32 n_layer  20 u32 n_embd  24 u32 n_head  28 u32 context  32 u32 vocab_size
//   36  u32 position  40 u32 activation  44 u32 parallel_residual  48 f64 rotary_fraction
//   56  u64 step      64 u64 parameter count   72 u32 has optimizer state  76 u32 zero
//   80  64 ASCII hex: SHA-256 of the tokenizer.json
//   144 32 bytes: SHA-256 of the [train] section the run used (resume refuses another)
//   176 u64 payload bytes   184 u64 zero
//   192 32 bytes: SHA-256 of the payload, then the payload: parameters, then m and v when present
// A reader checks every field and the payload hash before using anything; nothing is read past
// the end of the file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "minitx/model/config.h"

namespace minitx {

struct Checkpoint {
  ModelConfig config;
  std::string tokenizer_sha256;  // 64 lowercase hex
  std::string train_sha256;      // 64 lowercase hex, or empty when unknown
  std::uint64_t step = 0;
  std::vector<float> params;
  std::vector<float> m, v;  // empty when the checkpoint holds no optimizer state
};

// Atomic: written under a temporary name and renamed, so the previous checkpoint stays whole
// until the new one is complete.
void write_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
Checkpoint read_checkpoint(const std::filesystem::path& path);

}  // namespace minitx
