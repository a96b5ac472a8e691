#include <fmt/format.h>

#include <map>
#include <set>

#include "minitx/core/error.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
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

// Checks every entry before anything is written: no absolute paths, no "..", no links that
// leave the tree, no device files, one top-level directory.
std::string check_entries(const std::vector<TarEntry>& entries, const std::string& what) {
  std::string top;
  std::set<std::string> seen;
  for (const TarEntry& e : entries) {
    if (auto why = unsafe_path_reason(e.path)) fail("{}: '{}': {}", what, e.path, *why);
    const std::string first = e.path.substr(0, e.path.find('/'));
    if (top.empty()) top = first;
    if (first != top) fail("{}: '{}': outside the release directory '{}/'", what, e.path, top);
    switch (e.type) {
      case TarEntry::Type::file:
      case TarEntry::Type::directory:
        break;
      case TarEntry::Type::symlink:
        if (!link_stays_inside(e.path, e.link)) fail("{}: '{}': symbolic link to '{}' leaves the tree", what, e.path, e.link);
        break;
      case TarEntry::Type::hardlink:
        if (!seen.count(e.link)) fail("{}: '{}': hard link to '{}', which is not an earlier file of the archive", what, e.path, e.link);
        break;
      case TarEntry::Type::special:
        fail("{}: '{}': device, fifo or other special file (type '{}')", what, e.path, e.typeflag);
    }
    if (!seen.insert(e.path).second && e.type != TarEntry::Type::directory) fail("{}: '{}': appears twice", what, e.path);
  }
  if (top.empty()) fail("{}: the archive is empty", what);
  return top;
}

void unpack(const std::vector<TarEntry>& entries, const fs::path& root) {
  std::map<std::string, std::string_view> files;
  for (const TarEntry& e : entries) {
    const fs::path target = root / e.path;
    fs::create_directories(e.type == TarEntry::Type::directory ? target : target.parent_path());
    if (e.type == TarEntry::Type::file) {
      write_file_atomic(target, e.data);
      files[e.path] = e.data;
    } else if (e.type == TarEntry::Type::hardlink) {
      write_file_atomic(target, files.at(e.link));
      files[e.path] = files.at(e.link);
    } else if (e.type == TarEntry::Type::symlink) {
      fs::create_symlink(e.link, target);
    }
  }
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

  const std::string archive = gzip_decompress(archive_gz, what);
  const std::vector<TarEntry> entries = parse_tar(archive, what);
  const std::string top = check_entries(entries, what);

  TempDir scratch("minitx-verify");
  unpack(entries, scratch.path());
  const fs::path root = scratch.path() / top;
  const fs::path manifest_path = root / manifest_name();
  if (!fs::is_regular_file(fs::symlink_status(manifest_path))) fail("{}: {}/{} is missing", what, top, manifest_name());
  const std::vector<ManifestEntry> manifest = parse_manifest(read_file(manifest_path), what + ": " + manifest_name());

  std::set<std::string> listed;
  for (const ManifestEntry& m : manifest) {
    if (!listed.insert(m.path).second) fail("{}: {}: '{}' is listed twice", what, manifest_name(), m.path);
    const fs::path file = root / m.path;
    if (!fs::exists(fs::symlink_status(file))) fail("{}: {}/{}: listed in {} but missing", what, top, m.path, manifest_name());
    if (!fs::is_regular_file(file)) fail("{}: {}/{}: not a regular file", what, top, m.path);
    const std::string actual = sha256_file_hex(file);
    if (actual != m.sha256) fail("{}: {}/{}: SHA-256 mismatch: manifest {}, file {}", what, top, m.path, m.sha256, actual);
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_directory() && !entry.is_symlink()) continue;
    const std::string rel = fs::relative(entry.path(), root).string();
    if (rel != manifest_name() && !listed.count(rel)) fail("{}: {}/{}: present but not listed in {}", what, top, rel, manifest_name());
  }
  report.files = manifest.size();
  return report;
}

}  // namespace minitx
