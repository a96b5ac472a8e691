// Tar archives held in memory. The writer emits POSIX ustar with every variable field fixed
// (numeric owner 0, mode 0644/0755, one mtime), so the bytes depend on the contents alone.
// The reader accepts ustar, pax and GNU archives and checks every header, number and size
// against the buffer before use: a malformed archive is an error, never an out-of-bounds read.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

struct TarEntry {
  enum class Type { file, directory, symlink, hardlink, special };
  std::string path;  // as stored, with a directory's trailing '/' removed
  Type type = Type::file;
  char typeflag = '0';
  std::uint32_t mode = 0;
  std::string_view data;  // a view into the archive (regular files)
  std::string link;       // symlink or hardlink target
};

std::vector<TarEntry> parse_tar(std::string_view archive, std::string_view what);

class TarWriter {
 public:
  explicit TarWriter(std::uint64_t mtime);
  void add_file(std::string_view path, std::string_view data, bool executable);
  // Any entry type, as tests need to build hostile archives (links, devices, odd paths).
  void add_entry(std::string_view path, char typeflag, std::string_view data, std::string_view link, std::uint32_t mode);
  std::string finish();  // the archive, with its end-of-archive blocks

 private:
  std::string out_;
  std::uint64_t mtime_;
};

// Why a member path may not be unpacked (absolute, "..", empty, NUL), or nullopt when it is safe.
std::optional<std::string> unsafe_path_reason(std::string_view path);

}  // namespace minitx
