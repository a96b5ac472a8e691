#include "minitx/model/checkpoint.h"

#include <cstring>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"
#include "minitx/core/sha256.h"
#include "minitx/model/params.h"

namespace minitx {
namespace {

constexpr char kMagic[8] = {'M', 'T', 'X', 'C', 'K', 'P', 'T', '\0'};
constexpr std::uint32_t kVersion = 2;
constexpr std::size_t kFixedBytes = 160;
constexpr std::size_t kMaxHeaderBytes = 65536;

template <class T>
void put(std::string& out, std::size_t at, T value) {
  std::memcpy(out.data() + at, &value, sizeof value);
}
template <class T>
T get(const std::string& in, std::size_t at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  return value;
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out(32, '\0');
  for (std::size_t i = 0; i < 32; ++i) out[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::string description(const Checkpoint& ck) {
  return describe_architecture(ck.config) + "device " + ck.device + "\nprecision " + ck.precision + "\n";
}

}  // namespace

void write_checkpoint(const std::filesystem::path& path, const Checkpoint& ck) {
  const ModelConfig& c = ck.config;
  MINITX_CHECK(ck.params.size() == param_count(c), "{}: {} parameters given for a model of {}", path.string(),
               ck.params.size(), param_count(c));
  const bool has_opt = !ck.m.empty();
  MINITX_CHECK(!has_opt || (ck.m.size() == ck.params.size() && ck.v.size() == ck.params.size()),
               "{}: optimizer state does not match the parameters", path.string());
  MINITX_CHECK(is_sha256_hex(ck.tokenizer_sha256), "{}: tokenizer hash '{}' is not 64 hex digits", path.string(),
               ck.tokenizer_sha256);
  const std::string text = description(ck);
  const std::size_t header_bytes = (kFixedBytes + text.size() + 7) / 8 * 8;
  MINITX_CHECK(header_bytes <= kMaxHeaderBytes, "{}: the model description is too long", path.string());
  const std::size_t bytes = ck.params.size() * sizeof(float);
  std::string header(header_bytes, '\0');
  std::memcpy(header.data(), kMagic, 8);
  put<std::uint32_t>(header, 8, kVersion);
  put<std::uint32_t>(header, 12, static_cast<std::uint32_t>(header_bytes));
  put<std::uint64_t>(header, 16, ck.step);
  put<std::uint64_t>(header, 24, ck.params.size());
  put<std::uint64_t>(header, 32, has_opt ? 3 * bytes : bytes);
  put<std::uint32_t>(header, 40, has_opt ? 1u : 0u);
  put<std::uint32_t>(header, 44, static_cast<std::uint32_t>(text.size()));
  std::memcpy(header.data() + 48, ck.tokenizer_sha256.data(), 64);
  if (!ck.train_sha256.empty()) std::memcpy(header.data() + 112, hex_to_bytes(ck.train_sha256).data(), 32);
  std::memcpy(header.data() + kFixedBytes, text.data(), text.size());
  Sha256 hash;
  hash.update(header.data(), header.size());
  hash.update(ck.params.data(), bytes);
  if (has_opt) {
    hash.update(ck.m.data(), bytes);
    hash.update(ck.v.data(), bytes);
  }
  const Digest digest = hash.finish();
  AtomicFile file(path);
  file.write(header);
  file.write(digest.data(), digest.size());
  file.write(ck.params.data(), bytes);
  if (has_opt) {
    file.write(ck.m.data(), bytes);
    file.write(ck.v.data(), bytes);
  }
  file.commit();
}

Checkpoint read_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  const std::string data = read_file(path);
  MINITX_CHECK(data.size() >= 16, "{}: {} bytes is too short for a checkpoint (truncated?)", name, data.size());
  MINITX_CHECK(std::memcmp(data.data(), kMagic, 8) == 0, "{}: not a minitx checkpoint (wrong magic)", name);
  const auto version = get<std::uint32_t>(data, 8);
  MINITX_CHECK(version != 1, "{}: checkpoint format version 1 (GPT-2 only, written before the architecture descriptor) "
               "is no longer read: train again, or import the model again", name);
  MINITX_CHECK(version == kVersion, "{}: checkpoint format version {} is not supported (expected {})", name, version,
               kVersion);
  const std::size_t header_bytes = get<std::uint32_t>(data, 12);
  MINITX_CHECK(header_bytes >= kFixedBytes && header_bytes <= kMaxHeaderBytes && header_bytes % 8 == 0,
               "{}: header size {} is not a multiple of 8 from {} to {}", name, header_bytes, kFixedBytes,
               kMaxHeaderBytes);
  MINITX_CHECK(data.size() >= header_bytes + 32, "{}: {} bytes is too short for its header of {} bytes (truncated?)",
               name, data.size(), header_bytes + 32);
  const std::size_t payload = data.size() - header_bytes - 32;
  MINITX_CHECK(get<std::uint64_t>(data, 32) == payload,
               "{}: the header says {} payload bytes, the file holds {} (truncated or padded)", name,
               get<std::uint64_t>(data, 32), payload);
  Digest expected;
  std::memcpy(expected.data(), data.data() + header_bytes, 32);
  Sha256 hash;
  hash.update(data.data(), header_bytes);
  hash.update(data.data() + header_bytes + 32, payload);
  MINITX_CHECK(hash.finish() == expected, "{}: checksum mismatch: the file is corrupt", name);

  Checkpoint ck;
  const std::size_t text_bytes = get<std::uint32_t>(data, 44);
  MINITX_CHECK(text_bytes <= header_bytes - kFixedBytes, "{}: description of {} bytes overruns the header", name,
               text_bytes);
  auto keys = parse_key_values(data.substr(kFixedBytes, text_bytes), name);
  const auto take = [&](const char* key, std::initializer_list<const char*> allowed) {
    const auto it = keys.find(key);
    MINITX_CHECK(it != keys.end(), "{}: the header lacks '{}'", name, key);
    std::string value = it->second;
    keys.erase(it);
    for (const char* a : allowed)
      if (value == a) return value;
    fail("{}: {} '{}' in the header is not one of the known values", name, key, value.substr(0, 40));
  };
  ck.device = take("device", {"cpu", "cuda"});
  ck.precision = take("precision", {"fp32", "bf16"});
  ck.config = parse_architecture(keys, name);
  MINITX_CHECK(keys.empty(), "{}: unknown header key '{}'", name, keys.empty() ? "" : keys.begin()->first.substr(0, 40));
  ck.step = get<std::uint64_t>(data, 16);
  const auto count = get<std::uint64_t>(data, 24);
  MINITX_CHECK(count == param_count(ck.config), "{}: header says {} parameters, the model shape needs {}", name, count,
               param_count(ck.config));
  const auto has_opt = get<std::uint32_t>(data, 40);
  MINITX_CHECK(has_opt <= 1, "{}: corrupt optimizer flag {}", name, has_opt);
  const std::uint64_t bytes = count * sizeof(float);
  MINITX_CHECK(payload == (has_opt ? 3 : 1) * bytes, "{}: payload of {} bytes does not match {} parameters{}", name,
               payload, count, has_opt ? " with optimizer state" : "");
  ck.tokenizer_sha256.assign(data.data() + 48, 64);
  MINITX_CHECK(is_sha256_hex(ck.tokenizer_sha256), "{}: corrupt tokenizer hash in the header", name);
  Digest train{};
  std::memcpy(train.data(), data.data() + 112, 32);
  if (train != Digest{}) ck.train_sha256 = to_hex(train);
  const std::size_t start = header_bytes + 32;
  auto floats = [&](std::size_t index) {
    std::vector<float> out = zeros<float>(count, fmt::format("{}: {} parameters", name, count));
    std::memcpy(out.data(), data.data() + start + index * bytes, bytes);
    return out;
  };
  ck.params = floats(0);
  if (has_opt) {
    ck.m = floats(1);
    ck.v = floats(2);
  }
  return ck;
}

}  // namespace minitx
