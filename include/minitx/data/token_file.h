// Token files (out/train.bin, out/val.bin): the corpus as token ids, tied to the tokenizer that
// made them by its SHA-256.
//
// Layout (format version 2), little-endian, 96-byte header then the ids:
//   0  magic "MTXTOKS\0"    8  u32 format version (2)   12 u32 vocab size
//   16 u32 id width (2 or 4) 20 u32 zero                 24 u64 id count
//   32 32 bytes: SHA-256 of the tokenizer.json
//   64 32 bytes: SHA-256 of bytes [0, 64) and of the ids  96 ids, `width` bytes each
// The width is 2 when every id fits (vocab size <= 65536), else 4. Readers check that the file is
// exactly header + count * width bytes, then the checksum, which covers the header's fields, then
// every field, and that every id is below the vocab size. Version 1 files (64-byte header, no
// checksum) are refused by name.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace minitx {

class ConfigSection;

struct TokenFile {
  std::uint32_t vocab_size;
  std::string tokenizer_sha256;  // 64 lowercase hex digits
  std::vector<std::uint32_t> ids;
};

TokenFile read_token_file(const std::filesystem::path& path);
void write_token_file(const std::filesystem::path& path, const TokenFile& file);  // atomic

// [data]: how the encoded corpus is split into train.bin and val.bin.
struct DataConfig {
  double val_fraction = 0.1;  // the last fraction of the corpus's tokens is validation
};
DataConfig parse_data_config(const ConfigSection& section);

// The deterministic split: train = ids[0, n - v), val = ids[n - v, n) with v = round(n * fraction),
// and at least one token on each side when n >= 2.
std::size_t validation_start(std::size_t n_tokens, double val_fraction);

}  // namespace minitx
