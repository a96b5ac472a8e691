// Shared helpers of the libFuzzer harnesses (fuzz/fuzz_<name>.cpp, built and run by mk/fuzz.mk).
//
// Every reader of untrusted input throws minitx::Error on bad input. A harness runs the reader
// through expect_errors(): an Error is the expected outcome and is dropped; any other exception is
// a finding, printed with its type and message before abort() so that libFuzzer saves the input.
// Crashes, leaks and sanitizer reports are findings by themselves. FUZZ_ASSERT states what a
// successful read promises (sizes agree, a written file reads back); a broken promise aborts.
//
// Inputs go to files in one temporary directory per process (made on first use, TMPDIR pointed at
// it so that the readers' own temporary directories land there too, removed at exit); each file
// is removed when the input is done.
//
// Harnesses of files that carry a checksum (checkpoint, quantized file) take one leading mode
// byte: bit 0 set recomputes the checksum over the mutated bytes before the file is written, so
// that mutations reach the checks behind it; clear, the bytes are written as they are.
#pragma once
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "minitx/core/error.h"
#include "minitx/core/threads.h"

namespace fuzz {

namespace fs = std::filesystem;

[[noreturn]] inline void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\n==fuzz== FINDING: %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_ASSERT(cond, detail)                                                              \
  do {                                                                                         \
    if (!(cond)) ::fuzz::die("broken invariant " #cond " (" __FILE__ ":" FUZZ_STR(__LINE__) ")", \
                             std::string(detail));                                             \
  } while (0)
#define FUZZ_STR2(x) #x
#define FUZZ_STR(x) FUZZ_STR2(x)

// The per-process working directory.
class Workspace {
 public:
  static Workspace& get() {
    static Workspace workspace;
    return workspace;
  }
  const fs::path& dir() const { return dir_; }
  ~Workspace() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

 private:
  Workspace() {
    // One thread: the results do not depend on it, and a pool per input costs time.
    minitx::set_thread_count(1);
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string pattern = (base / "minitx-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) die("setup", "mkdtemp " + pattern + ": " + std::strerror(errno));
    dir_ = pattern;
    ::setenv("TMPDIR", dir_.c_str(), 1);
  }
  fs::path dir_;
};

inline void write_bytes(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("setup", "open " + path.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("setup", "write " + path.string() + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

// A file in the workspace (or in `dir`, under it) holding the input; removed when it goes away.
class InputFile {
 public:
  InputFile(const std::string& name, std::string_view bytes, const fs::path& dir = {})
      : path_((dir.empty() ? Workspace::get().dir() : dir) / name) {
    write_bytes(path_, bytes);
  }
  ~InputFile() {
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A fresh directory under the workspace, removed with its contents when it goes away.
class ScratchDir {
 public:
  ScratchDir() {
    static std::uint64_t counter = 0;
    path_ = Workspace::get().dir() / ("input-" + std::to_string(++counter));
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (!fs::create_directory(path_, ec) || ec) die("setup", "mkdir " + path_.string() + ": " + ec.message());
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `f`; minitx::Error is expected and dropped, anything else thrown is a finding. Returns
// whether `f` completed without an Error.
template <class F>
bool expect_errors(F&& f) {
  try {
    std::forward<F>(f)();
    return true;
  } catch (const minitx::Error&) {
    return false;
  } catch (const std::exception& e) {
    die("exception other than minitx::Error", std::string(typeid(e).name()) + ": " + e.what());
  } catch (...) {
    die("exception other than minitx::Error", "not derived from std::exception");
  }
}

// Runs `f`, which must not throw at all: an Error here is a finding too (with its message).
template <class F>
void expect_success(const char* what, F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const minitx::Error& e) {
    die(what, std::string("minitx::Error: ") + e.what());
  } catch (const std::exception& e) {
    die(what, std::string(typeid(e).name()) + ": " + e.what());
  } catch (...) {
    die(what, "exception not derived from std::exception");
  }
}

}  // namespace fuzz
