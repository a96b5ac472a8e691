#include "minitx/core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "minitx/core/error.h"

namespace minitx {

std::string read_file(const fs::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  std::string data;
  char buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) data.append(buffer, got);
  const bool bad = std::ferror(file) != 0;
  std::fclose(file);
  if (bad) fail("{}: read error", path.string());
  return data;
}

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory {}: {}", target_.string(), dir.string(), ec.message());
  // The pid keeps two concurrent writers of one target from sharing a temporary file.
  temp_ = dir / (target_.filename().string() + ".tmp-" + std::to_string(::getpid()));
  file_ = std::fopen(temp_.c_str(), "wb");
  if (file_ == nullptr) fail("{}: cannot create {}: {}", target_.string(), temp_.string(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  MINITX_CHECK(file_ != nullptr, "{}: write after commit", target_.string());
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    fail("{}: write failed: {}", temp_.string(), std::strerror(errno));
  written_ += size;
}

void AtomicFile::commit(fs::perms mode) {
  MINITX_CHECK(file_ != nullptr, "{}: commit called twice", target_.string());
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int close_status = std::fclose(file_);
  file_ = nullptr;
  if (!flushed || close_status != 0) fail("{}: cannot flush {}: {}", target_.string(), temp_.string(), std::strerror(errno));
  std::error_code ec;
  fs::permissions(temp_, mode, fs::perm_options::replace, ec);
  if (ec) fail("{}: cannot set permissions: {}", temp_.string(), ec.message());
  fs::rename(temp_, target_, ec);
  if (ec) fail("{}: cannot rename {} into place: {}", target_.string(), temp_.string(), ec.message());
  committed_ = true;
}

void write_file_atomic(const fs::path& path, std::string_view data) {
  AtomicFile file(path);
  file.write(data);
  file.commit();
}

bool write_file_if_changed(const fs::path& path, std::string_view data) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) == data.size() && read_file(path) == data) return false;
  write_file_atomic(path, data);
  return true;
}

TempDir::TempDir(std::string_view prefix) {
  std::string pattern = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) fail("cannot create a temporary directory {}: {}", pattern, std::strerror(errno));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

}  // namespace minitx
