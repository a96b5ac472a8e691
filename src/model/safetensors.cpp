#include "minitx/model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>
#include <utility>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/quant/fp16.h"
#include "strict_json.h"

namespace minitx {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian, read in place");

namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

// Reads exactly `size` bytes at `offset`; a short read means the file shrank under us.
void pread_exact(int fd, void* buffer, std::size_t size, std::uint64_t offset, const fs::path& path,
                 std::string_view what) {
  auto* at = static_cast<char*>(buffer);
  while (size > 0) {
    const ssize_t got = ::pread(fd, at, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("{}: cannot read {}: {}", path.string(), what, std::strerror(errno));
    if (got == 0) fail("{}: the file ended while reading {} (was it truncated?)", path.string(), what);
    at += got;
    offset += static_cast<std::uint64_t>(got);
    size -= static_cast<std::size_t>(got);
  }
}

SafeDtype parse_dtype(const json& value, const std::string& where) {
  MINITX_CHECK(value.is_string(), "{}: \"dtype\" is {}, expected a string (F32, F16 or BF16)", where,
               detail::json_kind(value));
  const auto& name = value.get_ref<const std::string&>();
  if (name == "F32") return SafeDtype::f32;
  if (name == "F16") return SafeDtype::f16;
  if (name == "BF16") return SafeDtype::bf16;
  fail("{}: dtype \"{}\" is not supported (expected F32, F16 or BF16)", where, name);
}

std::uint64_t parse_count(const json& value, const std::string& where, std::string_view field) {
  MINITX_CHECK(value.is_number_unsigned(), "{}: {} holds {}, expected a non-negative integer below 2^64", where, field,
               detail::json_kind(value));
  return value.get<std::uint64_t>();
}

SafeTensorInfo parse_tensor(const std::string& name, const json& entry, const std::string& file,
                            std::uint64_t data_size) {
  const std::string where = fmt::format("{}: tensor \"{}\"", file, name);
  MINITX_CHECK(!name.empty(), "{}: a tensor has an empty name", file);
  MINITX_CHECK(entry.is_object(), "{} is {}, expected an object with dtype, shape and data_offsets", where,
               detail::json_kind(entry));
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    MINITX_CHECK(key == "dtype" || key == "shape" || key == "data_offsets",
                 "{}: unknown key \"{}\" (expected only dtype, shape and data_offsets)", where, key);
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    MINITX_CHECK(entry.contains(key), "{}: \"{}\" is missing", where, key);

  SafeTensorInfo info;
  info.name = name;
  info.dtype = parse_dtype(entry["dtype"], where);
  const json& shape = entry["shape"];
  MINITX_CHECK(shape.is_array(), "{}: \"shape\" is {}, expected an array of non-negative integers", where,
               detail::json_kind(shape));
  std::uint64_t numel = 1;
  for (const json& dim : shape) {
    info.shape.push_back(parse_count(dim, where, "a shape entry"));
    MINITX_CHECK(checked_mul(numel, info.shape.back(), numel), "{}: shape {} has more than 2^64 elements", where,
                 shape.dump());
  }
  const json& offsets = entry["data_offsets"];
  MINITX_CHECK(offsets.is_array() && offsets.size() == 2, "{}: \"data_offsets\" is {}, expected [begin, end]", where,
               offsets.is_array() ? offsets.dump() : detail::json_kind(offsets));
  info.begin = parse_count(offsets[0], where, "data_offsets");
  info.end = parse_count(offsets[1], where, "data_offsets");
  MINITX_CHECK(info.begin <= info.end, "{}: data_offsets [{}, {}] end before they begin", where, info.begin, info.end);
  MINITX_CHECK(info.end <= data_size, "{}: data_offsets [{}, {}] run past the data area of {} bytes", where,
               info.begin, info.end, data_size);
  std::uint64_t bytes = 0;
  MINITX_CHECK(checked_mul(numel, dtype_size(info.dtype), bytes) && bytes == info.end - info.begin,
               "{}: shape {} of {} needs {} elements × {} bytes, but data_offsets [{}, {}] hold {} bytes", where,
               shape.dump(), dtype_name(info.dtype), numel, dtype_size(info.dtype), info.begin, info.end,
               info.end - info.begin);
  return info;
}

// Ranges sorted by position must follow one another: no overlap, and (unless allowed) no gap.
void check_layout(std::vector<SafeTensorInfo> by_offset, std::uint64_t data_size, const std::string& file,
                  const SafetensorsOptions& options) {
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafeTensorInfo& a, const SafeTensorInfo& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  std::uint64_t covered = 0;
  const SafeTensorInfo* previous = nullptr;
  for (const SafeTensorInfo& t : by_offset) {
    MINITX_CHECK(t.begin >= covered, "{}: tensors \"{}\" [{}, {}] and \"{}\" [{}, {}] overlap in the data area", file,
                 previous->name, previous->begin, previous->end, t.name, t.begin, t.end);
    MINITX_CHECK(options.allow_gaps || t.begin == covered,
                 "{}: bytes [{}, {}) of the data area belong to no tensor (expected the tensors to cover it)", file,
                 covered, t.begin);
    covered = t.end;
    previous = &t;
  }
  MINITX_CHECK(options.allow_gaps || covered == data_size,
               "{}: the data area is {} bytes but the tensors end at byte {} (trailing bytes)", file, data_size, covered);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::string_view dtype_name(SafeDtype dtype) {
  switch (dtype) {
    case SafeDtype::f32: return "F32";
    case SafeDtype::f16: return "F16";
    case SafeDtype::bf16: return "BF16";
  }
  return "?";
}

std::size_t dtype_size(SafeDtype dtype) { return dtype == SafeDtype::f32 ? 4 : 2; }

std::uint64_t SafeTensorInfo::numel() const {
  std::uint64_t n = 1;
  for (const std::uint64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const fs::path& path, SafetensorsOptions options) : path_(path) {
  const std::string file = path.string();
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", file, std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("{}: cannot stat: {}", file, std::strerror(errno));
    MINITX_CHECK(S_ISREG(st.st_mode), "{}: not a regular file", file);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    MINITX_CHECK(size >= 8, "{}: {} bytes is too short for a safetensors file (expected at least the 8-byte header length)",
                 file, size);
    unsigned char length_bytes[8];
    pread_exact(fd_, length_bytes, 8, 0, path, "the header length");
    std::uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
    MINITX_CHECK(header_size <= kSafetensorsMaxHeader,
                 "{}: header length {} exceeds the limit of {} bytes (not a safetensors file?)", file, header_size,
                 kSafetensorsMaxHeader);
    MINITX_CHECK(header_size <= size - 8, "{}: header length {} runs past the end of the file ({} bytes after the length)",
                 file, header_size, size - 8);
    MINITX_CHECK(header_size >= 2, "{}: header length {} is too short for a JSON object", file, header_size);
    std::string header(header_size, '\0');
    pread_exact(fd_, header.data(), header.size(), 8, path, "the header");
    data_start_ = 8 + header_size;
    const std::uint64_t data_size = size - data_start_;

    const json root = detail::parse_json_strict(header, file + ": header");
    MINITX_CHECK(root.is_object(), "{}: header is {}, expected a JSON object", file, detail::json_kind(root));
    for (const auto& [key, value] : root.items()) {
      if (key == kMetadataKey) {
        MINITX_CHECK(value.is_object(), "{}: \"__metadata__\" is {}, expected an object of strings", file,
                     detail::json_kind(value));
        for (const auto& [k, v] : value.items()) {
          MINITX_CHECK(v.is_string(), "{}: __metadata__ \"{}\" is {}, expected a string", file, k, detail::json_kind(v));
          metadata_.emplace(k, v.get<std::string>());
        }
        continue;
      }
      tensors_.push_back(parse_tensor(key, value, file, data_size));
    }
    check_layout(tensors_, data_size, file, options);
    // nlohmann's objects iterate in key order already; sorting states the guarantee here.
    std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  } catch (...) {
    close_fd(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { close_fd(fd_); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      data_start_(other.data_start_),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    close_fd(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_start_ = other.data_start_;
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

const SafeTensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                   [](const SafeTensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

const SafeTensorInfo& SafetensorsFile::tensor(std::string_view name) const {
  const SafeTensorInfo* info = find(name);
  MINITX_CHECK(info != nullptr, "{}: no tensor named \"{}\"", path_.string(), name);
  return *info;
}

void SafetensorsFile::read_f32(std::string_view name, std::span<float> out) const {
  const SafeTensorInfo& info = tensor(name);
  const std::uint64_t count = info.numel();
  MINITX_CHECK(out.size() == count, "{}: tensor \"{}\" has {} elements, the destination {}", path_.string(), name, count,
               out.size());
  MINITX_CHECK(fd_ >= 0, "{}: read from a closed file", path_.string());
  const std::string what = fmt::format("tensor \"{}\"", name);
  const std::uint64_t at = data_start_ + info.begin;
  if (info.dtype == SafeDtype::f32) {
    pread_exact(fd_, out.data(), count * sizeof(float), at, path_, what);
    return;
  }
  // Half-width values are converted a slice at a time so no second full-size copy exists.
  constexpr std::size_t kSlice = 1 << 16;
  std::vector<std::uint16_t> half(std::min<std::uint64_t>(count, kSlice));
  for (std::uint64_t done = 0; done < count;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count - done, kSlice));
    pread_exact(fd_, half.data(), n * 2, at + done * 2, path_, what);
    float* dst = out.data() + done;
    if (info.dtype == SafeDtype::f16) {
      for (std::size_t i = 0; i < n; ++i) dst[i] = quant::fp16_to_fp32(half[i]);
    } else {
      for (std::size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(half[i]) << 16);
    }
    done += n;
  }
}

std::vector<float> SafetensorsFile::read_f32(std::string_view name) const {
  std::vector<float> out(tensor(name).numel());
  read_f32(name, out);
  return out;
}

// ---- sharded checkpoints ----

SafetensorsCheckpoint SafetensorsCheckpoint::open_file(const fs::path& file, SafetensorsOptions options) {
  SafetensorsCheckpoint ck;
  ck.source_ = file;
  ck.shards_.emplace_back(file, options);
  for (const SafeTensorInfo& t : ck.shards_[0].tensors()) ck.shard_index_.emplace(t.name, 0);
  return ck;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const fs::path& dir, SafetensorsOptions options) {
  std::error_code ec;
  if (fs::exists(dir / "model.safetensors.index.json", ec)) return open_index(dir / "model.safetensors.index.json", options);
  if (fs::exists(dir / "model.safetensors", ec)) return open_file(dir / "model.safetensors", options);
  fail("{}: holds neither model.safetensors nor model.safetensors.index.json", dir.string());
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_index(const fs::path& index, SafetensorsOptions options) {
  const std::string file = index.string();
  std::error_code ec;
  const auto size = fs::file_size(index, ec);
  if (ec) fail("{}: cannot open: {}", file, ec.message());
  MINITX_CHECK(size <= kSafetensorsMaxHeader, "{}: {} bytes is too large for a shard index (limit {})", file, size,
               kSafetensorsMaxHeader);
  const json root = detail::parse_json_strict(read_file(index), file);
  MINITX_CHECK(root.is_object(), "{}: is {}, expected a JSON object with a weight_map", file, detail::json_kind(root));
  const auto map_it = root.find("weight_map");
  MINITX_CHECK(map_it != root.end(), "{}: \"weight_map\" is missing", file);
  MINITX_CHECK(map_it->is_object() && !map_it->empty(), "{}: \"weight_map\" is {}, expected a non-empty object", file,
               map_it->is_object() ? "empty" : detail::json_kind(*map_it));

  std::map<std::string, std::string, std::less<>> weight_map;
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : map_it->items()) {
    MINITX_CHECK(shard.is_string(), "{}: weight_map \"{}\" is {}, expected a shard file name", file, tensor,
                 detail::json_kind(shard));
    const auto& name = shard.get_ref<const std::string&>();
    // The index comes with downloaded files: it may name only files beside it.
    const bool plain = !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
                       name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
    MINITX_CHECK(plain, "{}: weight_map \"{}\" names shard \"{}\", expected a plain file name in the index's directory",
                 file, tensor, name);
    weight_map.emplace(tensor, name);
    shard_names.insert(name);
  }

  SafetensorsCheckpoint ck;
  ck.source_ = index;
  const fs::path dir = index.parent_path();
  for (const std::string& name : shard_names) {
    const std::size_t at = ck.shards_.size();
    ck.shards_.emplace_back(dir / name, options);
    for (const SafeTensorInfo& t : ck.shards_.back().tensors()) {
      const auto [it, added] = ck.shard_index_.emplace(t.name, at);
      MINITX_CHECK(added, "{}: tensor \"{}\" is in both {} and {} (expected one shard)", file, t.name,
                   ck.shards_[it->second].path().filename().string(), name);
      const auto mapped = weight_map.find(t.name);
      MINITX_CHECK(mapped != weight_map.end(), "{}: tensor \"{}\" of shard {} is not in the weight_map", file, t.name,
                   name);
      MINITX_CHECK(mapped->second == name, "{}: tensor \"{}\" is in shard {}, the weight_map says {}", file, t.name,
                   name, mapped->second);
    }
  }
  for (const auto& [tensor, shard] : weight_map)
    MINITX_CHECK(ck.shard_index_.contains(tensor), "{}: tensor \"{}\" is mapped to shard {}, which does not hold it",
                 file, tensor, shard);
  return ck;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(shard_index_.size());
  for (const auto& [name, shard] : shard_index_) out.push_back(name);
  return out;
}

bool SafetensorsCheckpoint::contains(std::string_view name) const { return shard_index_.find(name) != shard_index_.end(); }

const SafetensorsFile& SafetensorsCheckpoint::shard_of(std::string_view name) const {
  const auto it = shard_index_.find(name);
  MINITX_CHECK(it != shard_index_.end(), "{}: no tensor named \"{}\"", source_.string(), name);
  return shards_[it->second];
}

const SafeTensorInfo& SafetensorsCheckpoint::tensor(std::string_view name) const { return shard_of(name).tensor(name); }

std::vector<float> SafetensorsCheckpoint::read_f32(std::string_view name) const { return shard_of(name).read_f32(name); }

void SafetensorsCheckpoint::read_f32(std::string_view name, std::span<float> out) const {
  shard_of(name).read_f32(name, out);
}

// ---- writer ----

void write_safetensors(const fs::path& path, std::span<const SafeTensorOut> tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  // Every top-level key and its serialized value, so that one sorted pass writes the header.
  std::map<std::string, std::string> entries;
  auto quoted = [&](const std::string& s, std::string_view what) {
    try {
      return json(s).dump();
    } catch (const json::exception&) {
      fail("{}: {} \"{}\" is not valid UTF-8", file, what, s);
    }
  };
  if (!metadata.empty()) {
    std::string object = "{";
    for (const auto& [k, v] : metadata) {
      if (object.size() > 1) object += ',';
      object += quoted(k, "metadata key") + ':' + quoted(v, "metadata value");
    }
    entries.emplace(std::string(kMetadataKey), object + '}');
  }
  std::vector<const SafeTensorOut*> order;
  for (const SafeTensorOut& t : tensors) {
    MINITX_CHECK(!t.name.empty() && t.name != kMetadataKey, "{}: \"{}\" cannot name a tensor", file, t.name);
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  std::vector<std::uint64_t> bytes;
  std::uint64_t offset = 0;
  for (const SafeTensorOut* t : order) {
    std::uint64_t numel = 1;
    std::string shape;
    for (const std::uint64_t d : t->shape) {
      MINITX_CHECK(checked_mul(numel, d, numel), "{}: tensor \"{}\" has more than 2^64 elements", file, t->name);
      shape += fmt::format("{}{}", shape.empty() ? "" : ",", d);
    }
    std::uint64_t size = 0;
    MINITX_CHECK(checked_mul(numel, sizeof(float), size) && offset + size >= offset, "{}: tensor \"{}\" is too large",
                 file, t->name);
    MINITX_CHECK(t->data != nullptr || size == 0, "{}: tensor \"{}\" has no data", file, t->name);
    const std::string value = fmt::format(R"({{"dtype":"F32","shape":[{}],"data_offsets":[{},{}]}})", shape, offset,
                                          offset + size);
    MINITX_CHECK(entries.emplace(t->name, value).second, "{}: tensor \"{}\" is given twice", file, t->name);
    bytes.push_back(size);
    offset += size;
  }
  std::string header = "{";
  for (const auto& [key, value] : entries) {
    if (header.size() > 1) header += ',';
    header += quoted(key, "tensor name") + ':' + value;
  }
  header += '}';
  // The format allows trailing spaces; padding to 8 keeps the data area 8-byte aligned.
  header.append((8 - header.size() % 8) % 8, ' ');
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(header.size()) >> (8 * i));

  AtomicFile out(path);
  out.write(length, 8);
  out.write(header);
  for (std::size_t i = 0; i < order.size(); ++i) out.write(order[i]->data, bytes[i]);
  out.commit();
}

}  // namespace minitx
