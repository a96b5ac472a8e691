#include "minitx/quant/file.h"

#include <bit>
#include <cstring>
#include <set>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"
#include "minitx/core/sha256.h"

namespace minitx::quant {

static_assert(std::endian::native == std::endian::little, "quantized files are read and written as little-endian");

namespace {

constexpr std::size_t kMaxTensors = 1u << 20;
constexpr std::size_t kMaxName = 1024;
constexpr std::size_t kMaxMetadata = 16u << 20;

std::uint64_t align_up(std::uint64_t value) { return (value + qfile::kAlign - 1) / qfile::kAlign * qfile::kAlign; }

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Names go into error messages and tables: printable ASCII without spaces.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Reads fields from one section of the file and fails, naming the section, instead of reading
// past its end.
class Cursor {
 public:
  Cursor(std::string_view bytes, const std::string& file, const char* section)
      : bytes_(bytes), file_(file), section_(section) {}

  std::string_view take(std::size_t n) {
    if (n > bytes_.size() - pos_)
      fail("{}: truncated {}: needs {} more bytes at offset {}, {} are left", file_, section_, n, pos_,
           bytes_.size() - pos_);
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  template <class T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof value).data(), sizeof value);
    return value;
  }
  std::string_view rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
  const std::string& file_;
  const char* section_;
};

struct Entry {
  std::string name;
  Format format;
  std::vector<std::size_t> shape;
  std::uint64_t offset, bytes;
};

Entry read_entry(Cursor& table, const std::string& file, std::size_t index) {
  Entry e;
  const auto name_length = table.get<std::uint32_t>();
  MINITX_CHECK(name_length >= 1 && name_length <= kMaxName, "{}: tensor {}: name length {} is outside 1 to {}", file,
               index, name_length, kMaxName);
  e.name = std::string(table.take(name_length));
  MINITX_CHECK(valid_name(e.name), "{}: tensor {}: name is not printable ASCII without spaces", file, index);
  const std::string what = fmt::format("{}: tensor '{}'", file, e.name);
  const auto id = table.get<std::uint32_t>();
  const auto format = format_from_id(id);
  MINITX_CHECK(format.has_value(), "{}: unknown format id {} (this build knows 0 f32, 1 q8_0, 2 q4_0)", what, id);
  e.format = *format;
  const auto rank = table.get<std::uint32_t>();
  MINITX_CHECK(rank >= 1 && rank <= kMaxRank, "{}: rank {} is outside 1 to {}", what, rank, kMaxRank);
  for (std::uint32_t i = 0; i < rank; ++i) e.shape.push_back(table.get<std::uint64_t>());
  e.offset = table.get<std::uint64_t>();
  e.bytes = table.get<std::uint64_t>();
  const std::size_t expected = tensor_bytes(e.format, e.shape, what);
  if (e.bytes != expected) {
    const FormatInfo& info = format_info(e.format);
    fail("{}: {} bytes ({} {} blocks of {} bytes) do not match shape {}, which needs {} blocks ({} bytes)", what,
         e.bytes, static_cast<double>(e.bytes) / static_cast<double>(info.block_bytes), info.name, info.block_bytes,
         shape_text(e.shape), expected / info.block_bytes, expected);
  }
  return e;
}

}  // namespace

