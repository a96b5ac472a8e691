#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/progress.h"
#include "minitx/core/subprocess.h"

using namespace minitx;

TEST_CASE("io: atomic file appears only on commit, with nothing left behind") {
  TempDir dir;
  const fs::path target = dir.path() / "sub" / "out.bin";
  {
    AtomicFile file(target);
    file.write("partial");
    CHECK(fs::exists(file.temp_path()));
    CHECK_FALSE(fs::exists(target));
  }  // abandoned: as when a stage fails half-way
  CHECK_FALSE(fs::exists(target));
  CHECK(fs::is_empty(dir.path() / "sub"));

  AtomicFile file(target);
  file.write("hello ");
  file.write(std::string_view("world"));
  CHECK(file.bytes_written() == 11);
  file.commit();
  CHECK(read_file(target) == "hello world");
  CHECK_ERROR_CONTAINS(file.write("more"), "write after commit");
  CHECK_ERROR_CONTAINS(file.commit(), "commit called twice");
  CHECK(std::distance(fs::directory_iterator(dir.path() / "sub"), fs::directory_iterator()) == 1);
}

TEST_CASE("io: write_file_if_changed keeps an identical file untouched") {
  TempDir dir;
  const fs::path path = dir.path() / "stamp";
  CHECK(write_file_if_changed(path, "a\n"));
  const auto first = fs::last_write_time(path);
  CHECK_FALSE(write_file_if_changed(path, "a\n"));
  CHECK(fs::last_write_time(path) == first);
  CHECK(write_file_if_changed(path, "b\n"));
  CHECK(read_file(path) == "b\n");
}

TEST_CASE("io: an output that exists but is no regular file is refused and left as it was") {
  TempDir dir;
  const fs::path victim = dir.path() / "victim", link = dir.path() / "link", fifo = dir.path() / "fifo";
  write_file_atomic(victim, "kept");
  fs::create_symlink(victim, link);
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_ERROR_CONTAINS(write_file_atomic(link, "new"), link.string() + ": exists and is a symbolic link, not a regular file; refusing to replace it");
  CHECK_ERROR_CONTAINS(write_file_atomic(fifo, "new"), fifo.string() + ": exists and is a fifo, not a regular file");
  CHECK_ERROR_CONTAINS(write_file_atomic(dir.path(), "new"), ": exists and is a directory, not a regular file");
  CHECK(fs::is_symlink(link));
  CHECK(fs::is_fifo(fs::symlink_status(fifo)));
  CHECK(read_file(victim) == "kept");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 3);  // no temporary file

  // A device node (the issue's `--output /dev/full`). As root, a node of the test's own, so that a
  // regression would replace nothing of the system's; otherwise /dev/full, which a user cannot replace.
  fs::path device = "/dev/full";
  if (::geteuid() == 0) {
    device = dir.path() / "full";
    if (::mknod(device.c_str(), S_IFCHR | 0666, ::makedev(1, 7)) != 0) device.clear();
  }
  if (device.empty()) {
    MESSAGE("root without CAP_MKNOD: the device-node case is not checked");
  } else {
    CHECK_ERROR_CONTAINS(write_file_atomic(device, "new"), device.string() + ": exists and is a character device, not a regular file");
    struct stat st {};
    CHECK((::lstat(device.c_str(), &st) == 0 && S_ISCHR(st.st_mode)));
    if (device != "/dev/full") fs::remove(device);
  }

  // A link planted under the temporary name is not written through either.
  const fs::path target = dir.path() / "out.txt";
  fs::create_symlink(victim, dir.path() / ("out.txt.tmp-" + std::to_string(::getpid())));
  CHECK_ERROR_CONTAINS(write_file_atomic(target, "new"), target.string() + ": cannot create");
  CHECK(read_file(victim) == "kept");
  CHECK_FALSE(fs::exists(target));
}

