#include "minitx/model/checkpoint.h"

#include <cstring>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/model/params.h"

namespace minitx {
namespace {

constexpr char kMagic[8] = {'M', 'T', 'X', 'C', 'K', 'P', 'T', '\0'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 192;
constexpr std::size_t kPayloadStart = kHeaderBytes + 32;

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
  const std::size_t bytes = ck.params.size() * sizeof(float);
  Sha256 hash;
  hash.update(ck.params.data(), bytes);
  if (has_opt) {
    hash.update(ck.m.data(), bytes);
    hash.update(ck.v.data(), bytes);
  }
  std::string header(kPayloadStart, '\0');
  std::memcpy(header.data(), kMagic, 8);
  put<std::uint32_t>(header, 8, kVersion);
  put<std::uint32_t>(header, 12, kHeaderBytes);
  put<std::uint32_t>(header, 16, static_cast<std::uint32_t>(c.n_layer));
  put<std::uint32_t>(header, 20, static_cast<std::uint32_t>(c.n_embd));
  put<std::uint32_t>(header, 24, static_cast<std::uint32_t>(c.n_head));
  put<std::uint32_t>(header, 28, static_cast<std::uint32_t>(c.context));
  put<std::uint32_t>(header, 32, static_cast<std::uint32_t>(c.vocab_size));
  put<std::uint32_t>(header, 36, static_cast<std::uint32_t>(c.position));
  put<std::uint32_t>(header, 40, static_cast<std::uint32_t>(c.activation));
  put<std::uint32_t>(header, 44, c.parallel_residual ? 1u : 0u);
  put<double>(header, 48, c.rotary_fraction);
  put<std::uint64_t>(header, 56, ck.step);
  put<std::uint64_t>(header, 64, ck.params.size());
  put<std::uint32_t>(header, 72, has_opt ? 1u : 0u);
  std::memcpy(header.data() + 80, ck.tokenizer_sha256.data(), 64);
  if (!ck.train_sha256.empty()) std::memcpy(header.data() + 144, hex_to_bytes(ck.train_sha256).data(), 32);
  put<std::uint64_t>(header, 176, has_opt ? 3 * bytes : bytes);
  const Digest digest = hash.finish();
  std::memcpy(header.data() + kHeaderBytes, digest.data(), 32);
  AtomicFile file(path);
  file.write(header);
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
  MINITX_CHECK(data.size() >= kPayloadStart, "{}: {} bytes is too short for a checkpoint header of {} bytes (truncated?)",
               name, data.size(), kPayloadStart);
  MINITX_CHECK(std::memcmp(data.data(), kMagic, 8) == 0, "{}: not a minitx checkpoint (wrong magic)", name);
  const auto version = get<std::uint32_t>(data, 8);
  MINITX_CHECK(version == kVersion, "{}: checkpoint format version {} is not supported (expected {})", name, version,
               kVersion);
  MINITX_CHECK(get<std::uint32_t>(data, 12) == kHeaderBytes, "{}: header size {} is not {}", name,
               get<std::uint32_t>(data, 12), kHeaderBytes);
  Checkpoint ck;
  ModelConfig& c = ck.config;
  c.n_layer = get<std::uint32_t>(data, 16);
  c.n_embd = get<std::uint32_t>(data, 20);
  c.n_head = get<std::uint32_t>(data, 24);
  c.context = get<std::uint32_t>(data, 28);
  c.vocab_size = get<std::uint32_t>(data, 32);
  const auto position = get<std::uint32_t>(data, 36), activation = get<std::uint32_t>(data, 40),
             parallel = get<std::uint32_t>(data, 44);
  MINITX_CHECK(position <= 1 && activation <= 1 && parallel <= 1, "{}: corrupt model options in the header", name);
  c.position = static_cast<ModelConfig::Position>(position);
  c.activation = static_cast<ModelConfig::Activation>(activation);
  c.parallel_residual = parallel == 1;
  c.rotary_fraction = get<double>(data, 48);
  c.validate(name);
  ck.step = get<std::uint64_t>(data, 56);
  const auto count = get<std::uint64_t>(data, 64);
  MINITX_CHECK(count == param_count(c), "{}: header says {} parameters, the model shape needs {}", name, count,
               param_count(c));
  const auto has_opt = get<std::uint32_t>(data, 72);
  MINITX_CHECK(has_opt <= 1, "{}: corrupt optimizer flag {}", name, has_opt);
  ck.tokenizer_sha256.assign(data.data() + 80, 64);
  MINITX_CHECK(is_sha256_hex(ck.tokenizer_sha256), "{}: corrupt tokenizer hash in the header", name);
  Digest train{};
  std::memcpy(train.data(), data.data() + 144, 32);
  if (train != Digest{}) ck.train_sha256 = to_hex(train);
  const auto payload = get<std::uint64_t>(data, 176);
  const std::uint64_t bytes = count * sizeof(float);
  MINITX_CHECK(payload == (has_opt ? 3 : 1) * bytes, "{}: payload size {} does not match {} parameters", name, payload,
               count);
  MINITX_CHECK(data.size() == kPayloadStart + payload, "{}: file is {} bytes, the header says {} (truncated or padded)",
               name, data.size(), kPayloadStart + payload);
  Digest expected;
  std::memcpy(expected.data(), data.data() + kHeaderBytes, 32);
  Sha256 hash;
  hash.update(data.data() + kPayloadStart, payload);
  MINITX_CHECK(hash.finish() == expected, "{}: payload checksum mismatch: the file is corrupt", name);
  auto floats = [&](std::size_t index) {
    std::vector<float> out(count);
    std::memcpy(out.data(), data.data() + kPayloadStart + index * bytes, bytes);
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
