#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "minitx/core/error.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
#include "minitx/release/release.h"

namespace minitx {
namespace {

// Results are the finished regular files of the results directory: no hidden files (stamps)
// and no temporary files of a stage that is still writing.
std::vector<std::string> list_results(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) fail("{}: results directory does not exist", dir.string());
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.is_symlink() || name.front() == '.' || name.find(".tmp-") != std::string::npos) continue;
    out.push_back((dir / name).lexically_normal().string());
  }
  return out;
}

}  // namespace

PackResult pack_release(const PackOptions& options) {
  if (auto why = unsafe_path_reason(options.prefix); why || options.prefix.find('/') != std::string::npos)
    fail("pack: prefix '{}' must be a single directory name", excerpt(options.prefix));
  std::set<std::string> paths;
  for (const auto& f : options.files) paths.insert(fs::path(f).lexically_normal().string());
  if (options.results_dir)
    for (auto& f : list_results(*options.results_dir)) paths.insert(std::move(f));
  for (const auto& f : options.exclude) paths.erase(fs::path(f).lexically_normal().string());
  if (paths.empty()) fail("pack: nothing to pack");

  TarWriter tar(options.source_date_epoch);
  std::vector<ManifestEntry> manifest;
  std::vector<std::pair<std::string, std::string>> contents;  // archive path -> data, sorted below
  for (const std::string& path : paths) {
    if (auto why = unsafe_path_reason(path)) fail("pack: '{}': {}", path, *why);
    const fs::file_status status = fs::symlink_status(path);
    if (!fs::is_regular_file(status)) fail("pack: '{}' is not a regular file", path);
    std::string data = read_file(path);
    manifest.push_back({sha256_hex(data), path});
    contents.emplace_back(path, std::move(data));
  }
  const std::string manifest_text = format_manifest(manifest);
  contents.emplace_back(manifest_name(), manifest_text);
  std::sort(contents.begin(), contents.end());
  for (const auto& [path, data] : contents) {
    const bool executable = path != manifest_name() &&
                            (fs::status(path).permissions() & fs::perms::owner_exec) != fs::perms::none;
    tar.add_file(options.prefix + "/" + path, data, executable);
  }
  const std::string archive = gzip_compress(tar.finish());
  PackResult result;
  result.sha256 = sha256_hex(archive);
  result.files = contents.size();
  result.bytes = archive.size();
  write_file_atomic(options.output, archive);
  write_file_atomic(options.output.string() + ".sha256", fmt::format("{}  {}\n", result.sha256, options.output.filename().string()));
  return result;
}

}  // namespace minitx
