// Safetensors files, the format Hugging Face checkpoints come in, and the sharded form
// (model.safetensors.index.json naming one file per tensor).
//
// Layout: u64 little-endian N, then N bytes of UTF-8 JSON (an object, possibly padded with
// trailing spaces), then the data area. Each key of the object is a tensor name mapped to
// {"dtype", "shape", "data_offsets": [begin, end]}, the offsets counting bytes from the start of
// the data area; the optional key "__metadata__" maps strings to strings.
//
// The reader trusts nothing: every number is checked (without overflow) against the file's
// size before it sizes an allocation or a read, the ranges must not overlap and must tile the
// data area, duplicate keys are refused (a JSON parser would silently keep the last), and each
// failure is an Error naming the file, the tensor and what was expected. Tensors are read with
// pread on demand rather than mapped, so that a file shortened while open is an error, not a
// SIGBUS, and a 600 MB checkpoint need not sit in memory twice.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

enum class SafeDtype { f32, f16, bf16 };

std::string_view dtype_name(SafeDtype dtype);  // "F32", "F16", "BF16"
std::size_t dtype_size(SafeDtype dtype);

struct SafeTensorInfo {
  std::string name;
  SafeDtype dtype = SafeDtype::f32;
  std::vector<std::uint64_t> shape;  // empty for a scalar
  std::uint64_t begin = 0, end = 0;  // bytes, relative to the start of the data area
  std::uint64_t numel() const;       // 1 for a scalar; cannot overflow once the file is open
};

struct SafetensorsOptions {
  // Bytes of the data area that no tensor covers are refused unless this is set.
  bool allow_gaps = false;
};

// Largest header accepted: more JSON than any real checkpoint needs, small enough to parse.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path, SafetensorsOptions options = {});
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  // Sorted by name.
  const std::vector<SafeTensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafeTensorInfo* find(std::string_view name) const;  // nullptr when absent
  const SafeTensorInfo& tensor(std::string_view name) const;  // Error naming file and tensor

  // Converts F32, F16 and BF16 exactly (every F16 and BF16 value is an f32; infinities, NaNs,
  // subnormals and signed zeros are kept). The span must hold numel() floats.
  void read_f32(std::string_view name, std::span<float> out) const;
  std::vector<float> read_f32(std::string_view name) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t data_start_ = 0;  // 8 + header length
  std::vector<SafeTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint of one or several safetensors files. Every tensor name is held by exactly one
// shard, and every shard holds exactly the tensors that the index gives it.
class SafetensorsCheckpoint {
 public:
  // `dir`/model.safetensors.index.json when it exists, else `dir`/model.safetensors.
  static SafetensorsCheckpoint open_dir(const std::filesystem::path& dir, SafetensorsOptions options = {});
  // An index file: {"weight_map": {tensor: shard file name}, ...}; shard names must be plain
  // file names in the index's directory.
  static SafetensorsCheckpoint open_index(const std::filesystem::path& index, SafetensorsOptions options = {});
  static SafetensorsCheckpoint open_file(const std::filesystem::path& file, SafetensorsOptions options = {});

  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  const SafeTensorInfo& tensor(std::string_view name) const;
  const SafetensorsFile& shard_of(std::string_view name) const;
  std::vector<float> read_f32(std::string_view name) const;
  void read_f32(std::string_view name, std::span<float> out) const;

 private:
  std::filesystem::path source_;  // the index or the single file, for messages
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::size_t, std::less<>> shard_index_;  // tensor name -> shards_ index
};

struct SafeTensorOut {
  std::string name;
  std::vector<std::uint64_t> shape;
  const float* data = nullptr;  // product(shape) floats
};

// Writes F32 tensors, keys sorted by name, the data laid out in that order, the header padded
// with spaces to a multiple of 8 bytes. Atomic: a temporary file renamed into place.
void write_safetensors(const std::filesystem::path& path, std::span<const SafeTensorOut> tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace minitx
