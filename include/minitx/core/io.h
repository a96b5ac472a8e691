// File input and output. Every output goes through AtomicFile: it is written under a temporary
// name in the target's directory and renamed into place only by commit(), so an interrupted or
// failed run never leaves a partial file where a finished one is expected.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace minitx {

namespace fs = std::filesystem;

// Reads a whole file; throws an Error naming the file when it is missing or unreadable.
std::string read_file(const fs::path& path);

// The target, when it exists, must be a regular file: a link, fifo, device or directory there is
// an error rather than something to replace. A failed write (a full disk, a file-size limit)
// removes the temporary file and says how far it got.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path target);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view data) { write(data.data(), data.size()); }
  std::uint64_t bytes_written() const { return written_; }
  const fs::path& target() const { return target_; }
  const fs::path& temp_path() const { return temp_; }
  // Flushes, syncs and renames over the target. `mode` sets the permission bits.
  void commit(fs::perms mode = fs::perms::owner_read | fs::perms::owner_write |
                               fs::perms::group_read | fs::perms::others_read);

 private:
  // Closes and removes the temporary file, then throws an Error saying what failed and how much
  // of the file had been written.
  [[noreturn]] void fail_write();

  fs::path target_;
  fs::path temp_;
  std::FILE* file_ = nullptr;
  std::uint64_t written_ = 0;
  bool committed_ = false;
  std::optional<std::uint64_t> space_;  // a full disk's room, for tests (fault.h)
};

void write_file_atomic(const fs::path& path, std::string_view data);
// Leaves the file (and its mtime) alone when it already holds `data`, so Make sees no change;
// returns whether it wrote.
bool write_file_if_changed(const fs::path& path, std::string_view data);

// A temporary directory removed with everything in it when the object goes away.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "minitx");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace minitx
