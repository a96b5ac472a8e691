#include <doctest/doctest.h>

#include "helpers.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/subprocess.h"
#include "minitx/core/tar.h"

using namespace minitx;

TEST_CASE("gzip: round trip, deterministic bytes, corrupt and truncated input") {
  std::string data;
  for (int i = 0; i < 500'000; ++i) data += static_cast<char>("minitx"[i % 6] + i % 3);
  const std::string gz = gzip_compress(data);
  CHECK(gz == gzip_compress(data));
  CHECK(gz.size() < data.size() / 10);
  CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);
  CHECK(gz.substr(4, 4) == std::string(4, '\0'));  // no timestamp
  CHECK(gzip_decompress(gz, "t") == data);
  CHECK(gzip_decompress(gzip_compress(""), "t").empty());
  CHECK_ERROR_CONTAINS(gzip_decompress(gz.substr(0, gz.size() / 2), "half.gz"), "half.gz: gzip data is truncated");
  CHECK_ERROR_CONTAINS(gzip_decompress("not gzip at all", "x.gz"), "x.gz: not valid gzip data");
  CHECK_ERROR_CONTAINS(gzip_decompress(gz + "junk", "j.gz"), "j.gz: 4 bytes of trailing data");
  CHECK_ERROR_CONTAINS(gzip_decompress(gz, "big.gz", 1000), "big.gz: decompresses to more than 1000 bytes");
  // The bound is exact: the whole output passes, one byte less does not.
  CHECK(gzip_decompress(gz, "t", data.size()) == data);
  CHECK_ERROR_CONTAINS(gzip_decompress(gz, "t.gz", data.size() - 1), "t.gz: decompresses to more than 499999 bytes");
  std::string flipped = gz;
  flipped[gz.size() - 6] ^= 1;  // the CRC-32 trailer
  CHECK_ERROR_CONTAINS(gzip_decompress(flipped, "crc.gz"), "crc.gz: not valid gzip data");
}

TEST_CASE("tar: writer output round-trips through our reader and GNU tar") {
  TarWriter writer(1700000000);
  const std::string long_path = std::string(60, 'd') + "/" + std::string(60, 'e') + "/file.txt";
  writer.add_file("top/a.txt", "alpha", false);
  writer.add_file("top/run.sh", "#!/bin/sh\n", true);
  writer.add_file(long_path, std::string(1000, 'z'), false);
  writer.add_file("top/empty", "", false);
  const std::string archive = writer.finish();
  CHECK(archive.size() % 512 == 0);

  const auto entries = parse_tar(archive, "t.tar");
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].path == "top/a.txt");
  CHECK(entries[0].data == "alpha");
  CHECK(entries[0].mode == 0644);
  CHECK(entries[1].mode == 0755);
  CHECK(entries[2].path == long_path);
  CHECK(entries[2].data.size() == 1000);
  CHECK(entries[3].data.empty());

  TempDir dir;
  write_file_atomic(dir.path() / "t.tar", archive);
  const ProcessResult listing = run_process({"tar", "--utc", "--numeric-owner", "-tvf", "t.tar"}, dir.path());
  REQUIRE(listing.ok());
  const std::string first_line = listing.out.substr(0, listing.out.find('\n'));
  CHECK(first_line.rfind("-rw-r--r-- 0/0 ", 0) == 0);
  CHECK(first_line.find(" 5 2023-11-14 22:13 top/a.txt") != std::string::npos);
  CHECK(listing.out.find("-rwxr-xr-x 0/0 ") != std::string::npos);
  CHECK(listing.out.find(long_path) != std::string::npos);
  CHECK_ERROR_CONTAINS(TarWriter(0).add_file(std::string(300, 'x'), "", false), "path too long for ustar");
}

TEST_CASE("tar: reader accepts pax and GNU long names written by GNU tar") {
  TempDir dir;
  const std::string deep = std::string(120, 'n') + ".txt";
  write_file_atomic(dir.path() / "src" / deep, "long name");
  for (const char* format : {"pax", "gnu"}) {
    const ProcessResult r = run_process({"tar", std::string("--format=") + format, "-cf", "x.tar", "src"}, dir.path());
    REQUIRE(r.ok());
    const std::string archive = read_file(dir.path() / "x.tar");  // the entries' data are views into it
    const auto entries = parse_tar(archive, "x.tar");
    bool found = false;
    for (const auto& e : entries) found |= e.path == "src/" + deep && e.data == "long name";
    CHECK_MESSAGE(found, format);
  }
}

TEST_CASE("tar: malformed archives are errors, never out-of-bounds reads") {
  TarWriter writer(0);
  writer.add_file("a", std::string(700, 'x'), false);
  const std::string good = writer.finish();
  CHECK_ERROR_CONTAINS(parse_tar(good.substr(0, 300), "cut.tar"), "cut.tar: truncated tar header");
  CHECK_ERROR_CONTAINS(parse_tar(good.substr(0, 1024), "short.tar"), "claims 700 bytes but the archive ends first");
  CHECK_ERROR_CONTAINS(parse_tar(good.substr(0, 1536), "noend.tar"), "no end-of-archive marker");
  std::string bad_sum = good;
  bad_sum[0] = 'b';
  CHECK_ERROR_CONTAINS(parse_tar(bad_sum, "sum.tar"), "header checksum mismatch for entry 'b'");
  std::string bad_size = good;
  bad_size[124] = '9';  // not an octal digit; the checksum no longer matches either
  CHECK_ERROR_CONTAINS(parse_tar(bad_size, "size.tar"), "size.tar");
  CHECK_ERROR_CONTAINS(parse_tar(std::string(512, 'x'), "junk.tar"), "junk.tar");
  CHECK_ERROR_CONTAINS(parse_tar("", "empty.tar"), "no end-of-archive marker");

  TarWriter pax(0);
  pax.add_entry("PaxHeader", 'x', "99 path=x\n", "", 0644);
  pax.add_file("a", "", false);
  CHECK_ERROR_CONTAINS(parse_tar(pax.finish(), "pax.tar"), "pax.tar: malformed pax header record");
}

TEST_CASE("tar: entry types and path safety") {
  TarWriter writer(0);
  writer.add_entry("d", '5', "", "", 0755);
  writer.add_entry("d/l", '2', "", "../x", 0777);
  writer.add_entry("d/h", '1', "", "d/f", 0644);
  writer.add_entry("dev", '3', "", "", 0600);
  const auto entries = parse_tar(writer.finish(), "types.tar");
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].type == TarEntry::Type::directory);
  CHECK(entries[1].type == TarEntry::Type::symlink);
  CHECK(entries[1].link == "../x");
  CHECK(entries[2].type == TarEntry::Type::hardlink);
  CHECK(entries[3].type == TarEntry::Type::special);

  CHECK_FALSE(unsafe_path_reason("a/b/c.txt"));
  CHECK_FALSE(unsafe_path_reason("a/..b/c"));
  CHECK(*unsafe_path_reason("/etc/passwd") == "absolute path");
  CHECK(*unsafe_path_reason("a/../../b") == "path leaves the tree ('..')");
  CHECK(*unsafe_path_reason("..") == "path leaves the tree ('..')");
  CHECK(*unsafe_path_reason("") == "empty path");
}
