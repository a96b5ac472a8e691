#include <algorithm>

#include "minitx/core/error.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
#include "minitx/release/release.h"

namespace minitx {

std::string manifest_name() { return "MANIFEST.sha256"; }

std::string format_manifest(std::vector<ManifestEntry> entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  std::string out;
  for (const auto& e : entries) out += e.sha256 + "  " + e.path + "\n";
  return out;
}

// The format of `sha256sum`: 64 hex digits, two spaces, a path; one entry per line.
std::vector<ManifestEntry> parse_manifest(std::string_view text, std::string_view what) {
  std::vector<ManifestEntry> entries;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) fail("{}: line {}: missing final newline (truncated?)", what, line_no);
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line.size() < 67 || line.substr(64, 2) != "  " || !is_sha256_hex(line.substr(0, 64)))
      fail("{}: line {}: expected \"<64 hex digits>  <path>\"", what, line_no);
    ManifestEntry entry{std::string(line.substr(0, 64)), std::string(line.substr(66))};
    if (auto why = unsafe_path_reason(entry.path)) fail("{}: line {}: '{}': {}", what, line_no, excerpt(entry.path), *why);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::uint64_t parse_source_date_epoch(std::string_view text) {
  // 11 octal digits is the largest mtime a ustar header holds.
  constexpr std::uint64_t kMax = 077777777777ull;
  bool ok = !text.empty() && text.size() <= 12;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    else value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!ok || value > kMax)
    fail("SOURCE_DATE_EPOCH: expected whole seconds since 1970 (0 to {}), got '{}'", kMax, excerpt(text));
  return value;
}

}  // namespace minitx
