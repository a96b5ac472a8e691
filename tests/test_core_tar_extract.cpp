// extract_tar writes only under its root, whatever the archive holds and whatever already lies
// under the root: links are never created or followed.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/tar.h"
#include "minitx/core/tar_extract.h"

using namespace minitx;

namespace {

void extract(TarWriter& writer, const fs::path& root) {
  const std::string archive = writer.finish();  // the entries' data are views into it
  extract_tar(parse_tar(archive, "t.tar"), root, "t.tar");
}

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) ++n;
  return n;
}

}  // namespace

TEST_CASE("tar extract: files and directories, with their contents and executable bits") {
  TempDir dir;
  TarWriter writer(0);
  writer.add_entry("top/", '5', "", "", 0755);
  writer.add_file("top/a.txt", "alpha", false);
  writer.add_file("top/./sub/run.sh", "#!/bin/sh\n", true);
  writer.add_entry("top/sub", '5', "", "", 0755);  // a directory met again
  extract(writer, dir.path());
  CHECK(read_file(dir.path() / "top/a.txt") == "alpha");
  CHECK(read_file(dir.path() / "top/sub/run.sh") == "#!/bin/sh\n");
  CHECK((fs::status(dir.path() / "top/sub/run.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  CHECK((fs::status(dir.path() / "top/a.txt").permissions() & fs::perms::owner_exec) == fs::perms::none);
  CHECK(count_files(dir.path()) == 4);
}

TEST_CASE("tar extract: never writes through a link already under the root") {
  TempDir dir;
  const fs::path root = dir.path() / "root", outside = dir.path() / "outside";
  fs::create_directories(root);
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, root / "top");
  fs::create_symlink(outside / "victim", root / "file");
  write_file_atomic(outside / "victim", "untouched");

  TarWriter through_dir(0);
  through_dir.add_file("top/x.txt", "x", false);
  CHECK_ERROR_CONTAINS(extract(through_dir, root),
                       "t.tar: 'top/x.txt': 'top' is a symbolic link, which is never followed");
  TarWriter onto_link(0);
  onto_link.add_file("file", "overwritten", false);
  CHECK_ERROR_CONTAINS(extract(onto_link, root), "t.tar: 'file': already exists");
  CHECK(read_file(outside / "victim") == "untouched");
  CHECK(count_files(outside) == 1);
}

TEST_CASE("tar extract: links, devices and clashing paths are named errors") {
  TempDir dir;
  SUBCASE("a symbolic link") {
    TarWriter writer(0);
    writer.add_entry("top/l", '2', "", ".", 0777);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path()),
                         "t.tar: 'top/l': a link or special file (type '2'); only regular files and directories are unpacked");
  }
  SUBCASE("a hard link to a directory") {
    TarWriter writer(0);
    writer.add_entry("top/d", '5', "", "", 0755);
    writer.add_entry("top/h", '1', "", "top/d", 0644);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path()), "t.tar: 'top/h': a link or special file (type '1')");
  }
  SUBCASE("a fifo") {
    TarWriter writer(0);
    writer.add_entry("top/p", '6', "", "", 0644);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path()), "'top/p': a link or special file (type '6')");
  }
  SUBCASE("a file used as a directory") {
    TarWriter writer(0);
    writer.add_file("top/a", "file", false);
    writer.add_file("top/a/b", "below a file", false);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path()), "t.tar: 'top/a/b': 'top/a' is a file, not a directory");
  }
  SUBCASE("a directory written as a file") {
    TarWriter writer(0);
    writer.add_file("top/d/x", "x", false);
    writer.add_file("top/d", "file", false);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path()),
                         "t.tar: 'top/d': already exists: the archive holds it twice, or as both a file and a directory");
  }
  SUBCASE("a path that leaves the tree") {
    fs::create_directories(dir.path() / "in");
    TarWriter writer(0);
    writer.add_file("top/../../x", "x", false);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path() / "in"), "t.tar: 'top/../../x': path leaves the tree");
    CHECK_FALSE(fs::exists(dir.path() / "x"));
  }
  SUBCASE("a root that is missing") {
    TarWriter writer(0);
    writer.add_file("a", "a", false);
    CHECK_ERROR_CONTAINS(extract(writer, dir.path() / "missing"), "t.tar: cannot open the directory");
  }
}
