// Quantized model files: a list of named tensors, each f32, q8_0 or q4_0, plus a metadata text
// (the model's config, say) that this module does not interpret. Little-endian throughout:
//
//   header, 64 bytes:
//     0  magic "MTXQUANT"
//     8  u32 version (1)
//    12  u32 tensor count
//    16  u64 table bytes (a multiple of 64: the table ends in zero padding)
//    24  u64 payload bytes
//    32  SHA-256 of everything after the header (table and payload)
//   table: u32 metadata length, metadata; then per tensor: u32 name length, name, u32 format id,
//          u32 rank, u64 dims[rank], u64 offset (from the payload's start), u64 bytes
//   payload: the tensors' rows, each tensor starting at a multiple of 64 bytes, zero padding between
//
// The file size must be exactly 64 + table + payload. A reader checks magic, version, sizes and
// checksum, then every table entry (format id, rank, shape, bytes that the format and shape
// require, offsets inside the payload and in increasing order, unique names) before it copies
// any tensor out; every read is bounds-checked, and every error names the file and what is wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "minitx/quant/tensor.h"

namespace minitx::quant {

struct QuantFile {
  std::string metadata;
  std::vector<QTensor> tensors;

  const QTensor* find(std::string_view name) const;  // null when absent
  const QTensor& get(std::string_view name) const;   // throws when absent
  std::uint64_t payload_bytes() const;                // the tensors' bytes, without padding
};

namespace qfile {
inline constexpr char kMagic[8] = {'M', 'T', 'X', 'Q', 'U', 'A', 'N', 'T'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 64;
inline constexpr std::size_t kChecksumOffset = 32;
inline constexpr std::size_t kAlign = 64;
}  // namespace qfile

// The exact bytes of the file; deterministic (no time, host or path in it).
std::string encode_quant_file(const QuantFile& file);
// `name` is used in messages (the path, usually).
QuantFile decode_quant_file(std::string_view bytes, const std::string& name);

void write_quant_file(const std::filesystem::path& path, const QuantFile& file);  // via AtomicFile
QuantFile read_quant_file(const std::filesystem::path& path);

}  // namespace minitx::quant
