#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "minitx/core/error.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
#include "minitx/core/tar_extract.h"
#include "minitx/release/release.h"

namespace minitx {
namespace {

std::string expected_tarball_hash(const fs::path& tarball) {
  const fs::path sum_file = tarball.string() + ".sha256";
  if (!fs::exists(sum_file)) fail("{}: missing; run `make pack`", sum_file.string());
  const std::string text = read_file(sum_file);
  const std::string expected_line_end = "  " + tarball.filename().string() + "\n";
  if (text.size() != 64 + expected_line_end.size() || !is_sha256_hex(text.substr(0, 64)) || text.substr(64) != expected_line_end)
    fail("{}: expected one line \"<64 hex digits>  {}\"", sum_file.string(), tarball.filename().string());
  return text.substr(0, 64);
}

// The most a tarball of `compressed` bytes may inflate to. A release holds model weights and
// token ids, which deflate little, and sources, which deflate a few times; a tarball that
// inflates far beyond that is no release (a gzip bomb would cost gigabytes of memory and
// minutes before its tar could be checked), so decompression stops there.
std::uint64_t max_release_bytes(std::uint64_t compressed) {
  constexpr std::uint64_t kRatio = 32, kFloor = 64ull << 20, kCeiling = 4ull << 30;
  return std::clamp(compressed * kRatio, kFloor, kCeiling);
}

// Checks every entry before anything is written: no absolute paths, no "..", nothing but
// regular files and directories (pack writes nothing else, and a link is how an archive
// reaches outside the tree), one top-level directory.
std::string check_entries(const std::vector<TarEntry>& entries, const std::string& what) {
  std::string top;
  std::set<std::string> seen;
  for (const TarEntry& e : entries) {
    const std::string path = excerpt(e.path);
    if (auto why = unsafe_path_reason(e.path)) fail("{}: '{}': {}", what, path, *why);
    const std::string first = e.path.substr(0, e.path.find('/'));
    if (top.empty()) top = first;
    if (first != top) fail("{}: '{}': outside the release directory '{}/'", what, path, excerpt(top));
    switch (e.type) {
      case TarEntry::Type::file:
      case TarEntry::Type::directory:
        break;
      case TarEntry::Type::symlink:
        fail("{}: '{}': symbolic link to '{}'; a release holds only regular files and directories", what, path, excerpt(e.link));
      case TarEntry::Type::hardlink:
        fail("{}: '{}': hard link to '{}'; a release holds only regular files and directories", what, path, excerpt(e.link));
      case TarEntry::Type::special:
        fail("{}: '{}': device, fifo or other special file (type '{}')", what, path, excerpt(std::string(1, e.typeflag)));
    }
    if (!seen.insert(e.path).second && e.type != TarEntry::Type::directory) fail("{}: '{}': appears twice", what, path);
  }
  if (top.empty()) fail("{}: the archive is empty", what);
  return top;
}

}  // namespace

ReleaseReport verify_release(const fs::path& tarball) {
  const std::string what = tarball.string();
  if (!fs::exists(tarball)) fail("{}: missing; run `make pack`", what);
  const std::string expected = expected_tarball_hash(tarball);
  const std::string archive_gz = read_file(tarball);
  ReleaseReport report;
  report.sha256 = sha256_hex(archive_gz);
  if (report.sha256 != expected)
    fail("{}: SHA-256 mismatch: {}.sha256 says {}, the file hashes to {}", what, tarball.filename().string(), expected, report.sha256);

  const std::string archive = gzip_decompress(archive_gz, what, max_release_bytes(archive_gz.size()));
  const std::vector<TarEntry> entries = parse_tar(archive, what);
  const std::string top = check_entries(entries, what);

  TempDir scratch("minitx-verify");
  extract_tar(entries, scratch.path(), what);
  const fs::path root = scratch.path() / top;
  const std::string shown_top = excerpt(top);
  const fs::path manifest_path = root / manifest_name();
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(manifest_path, ec))) fail("{}: {}/{} is missing", what, shown_top, manifest_name());
  const std::vector<ManifestEntry> manifest = parse_manifest(read_file(manifest_path), what + ": " + manifest_name());

  std::set<std::string> listed;
  for (const ManifestEntry& m : manifest) {
    const std::string shown = excerpt(m.path);
    if (!listed.insert(m.path).second) fail("{}: {}: '{}' is listed twice", what, manifest_name(), shown);
    const fs::path file = root / m.path;
    const fs::file_status status = fs::symlink_status(file, ec);
    if (!fs::exists(status)) fail("{}: {}/{}: listed in {} but missing", what, shown_top, shown, manifest_name());
    if (!fs::is_regular_file(status)) fail("{}: {}/{}: not a regular file", what, shown_top, shown);
    const std::string actual = sha256_file_hex(file);
    if (actual != m.sha256) fail("{}: {}/{}: SHA-256 mismatch: manifest {}, file {}", what, shown_top, shown, m.sha256, actual);
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_directory() && !entry.is_symlink()) continue;
    const std::string rel = fs::relative(entry.path(), root).string();
    if (rel != manifest_name() && !listed.count(rel))
      fail("{}: {}/{}: present but not listed in {}", what, shown_top, excerpt(rel), manifest_name());
  }
  report.files = manifest.size();
  return report;
}

}  // namespace minitx
