// Checkpoints (out/model.ckpt): the model's architecture, the tokenizer it was trained with, the
// step, where and how it was trained, the parameters and the AdamW moments.
//
// Layout (format version 2), little-endian:
//   0    magic "MTXCKPT\0"      8  u32 format version (2)     12  u32 header bytes H
//   16   u64 step               24 u64 parameter count         32  u64 payload bytes
//   40   u32 has optimizer state                               44  u32 description bytes D
//   48   64 ASCII hex: SHA-256 of the tokenizer.json
//   112  32 bytes: SHA-256 of the [train] section the run used (zeros: unknown)
//   144  16 bytes zero
//   160  D bytes of "key value" lines: the architecture (describe_architecture in config.h), then
//        "device cpu|cuda" and "precision fp32|bf16"; zero padding up to H (a multiple of 8)
//   H    32 bytes: SHA-256 of bytes [0, H) and of the payload
//   H+32 the payload: parameters in the tensor table's order, then m and v when present
// The checksum covers the header, so no field can change unnoticed. A reader checks the sizes
// against the file's length, then the checksum, then every field, before allocating or using
// anything; nothing is read past the end of the file. Version 1 files (GPT-2 only, header not
// covered by the checksum) are refused by name.
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
  std::string device = "cpu";       // where the parameters were last updated: cpu or cuda
  std::string precision = "fp32";   // the arithmetic of that training: fp32 or bf16
  std::vector<float> params;
  std::vector<float> m, v;  // empty when the checkpoint holds no optimizer state
};

// Atomic: written under a temporary name and renamed, so the previous checkpoint stays whole
// until the new one is complete.
void write_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
Checkpoint read_checkpoint(const std::filesystem::path& path);

}  // namespace minitx
