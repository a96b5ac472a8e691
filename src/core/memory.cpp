#include "minitx/core/memory.h"

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "minitx/core/error.h"

namespace minitx {
namespace {

// The first whole number in a small file such as memory.max; nullopt for "max", a missing file
// or anything else.
std::optional<std::uint64_t> read_number(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The value of `key` in a memory.stat file ("file 123" lines); 0 when absent.
std::uint64_t stat_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string name;
  std::uint64_t value = 0;
  while (in >> name >> value)
    if (name == key) return value;
  return 0;
}

}  // namespace

// A container's limit matters because /proc/meminfo shows the host's memory, which can be far
// more than this process may use. The group's page cache counts as free, as MemAvailable counts
// the host's: the kernel drops it before failing an allocation, and refusing something that
// would have fitted is worse than not checking.
std::optional<std::uint64_t> detail::cgroup_room(const std::string& cgroup_lines, const std::string& root) {
  std::istringstream in(cgroup_lines);
  std::string line;
  std::optional<std::uint64_t> room;
  while (std::getline(in, line)) {
    // "0::/path" (v2) or "N:memory:/path" (v1); other controllers are no business of ours.
    const std::size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    std::optional<std::uint64_t> limit, used;
    std::uint64_t cache = 0;
    if (controllers.empty()) {
      const std::string dir = root + path;
      limit = read_number(dir + "/memory.max");
      used = read_number(dir + "/memory.current");
      cache = stat_value(dir + "/memory.stat", "file");
    } else if (controllers == "memory") {
      const std::string dir = root + "/memory" + path;
      limit = read_number(dir + "/memory.limit_in_bytes");
      used = read_number(dir + "/memory.usage_in_bytes");
      cache = stat_value(dir + "/memory.stat", "total_cache");
    }
    if (!limit || !used) continue;
    const std::uint64_t taken = *used - std::min(*used, cache);
    const std::uint64_t left = taken < *limit ? *limit - taken : 0;
    room = room ? std::min(*room, left) : left;
  }
  return room;
}

std::optional<std::uint64_t> available_memory() {
  std::optional<std::uint64_t> available;
  if (std::FILE* file = std::fopen("/proc/meminfo", "re")) {
    char line[256];
    unsigned long long kib = 0, mem = 0, swap = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, file) != nullptr) {
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) mem = kib, found = true;
      else if (std::sscanf(line, "SwapFree: %llu kB", &kib) == 1) swap = kib;
    }
    std::fclose(file);
    if (found) available = (mem + swap) * 1024;
  }
  if (!available) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) available = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  }
  std::ifstream cgroup("/proc/self/cgroup");
  const std::string lines((std::istreambuf_iterator<char>(cgroup)), std::istreambuf_iterator<char>());
  if (const auto room = detail::cgroup_room(lines, "/sys/fs/cgroup")) available = available ? std::min(*available, *room) : *room;
  return available;
}

std::string format_bytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f} bytes", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::size_t unit = 0;
  bytes /= 1024;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) bytes /= 1024, ++unit;
  return fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

void set_allocation_policy() {
#if defined(__GLIBC__)
  // Setting either threshold also turns off glibc's adjustment of both.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

void fail_allocation(std::string_view what, double bytes) {
  const auto available = available_memory();
  if (!available) fail("{} ({}): out of memory", what, format_bytes(bytes));
  fail("{} ({}): out of memory ({} available)", what, format_bytes(bytes),
       format_bytes(static_cast<double>(*available)));
}

void check_available(std::string_view what, double bytes) {
  const auto available = available_memory();
  if (available && bytes > static_cast<double>(*available)) fail_allocation(what, bytes);
}

}  // namespace minitx