TEST_CASE("io: a write past a file-size limit names the file and how far it got, and removes it") {
  TempDir dir;
  const fs::path target = dir.path() / "big.bin";
  // As build/minitx does: without SIGXFSZ ignored, the limit kills the process instead.
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ::getrlimit(RLIMIT_FSIZE, &old_limit);
  rlimit limit = old_limit;
  limit.rlim_cur = 64 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  std::string message;
  try {
    write_file_atomic(target, std::string(200 * 1024, 'x'));
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  CHECK(message == target.string() + ": write failed after 65536 bytes: File too large (a file-size limit, such as `ulimit -f`?); " +
                       "the partial file " + target.string() + ".tmp-" + std::to_string(::getpid()) + " was removed");
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("io: a write into a full disk names the file and how far it got, and removes it") {
  // MINITX_FAULT_ENOSPC stands for the full disk (fault.h): a tmpfs small enough needs root.
  TempDir dir;
  const fs::path target = dir.path() / "out.bin";
  const std::string temp = target.string() + ".tmp-" + std::to_string(::getpid());
  write_file_atomic(target, "old");
  REQUIRE(::setenv("MINITX_FAULT_ENOSPC", "4096", 1) == 0);
  std::string message, in_pieces, exact;
  try {
    write_file_atomic(target, std::string(10000, 'x'));
  } catch (const Error& e) {
    message = e.what();
  }
  try {  // the room used up by the third of three writes
    AtomicFile file(target);
    for (int i = 0; i < 3; ++i) file.write(std::string(1500, 'y'));
    file.commit();
  } catch (const Error& e) {
    in_pieces = e.what();
  }
  try {
    write_file_atomic(dir.path() / "fits.bin", std::string(4096, 'z'));  // exactly the room there is
  } catch (const Error& e) {
    exact = e.what();
  }
  REQUIRE(::setenv("MINITX_FAULT_ENOSPC", "4k", 1) == 0);
  CHECK_ERROR_CONTAINS(write_file_atomic(target, "x"), "MINITX_FAULT_ENOSPC: expected a whole number of bytes, got '4k'");
  ::unsetenv("MINITX_FAULT_ENOSPC");
  const std::string tail = ": No space left on device; the partial file " + temp + " was removed";
  CHECK(message == target.string() + ": write failed after 4096 bytes" + tail);
  CHECK(in_pieces == target.string() + ": write failed after 4096 bytes" + tail);
  CHECK(exact.empty());
  CHECK(read_file(target) == "old");  // the target as it was, and no temporary file beside it
  CHECK(read_file(dir.path() / "fits.bin") == std::string(4096, 'z'));
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
}

TEST_CASE("io: errors name the file") {
  CHECK_ERROR_CONTAINS(read_file("/nonexistent/minitx/file"), "/nonexistent/minitx/file: cannot open");
  CHECK_ERROR_CONTAINS(AtomicFile("/proc/minitx-cannot-write/x"), "/proc/minitx-cannot-write/x");
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir != nullptr ? old_tmpdir : "";
  setenv("TMPDIR", "/nonexistent/minitx-tmp", 1);
  CHECK_ERROR_CONTAINS(TempDir("x"), "cannot find a directory for temporary files (TMPDIR)");
  if (old_tmpdir != nullptr) setenv("TMPDIR", saved.c_str(), 1);
  else unsetenv("TMPDIR");
}

TEST_CASE("temp dir is removed with its contents") {
  fs::path kept;
  {
    TempDir dir("minitx-test");
    kept = dir.path();
    write_file_atomic(dir.path() / "a" / "b", "x");
    CHECK(fs::exists(kept / "a" / "b"));
  }
  CHECK_FALSE(fs::exists(kept));
}

TEST_CASE("subprocess: captures both streams and the exit code, passes arguments verbatim") {
  const ProcessResult r = run_process({"sh", "-c", "printf 'out:%s' \"$1\"; printf err >&2; exit 3", "sh", "a b;$c"});
  CHECK(r.started);
  CHECK(r.exit_code == 3);
  CHECK(r.out == "out:a b;$c");
  CHECK(r.err == "err");
  CHECK_FALSE(r.ok());
  const ProcessResult missing = run_process({"minitx-no-such-program-xyz"});
  CHECK_FALSE(missing.started);
  TempDir dir;
  const ProcessResult pwd = run_process({"pwd"}, dir.path());
  CHECK(pwd.out == fs::canonical(dir.path()).string() + "\n");
  CHECK(tail_lines("a\n\nb\nc\n  \n", 2) == "b\nc");
}

TEST_CASE("progress: durations read as a person would say them") {
  CHECK(Progress::format_duration(0.4) == "0s");
  CHECK(Progress::format_duration(59) == "59s");
  CHECK(Progress::format_duration(61) == "1m01s");
  CHECK(Progress::format_duration(3 * 3600 + 120) == "3h02m");
  CHECK(Progress::format_duration(-1) == "?");
  CHECK(Progress::format_rate(25, 2.0, "steps") == "12.5 steps/s");
  CHECK(Progress::format_rate(0, 3.0, "runs") == "0.0 runs/s");
  CHECK(Progress::format_rate(2, 84.6, "runs") == "42.3 s/run");
  CHECK(Progress::format_rate(1, 2.0, "MB") == "2.0 s/MB");
  Progress p("test", 10, "steps");  // not a terminal under the test runner: plain lines
  p.update(5, "loss 1.0");
  p.finish("done");
  p.finish();  // idempotent
}
