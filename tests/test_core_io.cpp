#include <doctest/doctest.h>

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

TEST_CASE("io: errors name the file") {
  CHECK_ERROR_CONTAINS(read_file("/nonexistent/minitx/file"), "/nonexistent/minitx/file: cannot open");
  CHECK_ERROR_CONTAINS(AtomicFile("/proc/minitx-cannot-write/x"), "/proc/minitx-cannot-write/x");
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
