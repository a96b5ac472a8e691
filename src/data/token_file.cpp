#include "minitx/data/token_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "minitx/core/config.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"
#include "minitx/core/sha256.h"

namespace minitx {
namespace {

constexpr char kMagic[8] = {'M', 'T', 'X', 'T', 'O', 'K', 'S', '\0'};
constexpr std::uint32_t kVersion = 2;
constexpr std::size_t kFieldsSize = 64;   // the fields, which the checksum covers with the ids
constexpr std::size_t kHeaderSize = 96;   // the fields and the checksum

Digest checksum(const unsigned char* fields, const unsigned char* ids, std::size_t ids_size) {
  Sha256 hash;
  hash.update(fields, kFieldsSize);
  hash.update(ids, ids_size);
  return hash.finish();
}

void put_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint32_t get_u32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void write_token_file(const std::filesystem::path& path, const TokenFile& file) {
  MINITX_CHECK(file.vocab_size > 0, "{}: vocab size must be positive", path.string());
  MINITX_CHECK(is_sha256_hex(file.tokenizer_sha256), "{}: tokenizer SHA-256 '{}' is not 64 lowercase hex digits", path.string(),
               file.tokenizer_sha256);
  const std::uint32_t width = file.vocab_size <= 65536 ? 2 : 4;
  unsigned char header[kHeaderSize] = {};
  std::memcpy(header, kMagic, 8);
  put_u32(header + 8, kVersion);
  put_u32(header + 12, file.vocab_size);
  put_u32(header + 16, width);
  put_u64(header + 24, file.ids.size());
  for (int i = 0; i < 32; ++i)
    header[32 + i] = static_cast<unsigned char>(hex_value(file.tokenizer_sha256[2 * static_cast<std::size_t>(i)]) * 16 +
                                                hex_value(file.tokenizer_sha256[2 * static_cast<std::size_t>(i) + 1]));
  std::vector<unsigned char> payload(file.ids.size() * width);
  for (std::size_t i = 0; i < file.ids.size(); ++i) {
    const std::uint32_t id = file.ids[i];
    if (id >= file.vocab_size) fail("{}: token {} at position {} is not below the vocab size {}", path.string(), id, i, file.vocab_size);
    for (std::uint32_t b = 0; b < width; ++b) payload[i * width + b] = static_cast<unsigned char>(id >> (8 * b));
  }
  const Digest sum = checksum(header, payload.data(), payload.size());
  std::memcpy(header + kFieldsSize, sum.data(), sum.size());
  AtomicFile out(path);
  out.write(header, kHeaderSize);
  out.write(payload.data(), payload.size());
  out.commit();
}

TokenFile read_token_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open token file", name);
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  if (end < 0) fail("{}: cannot read token file", name);
  const auto size = static_cast<std::uint64_t>(end);
  in.seekg(0);
  unsigned char header[kHeaderSize] = {};
  // Magic and version first, so that another file, or one of an old version, is named as such.
  if (!in.read(reinterpret_cast<char*>(header), static_cast<std::streamsize>(std::min<std::uint64_t>(size, 12))))
    fail("{}: cannot read the header", name);
  if (size < 8 || std::memcmp(header, kMagic, 8) != 0) fail("{}: not a token file (bad magic)", name);
  if (size < 12) fail("{}: not a token file: {} bytes, shorter than its {}-byte header", name, size, kHeaderSize);
  const std::uint32_t version = get_u32(header + 8);
  if (version == 1)
    fail("{}: token file format version 1 (its header and ids not covered by a checksum) is no longer read: encode the "
         "corpus again (make does; or minitx tokenizer encode)", name);
  if (version != kVersion) fail("{}: token file version {} is not supported (expected {})", name, version, kVersion);
  if (size < kHeaderSize) fail("{}: not a token file: {} bytes, shorter than its {}-byte header", name, size, kHeaderSize);
  if (!in.read(reinterpret_cast<char*>(header + 12), kHeaderSize - 12)) fail("{}: cannot read the header", name);
  // The sizes against the file's length, then the checksum, then every field.
  const std::uint32_t width = get_u32(header + 16);
  const std::uint64_t count = get_u64(header + 24);
  if (width != 2 && width != 4) fail("{}: id width {} is not 2 or 4", name, width);
  if (count > (size - kHeaderSize) / width || kHeaderSize + count * width != size)
    fail("{}: header says {} ids of {} bytes, but the file has {} bytes after the header (truncated or padded)", name, count, width,
         size - kHeaderSize);
  // Sized by the file's real length (checked above), so a header cannot ask for more than is there.
  std::vector<unsigned char> payload = zeros<unsigned char>(count * width, fmt::format("{}: {} token ids", name, count));
  if (count > 0 && !in.read(reinterpret_cast<char*>(payload.data()), static_cast<std::streamsize>(payload.size())))
    fail("{}: cannot read {} ids", name, count);
  const Digest sum = checksum(header, payload.data(), payload.size());
  if (std::memcmp(sum.data(), header + kFieldsSize, sum.size()) != 0)
    fail("{}: checksum mismatch: the file is corrupt (SHA-256 of its header and ids is {})", name, to_hex(sum));
  TokenFile file;
  file.vocab_size = get_u32(header + 12);
  if (file.vocab_size == 0) fail("{}: vocab size is 0", name);
  if (width == 2 && file.vocab_size > 65536) fail("{}: id width 2 cannot hold a vocab of {}", name, file.vocab_size);
  if (get_u32(header + 20) != 0) fail("{}: reserved header field is not zero", name);
  Digest tokenizer;
  std::memcpy(tokenizer.data(), header + 32, 32);
  file.tokenizer_sha256 = to_hex(tokenizer);
  file.ids = zeros<std::uint32_t>(count, fmt::format("{}: {} token ids", name, count));
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t id = 0;
    for (std::uint32_t b = width; b-- > 0;) id = (id << 8) | payload[i * width + b];
    if (id >= file.vocab_size) fail("{}: token {} at position {} is not below the vocab size {}", name, id, i, file.vocab_size);
    file.ids[i] = id;
  }
  return file;
}

DataConfig parse_data_config(const ConfigSection& section) {
  DataConfig config;
  config.val_fraction = section.number("val_fraction", 0.0, 0.5, config.val_fraction);
  section.finish();
  return config;
}

std::size_t validation_start(std::size_t n_tokens, double val_fraction) {
  auto val = static_cast<std::size_t>(std::llround(static_cast<double>(n_tokens) * val_fraction));
  if (n_tokens >= 2 && val_fraction > 0) val = std::clamp<std::size_t>(val, 1, n_tokens - 1);
  if (val > n_tokens) val = n_tokens;
  return n_tokens - val;
}

}  // namespace minitx