const QTensor* QuantFile::find(std::string_view name) const {
  for (const QTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const QTensor& QuantFile::get(std::string_view name) const {
  const QTensor* t = find(name);
  MINITX_CHECK(t != nullptr, "quantized model: no tensor named '{}'", name);
  return *t;
}

std::uint64_t QuantFile::payload_bytes() const {
  std::uint64_t total = 0;
  for (const QTensor& t : tensors) total += t.data.size();
  return total;
}

std::string encode_quant_file(const QuantFile& file) {
  MINITX_CHECK(file.tensors.size() <= kMaxTensors, "quantized model: {} tensors, at most {}", file.tensors.size(),
               kMaxTensors);
  MINITX_CHECK(file.metadata.size() <= kMaxMetadata, "quantized model: metadata of {} bytes, at most {}",
               file.metadata.size(), kMaxMetadata);
  std::string table;
  put(table, static_cast<std::uint32_t>(file.metadata.size()));
  table += file.metadata;
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const QTensor& t : file.tensors) {
    MINITX_CHECK(valid_name(t.name), "quantized model: tensor name '{}' must be 1 to {} printable ASCII characters", t.name,
                 kMaxName);
    MINITX_CHECK(names.insert(t.name).second, "quantized model: two tensors are named '{}'", t.name);
    const std::size_t expected = tensor_bytes(t.format, t.shape, t.name);
    MINITX_CHECK(t.data.size() == expected, "{}: holds {} bytes, {} of shape {} needs {}", t.name, t.data.size(),
                 format_name(t.format), shape_text(t.shape), expected);
    put(table, static_cast<std::uint32_t>(t.name.size()));
    table += t.name;
    put(table, static_cast<std::uint32_t>(t.format));
    put(table, static_cast<std::uint32_t>(t.shape.size()));
    for (std::size_t dim : t.shape) put(table, static_cast<std::uint64_t>(dim));
    offset = align_up(offset);
    put(table, offset);
    put(table, static_cast<std::uint64_t>(t.data.size()));
    offset += t.data.size();
  }
  table.resize(align_up(table.size()), '\0');
  const std::uint64_t payload_bytes = offset;

  std::string payload(payload_bytes, '\0');
  offset = 0;
  for (const QTensor& t : file.tensors) {
    offset = align_up(offset);
    if (!t.data.empty()) std::memcpy(payload.data() + offset, t.data.data(), t.data.size());
    offset += t.data.size();
  }
  Sha256 hash;
  hash.update(table);
  hash.update(payload);
  const Digest digest = hash.finish();

  std::string out;
  out.reserve(qfile::kHeaderBytes + table.size() + payload.size());
  out.append(qfile::kMagic, sizeof qfile::kMagic);
  put(out, qfile::kVersion);
  put(out, static_cast<std::uint32_t>(file.tensors.size()));
  put(out, static_cast<std::uint64_t>(table.size()));
  put(out, payload_bytes);
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  out += table;
  out += payload;
  return out;
}

QuantFile decode_quant_file(std::string_view bytes, const std::string& name) {
  // The header: magic first, so that any other file gets the plainest message.
  if (bytes.size() >= sizeof qfile::kMagic && std::memcmp(bytes.data(), qfile::kMagic, sizeof qfile::kMagic) != 0)
    fail("{}: not a minitx quantized model (the file does not start with \"MTXQUANT\")", name);
  MINITX_CHECK(bytes.size() >= qfile::kHeaderBytes, "{}: truncated: {} bytes, the header alone needs {}", name,
               bytes.size(), qfile::kHeaderBytes);
  Cursor header(bytes.substr(0, qfile::kHeaderBytes), name, "header");
  header.take(sizeof qfile::kMagic);
  const auto version = header.get<std::uint32_t>();
  MINITX_CHECK(version == qfile::kVersion, "{}: format version {}, this build reads version {}", name, version,
               qfile::kVersion);
  const auto count = header.get<std::uint32_t>();
  const auto table_bytes = header.get<std::uint64_t>();
  const auto payload_bytes = header.get<std::uint64_t>();
  const std::string_view checksum = header.take(32);
  MINITX_CHECK(count <= kMaxTensors, "{}: header claims {} tensors, at most {}", name, count, kMaxTensors);
  MINITX_CHECK(table_bytes % qfile::kAlign == 0, "{}: table size {} is not a multiple of {}", name, table_bytes,
               qfile::kAlign);
  const std::uint64_t body = bytes.size() - qfile::kHeaderBytes;
  // Compared without adding, so that absurd header values cannot overflow.
  if (table_bytes > body || payload_bytes != body - table_bytes) {
    if (table_bytes > body || payload_bytes > body - table_bytes)
      fail("{}: truncated: the header describes {} + {} bytes after itself, the file has {}", name, table_bytes,
           payload_bytes, body);
    fail("{}: {} bytes follow the end that the header describes", name, body - table_bytes - payload_bytes);
  }
  const std::string_view table_view = bytes.substr(qfile::kHeaderBytes, table_bytes);
  const std::string_view payload = bytes.substr(qfile::kHeaderBytes + table_bytes);
  Sha256 hash;
  hash.update(table_view);
  hash.update(payload);
  const Digest digest = hash.finish();
  MINITX_CHECK(std::memcmp(digest.data(), checksum.data(), digest.size()) == 0,
               "{}: checksum mismatch: the file is corrupt (SHA-256 of its contents is {})", name, to_hex(digest));

  Cursor table(table_view, name, "table");
  QuantFile out;
  const auto metadata_length = table.get<std::uint32_t>();
  MINITX_CHECK(metadata_length <= kMaxMetadata, "{}: metadata of {} bytes, at most {}", name, metadata_length,
               kMaxMetadata);
  out.metadata = std::string(table.take(metadata_length));
  std::vector<Entry> entries;
  std::set<std::string> names;
  std::uint64_t end = 0;
  for (std::size_t i = 0; i < count; ++i) {
    // Only the zero padding (under 64 bytes) is left once the entries run out.
    const std::string_view rest = table.rest();
    MINITX_CHECK(rest.size() >= qfile::kAlign || rest.find_first_not_of('\0') != std::string_view::npos,
                 "{}: the header counts {} tensors, the table holds {}", name, count, i);
    Entry e = read_entry(table, name, i);
    MINITX_CHECK(names.insert(e.name).second, "{}: two tensors are named '{}'", name, e.name);
    // One canonical layout: each tensor at the next multiple of 64, so offsets can neither
    // overlap nor leave gaps.
    MINITX_CHECK(e.offset == align_up(end), "{}: tensor '{}': offset {}, expected {}", name, e.name, e.offset,
                 align_up(end));
    MINITX_CHECK(e.bytes <= payload_bytes && e.offset <= payload_bytes - e.bytes,
                 "{}: tensor '{}': bytes {} to {} lie beyond the payload's {} bytes", name, e.name, e.offset,
                 e.offset + e.bytes, payload_bytes);
    end = e.offset + e.bytes;
    entries.push_back(std::move(e));
  }
  MINITX_CHECK(end == payload_bytes, "{}: the payload has {} bytes after the last tensor", name, payload_bytes - end);
  for (char c : table.rest())
    MINITX_CHECK(c == '\0', "{}: the table has unexpected bytes after its last entry", name);

  allocating(fmt::format("{}: a copy of its {} tensors", name, entries.size()), static_cast<double>(payload_bytes), [&] {
    out.tensors.reserve(entries.size());
    for (Entry& e : entries) {
      QTensor t{std::move(e.name), e.format, std::move(e.shape), std::vector<std::byte>(e.bytes)};
      if (e.bytes > 0) std::memcpy(t.data.data(), payload.data() + e.offset, e.bytes);
      out.tensors.push_back(std::move(t));
    }
  });
  return out;
}

void write_quant_file(const std::filesystem::path& path, const QuantFile& file) {
  const std::string bytes = encode_quant_file(file);
  AtomicFile out(path);
  out.write(bytes);
  out.commit();
}

QuantFile read_quant_file(const std::filesystem::path& path) {
  return decode_quant_file(read_file(path), path.string());
}

}  // namespace minitx::quant
