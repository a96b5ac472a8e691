#include "minitx/core/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>

#include "minitx/core/error.h"
#include "minitx/core/fault.h"
#include "minitx/core/memory.h"

namespace minitx {

std::string read_file(const fs::path& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (file == nullptr) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  // The whole file is held in memory: one too big for it is a named error before reading starts.
  struct stat st {};
  const double size = ::fstat(::fileno(file.get()), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<double>(st.st_size) : 0.0;
  return allocating(fmt::format("{}: reading the whole file", path.string()), size, [&] {
    std::string data;
    data.reserve(static_cast<std::size_t>(size));
    char buffer[1 << 16];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) data.append(buffer, got);
    if (std::ferror(file.get()) != 0) fail("{}: read error", path.string());
    return data;
  });
}

namespace {

// What an existing path is when it is not a regular file: the rename of commit() would replace
// a link, fifo or device node with a regular file, so such a target is refused instead.
std::optional<std::string_view> not_regular(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return std::nullopt;
  if (S_ISLNK(st.st_mode)) return "a symbolic link";
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISFIFO(st.st_mode)) return "a fifo";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "not a regular file";
}

void refuse_non_regular(const fs::path& target) {
  if (auto kind = not_regular(target))
    fail("{}: exists and is {}, not a regular file; refusing to replace it (remove it or choose another output)",
         target.string(), *kind);
}

// strerror alone does not say that "File too large" usually means a limit of the shell.
std::string describe_write_error(int error) {
  std::string text = std::strerror(error);
  if (error == EFBIG) text += " (a file-size limit, such as `ulimit -f`?)";
  return text;
}

}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)), space_(fault_disk_space()) {
  refuse_non_regular(target_);
  const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory {}: {}", target_.string(), dir.string(), ec.message());
  // The pid keeps two concurrent writers of one target from sharing a temporary file.
  temp_ = dir / (target_.filename().string() + ".tmp-" + std::to_string(::getpid()));
  // O_NOFOLLOW: a link planted under the temporary name must not redirect the write.
  const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int error = errno;
    if (fd >= 0) {
      ::close(fd);
      ::unlink(temp_.c_str());
    }
    fail("{}: cannot create {}: {}", target_.string(), temp_.string(), std::strerror(error));
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

void AtomicFile::fail_write() {
  const int error = errno;
  struct stat st {};
  const std::uint64_t on_disk = ::fstat(::fileno(file_), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ignored;
  fs::remove(temp_, ignored);
  fail("{}: write failed after {} bytes: {}; the partial file {} was removed", target_.string(), on_disk,
       describe_write_error(error), temp_.string());
}

void AtomicFile::write(const void* data, std::size_t size) {
  MINITX_CHECK(file_ != nullptr, "{}: write after commit or after a failed write", target_.string());
  if (space_ && written_ + size > *space_) {
    // As a full disk: what fits is written, then the write fails (MINITX_FAULT_ENOSPC, fault.h).
    const std::size_t room = static_cast<std::size_t>(*space_ - std::min(written_, *space_));
    if (std::fwrite(data, 1, room, file_) == room) std::fflush(file_);
    errno = ENOSPC;
    fail_write();
  }
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail_write();
  written_ += size;
}

void AtomicFile::commit(fs::perms mode) {
  MINITX_CHECK(file_ != nullptr, "{}: commit called twice, or after a failed write", target_.string());
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail_write();
  const int close_status = std::fclose(file_);
  file_ = nullptr;
  if (close_status != 0) {
    const int error = errno;
    std::error_code ignored;
    fs::remove(temp_, ignored);
    fail("{}: cannot close {}: {}", target_.string(), temp_.string(), describe_write_error(error));
  }
  // Something may have taken the name while the stage ran.
  refuse_non_regular(target_);
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
  std::error_code ec;
  const fs::path base = fs::temp_directory_path(ec);
  if (ec) fail("cannot find a directory for temporary files (TMPDIR): {}", ec.message());
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) fail("cannot create a temporary directory {}: {}", pattern, std::strerror(errno));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

}  // namespace minitx
