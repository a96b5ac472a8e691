#include "minitx/core/tar.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "minitx/core/error.h"

namespace minitx {
namespace {

constexpr std::size_t kBlock = 512;

// Offsets and sizes of the ustar header fields.
struct Field {
  std::size_t offset, size;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12}, kMtime{136, 12},
    kChecksum{148, 8}, kLinkname{157, 100}, kMagic{257, 6}, kVersion{263, 2}, kPrefix{345, 155};
constexpr std::size_t kTypeflag = 156;

std::string field_string(std::string_view block, Field f) {
  std::string_view s = block.substr(f.offset, f.size);
  return std::string(s.substr(0, std::min(s.find('\0'), s.size())));
}

// Octal, optionally surrounded by spaces and NULs, as every tar writer emits.
std::uint64_t field_number(std::string_view block, Field f, std::string_view what, std::string_view name) {
  std::string_view s = block.substr(f.offset, f.size);
  if (!s.empty() && (static_cast<unsigned char>(s[0]) & 0x80))
    fail("{}: entry '{}': base-256 numeric fields are not supported", what, name);
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  std::uint64_t value = 0;
  std::size_t digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '7'; ++i, ++digits) {
    if (value > (UINT64_MAX >> 3)) fail("{}: entry '{}': numeric field overflows", what, name);
    value = value * 8 + static_cast<std::uint64_t>(s[i] - '0');
  }
  for (; i < s.size(); ++i)
    if (s[i] != ' ' && s[i] != '\0') fail("{}: entry '{}': malformed numeric field at header offset {}", what, name, f.offset);
  return value;
}

void put_octal(std::string& block, Field f, std::uint64_t value) {
  // f.size - 1 digits, zero-padded, then a NUL.
  const std::string digits = fmt::format("{:0{}o}", value, f.size - 1);
  if (digits.size() != f.size - 1) fail("tar: value {} does not fit a {}-byte field", value, f.size);
  std::memcpy(block.data() + f.offset, digits.data(), digits.size());
  block[f.offset + f.size - 1] = '\0';
}

bool all_zero(std::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

// pax records: "<len> <key>=<value>\n", len counting the whole record.
void parse_pax(std::string_view data, std::string_view what, std::string* path, std::string* link, std::optional<std::uint64_t>* size) {
  while (!data.empty()) {
    const std::size_t space = data.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 20) fail("{}: malformed pax header record", what);
    std::uint64_t length = 0;
    for (char c : data.substr(0, space)) {
      if (c < '0' || c > '9') fail("{}: malformed pax header record length", what);
      length = length * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (length <= space + 1 || length > data.size() || data[length - 1] != '\n') fail("{}: malformed pax header record", what);
    const std::string_view record = data.substr(space + 1, length - space - 2);
    const std::size_t eq = record.find('=');
    if (eq == std::string_view::npos) fail("{}: pax header record without '='", what);
    const std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (key == "path") *path = std::string(value);
    if (key == "linkpath") *link = std::string(value);
    if (key == "size") {
      std::uint64_t v = 0;
      if (value.empty() || value.size() > 19) fail("{}: malformed pax size", what);
      for (char c : value) {
        if (c < '0' || c > '9') fail("{}: malformed pax size", what);
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      *size = v;
    }
    data.remove_prefix(length);
  }
}

}  // namespace

std::vector<TarEntry> parse_tar(std::string_view archive, std::string_view what) {
  std::vector<TarEntry> entries;
  std::size_t offset = 0;
  std::string pending_path, pending_link;
  std::optional<std::uint64_t> pending_size;
  bool ended = false;
  while (offset < archive.size()) {
    if (archive.size() - offset < kBlock) fail("{}: truncated tar header at byte {}", what, offset);
    const std::string_view block = archive.substr(offset, kBlock);
    if (all_zero(block)) {
      ended = true;
      break;
    }
    const std::string raw_name = field_string(block, kName);
    // Checksum: the header's bytes summed with the checksum field read as spaces.
    std::uint64_t unsigned_sum = 0;
    std::int64_t signed_sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) {
      const bool in_sum = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.size;
      const char c = in_sum ? ' ' : block[i];
      unsigned_sum += static_cast<unsigned char>(c);
      signed_sum += static_cast<signed char>(c);
    }
    const std::uint64_t stored = field_number(block, kChecksum, what, raw_name);
    if (stored != unsigned_sum && static_cast<std::int64_t>(stored) != signed_sum)
      fail("{}: header checksum mismatch for entry '{}' at byte {} (not a tar archive, or corrupt)", what, raw_name, offset);
    if (block.substr(kMagic.offset, 5) != "ustar") fail("{}: entry '{}' is not in ustar/pax/GNU format", what, raw_name);

    const char typeflag = block[kTypeflag];
    std::uint64_t size = field_number(block, kSize, what, raw_name);
    if (pending_size && (typeflag == '0' || typeflag == '\0' || typeflag == '7')) size = *pending_size;
    const std::uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (size > archive.size() || padded > archive.size() - offset - kBlock)
      fail("{}: entry '{}' claims {} bytes but the archive ends first (truncated)", what, raw_name, size);
    const std::string_view data = archive.substr(offset + kBlock, size);
    offset += kBlock + padded;

    if (typeflag == 'x') {
      parse_pax(data, what, &pending_path, &pending_link, &pending_size);
      continue;
    }
    if (typeflag == 'g') {
      std::string ignored_path, ignored_link;
      std::optional<std::uint64_t> ignored_size;
      parse_pax(data, what, &ignored_path, &ignored_link, &ignored_size);
      continue;
    }
    if (typeflag == 'L' || typeflag == 'K') {  // GNU long name / long link target
      std::string value(data.substr(0, std::min(data.find('\0'), data.size())));
      (typeflag == 'L' ? pending_path : pending_link) = std::move(value);
      continue;
    }

    TarEntry entry;
    const std::string prefix = field_string(block, kPrefix);
    const bool posix = block.substr(kMagic.offset, 6) == std::string_view("ustar\0", 6) && block.substr(kVersion.offset, 2) == "00";
    entry.path = !pending_path.empty() ? pending_path : (posix && !prefix.empty() ? prefix + "/" + raw_name : raw_name);
    entry.link = !pending_link.empty() ? pending_link : field_string(block, kLinkname);
    entry.typeflag = typeflag;
    entry.mode = static_cast<std::uint32_t>(field_number(block, kMode, what, entry.path) & 07777);
    pending_path.clear();
    pending_link.clear();
    pending_size.reset();
    switch (typeflag) {
      case '0': case '\0': case '7': entry.type = TarEntry::Type::file; entry.data = data; break;
      case '5': entry.type = TarEntry::Type::directory; break;
      case '2': entry.type = TarEntry::Type::symlink; break;
      case '1': entry.type = TarEntry::Type::hardlink; break;
      default: entry.type = TarEntry::Type::special; break;
    }
    while (entry.path.size() > 1 && entry.path.back() == '/') entry.path.pop_back();
    entries.push_back(std::move(entry));
  }
  if (!ended && !entries.empty() && offset != archive.size()) fail("{}: truncated tar archive", what);
  if (!ended) fail("{}: tar archive has no end-of-archive marker (truncated)", what);
  return entries;
}

TarWriter::TarWriter(std::uint64_t mtime) : mtime_(mtime) {}

void TarWriter::add_file(std::string_view path, std::string_view data, bool executable) {
  add_entry(path, '0', data, {}, executable ? 0755 : 0644);
}

void TarWriter::add_entry(std::string_view path, char typeflag, std::string_view data, std::string_view link, std::uint32_t mode) {
  std::string block(kBlock, '\0');
  // ustar stores long paths as prefix + "/" + name: split at the last '/' that fits both.
  std::string_view name = path, prefix;
  if (path.size() > kName.size) {
    std::size_t cut = path.rfind('/', kPrefix.size);
    while (cut != std::string_view::npos && path.size() - cut - 1 > kName.size) cut = std::string_view::npos;
    if (cut == std::string_view::npos || cut == 0) fail("tar: path too long for ustar: {}", excerpt(path));
    prefix = path.substr(0, cut);
    name = path.substr(cut + 1);
  }
  // std::copy, not memcpy: an empty string_view may hold a null pointer, which memcpy may not get.
  std::copy(name.begin(), name.end(), block.begin() + kName.offset);
  std::copy(prefix.begin(), prefix.end(), block.begin() + kPrefix.offset);
  if (link.size() > kLinkname.size) fail("tar: link target too long for ustar: {}", excerpt(link));
  std::copy(link.begin(), link.end(), block.begin() + kLinkname.offset);
  put_octal(block, kMode, mode);
  put_octal(block, kUid, 0);
  put_octal(block, kGid, 0);
  put_octal(block, kSize, data.size());
  put_octal(block, kMtime, mtime_);
  block[kTypeflag] = typeflag;
  std::memcpy(block.data() + kMagic.offset, "ustar", 6);
  std::memcpy(block.data() + kVersion.offset, "00", 2);
  std::memset(block.data() + kChecksum.offset, ' ', kChecksum.size);
  std::uint64_t sum = 0;
  for (char c : block) sum += static_cast<unsigned char>(c);
  const std::string checksum = fmt::format("{:06o}", sum);
  std::memcpy(block.data() + kChecksum.offset, checksum.data(), 6);
  block[kChecksum.offset + 6] = '\0';
  out_ += block;
  out_ += data;
  out_.append((kBlock - data.size() % kBlock) % kBlock, '\0');
}

std::string TarWriter::finish() {
  out_.append(2 * kBlock, '\0');
  return std::move(out_);
}

std::optional<std::string> unsafe_path_reason(std::string_view path) {
  if (path.empty()) return "empty path";
  if (path.find('\0') != std::string_view::npos) return "NUL byte in path";
  if (path.front() == '/') return "absolute path";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (path.substr(start, end - start) == "..") return "path leaves the tree ('..')";
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace minitx
