#include "minitx/core/tar_extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "minitx/core/error.h"

namespace minitx {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (!part.empty() && part != ".") out.push_back(part);
    start = end + 1;
  }
  return out;
}

// Why `name` in `dir` could not be opened as a directory, in the archive's terms.
std::string not_a_directory(int dir, const std::string& name, int error) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) return "is a symbolic link, which is never followed";
    if (!S_ISDIR(st.st_mode)) return "is a file, not a directory";
  }
  return std::strerror(error);
}

void write_all(int fd, std::string_view data, std::string_view what, std::string_view path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      fail("{}: '{}': cannot write the unpacked file: {}", what, excerpt(path), std::strerror(error));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

void extract_tar(const std::vector<TarEntry>& entries, const std::filesystem::path& root, std::string_view what) {
  const Fd top(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (top.get() < 0) {
    const int error = errno;
    fail("{}: cannot open the directory {} to unpack into: {}", what, root.string(), std::strerror(error));
  }
  for (const TarEntry& e : entries) {
    const std::string path = excerpt(e.path);
    if (auto why = unsafe_path_reason(e.path)) fail("{}: '{}': {}", what, path, *why);
    const bool directory = e.type == TarEntry::Type::directory;
    if (e.type != TarEntry::Type::file && !directory)
      fail("{}: '{}': a link or special file (type '{}'); only regular files and directories are unpacked", what, path,
           excerpt(std::string(1, e.typeflag)));
    const std::vector<std::string_view> parts = components(e.path);
    if (parts.empty()) {
      if (directory) continue;  // "." or "./": the root itself
      fail("{}: '{}': a file without a name", what, path);
    }
    const std::size_t n_dirs = directory ? parts.size() : parts.size() - 1;
    Fd dir(::dup(top.get()));
    if (dir.get() < 0) {
      const int error = errno;
      fail("{}: cannot unpack: {}", what, std::strerror(error));
    }
    std::string walked;
    for (std::size_t i = 0; i < n_dirs; ++i) {
      const std::string name(parts[i]);
      walked += (walked.empty() ? "" : "/") + name;
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        const int error = errno;
        fail("{}: '{}': cannot create the directory '{}': {}", what, path, excerpt(walked), std::strerror(error));
      }
      const int next = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        const int error = errno;
        fail("{}: '{}': '{}' {}", what, path, excerpt(walked), not_a_directory(dir.get(), name, error));
      }
      dir.reset(next);
    }
    if (directory) continue;
    const std::string leaf(parts.back());
    const mode_t mode = (e.mode & 0111) != 0 ? 0755 : 0644;
    Fd file(::openat(dir.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (file.get() < 0) {
      const int error = errno;
      if (error == EEXIST) fail("{}: '{}': already exists: the archive holds it twice, or as both a file and a directory", what, path);
      fail("{}: '{}': cannot create the unpacked file: {}", what, path, std::strerror(error));
    }
    write_all(file.get(), e.data, what, e.path);
    if (::close(file.release()) != 0) {
      const int error = errno;
      fail("{}: '{}': cannot write the unpacked file: {}", what, path, std::strerror(error));
    }
  }
}

}  // namespace minitx
