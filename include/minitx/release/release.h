// Release tarballs: pack_release writes dist/minitx-<version>.tar.gz and its .sha256, the
// archive holding MANIFEST.sha256 (one "<sha256>  <path>" line per file, sorted). The bytes
// depend only on the files' contents and SOURCE_DATE_EPOCH. verify_release checks all of it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

struct ManifestEntry {
  std::string sha256;
  std::string path;
};
std::string format_manifest(std::vector<ManifestEntry> entries);
std::vector<ManifestEntry> parse_manifest(std::string_view text, std::string_view what);

// The value of SOURCE_DATE_EPOCH: decimal seconds since 1970 that fit a tar header.
std::uint64_t parse_source_date_epoch(std::string_view text);

struct PackOptions {
  std::filesystem::path output;                      // dist/minitx-0.1.0.tar.gz
  std::string prefix;                                // top directory inside the archive
  std::vector<std::string> files;                    // relative paths of sources to include
  std::optional<std::filesystem::path> results_dir;  // its regular files are added too
  std::vector<std::string> exclude;                  // files to leave out (timings, for test-idem)
  std::uint64_t source_date_epoch = 0;
};

struct PackResult {
  std::string sha256;
  std::size_t files = 0;
  std::uint64_t bytes = 0;
};
PackResult pack_release(const PackOptions& options);

struct ReleaseReport {
  std::string sha256;
  std::size_t files = 0;
};
// Throws an Error naming the tarball and the first bad file.
ReleaseReport verify_release(const std::filesystem::path& tarball);

std::string manifest_name();  // "MANIFEST.sha256"

}  // namespace minitx
