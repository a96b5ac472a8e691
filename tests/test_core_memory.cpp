// Named allocations (core/memory.h): a buffer that cannot be had is an Error naming what it was
// for and its size, never a bare std::bad_alloc and never a process killed half way.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <new>
#include <vector>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"

using namespace minitx;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// MemTotal + SwapTotal of /proc/meminfo, in bytes: more than anything could be available.
std::uint64_t memory_and_swap() {
  std::FILE* file = std::fopen("/proc/meminfo", "r");
  REQUIRE(file != nullptr);
  char line[256];
  unsigned long long kib = 0, total = 0;
  while (std::fgets(line, sizeof line, file) != nullptr)
    if (std::sscanf(line, "MemTotal: %llu kB", &kib) == 1 || std::sscanf(line, "SwapTotal: %llu kB", &kib) == 1)
      total += kib;
  std::fclose(file);
  return total * 1024;
}

}  // namespace

TEST_CASE("memory: sizes read as a person would write them") {
  CHECK(format_bytes(0) == "0 bytes");
  CHECK(format_bytes(1023) == "1023 bytes");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(64.0 * 1024 * 1024) == "64.0 MiB");
  CHECK(format_bytes(12.3 * 1024 * 1024 * 1024) == "12.3 GiB");
  CHECK(format_bytes(std::ldexp(1.0, 70)) == "1024.0 EiB");  // past the last unit, the number grows
}

TEST_CASE("memory: what is available is known, above zero and within the machine's memory and swap") {
  const auto available = available_memory();
  REQUIRE(available.has_value());
  CHECK(*available > 0);
  CHECK(*available <= memory_and_swap());
}

TEST_CASE("memory: a buffer larger than what is available is refused by name before it is tried") {
  bool tried = false;
  CHECK_ERROR_CONTAINS(allocating("the test's buffer", std::ldexp(1.0, 62),
                                  [&] {
                                    tried = true;
                                    return 0;
                                  }),
                       "the test's buffer (4.0 EiB): out of memory (");
  CHECK_FALSE(tried);
  // 2^61 floats: more than any machine has, and under AddressSanitizer more than its allocator
  // accepts (which would stop the process rather than throw), so this must never reach it.
  CHECK_ERROR_CONTAINS(zeros<float>(std::size_t{1} << 61, "the absurd buffer"),
                       "the absurd buffer (8.0 EiB): out of memory");
}

TEST_CASE("memory: an allocation that fails inside is named, and one that succeeds is returned as it is") {
  CHECK_ERROR_CONTAINS(allocating("the KV cache", 2048, []() -> int { throw std::bad_alloc(); }),
                       "the KV cache (2.0 KiB): out of memory");
  std::vector<float> v;
  CHECK_ERROR_CONTAINS(allocating("the logits", 4096, [&] { v.resize(v.max_size() + 1); }),
                       "the logits (4.0 KiB): out of memory");
  CHECK(allocating("a number", 4, [] { return 7; }) == 7);
  CHECK(zeros<int>(3, "three ints") == std::vector<int>{0, 0, 0});
}

// AddressSanitizer's allocator reports an impossible size and stops the process instead of
// throwing std::bad_alloc, so this one runs in the builds without it.
TEST_CASE("memory: the allocator's own failure becomes the named error" * doctest::skip(kAddressSanitizer)) {
  // The size given is small, so that the check before the allocation lets it through to the
  // allocator, which cannot map a petabyte.
  CHECK_ERROR_CONTAINS(allocating("a petabyte", 1024,
                                  [] { return std::make_unique<char[]>(std::size_t{1} << 50); }),
                       "a petabyte (1.0 KiB): out of memory");
}

TEST_CASE("memory: a cgroup's limit (v2 or v1) bounds what is available, its page cache counted as free") {
  TempDir root;
  const auto put = [&](const std::string& path, const std::string& text) {
    fs::create_directories((root.path() / path).parent_path());
    write_file_atomic(root.path() / path, text);
  };
  const std::string r = root.path().string();
  // v2: 1,000,000 allowed, 600,000 used of which 200,000 is page cache.
  put("grp/memory.max", "1000000\n");
  put("grp/memory.current", "600000\n");
  put("grp/memory.stat", "anon 400000\nfile 200000\n");
  CHECK(detail::cgroup_room("0::/grp\n", r) == std::uint64_t{600000});
  put("open/memory.max", "max\n");
  put("open/memory.current", "600000\n");
  CHECK_FALSE(detail::cgroup_room("0::/open\n", r).has_value());
  // v1's memory controller, beside others that are no concern; over its limit, nothing is left.
  put("memory/old/memory.limit_in_bytes", "500000\n");
  put("memory/old/memory.usage_in_bytes", "700000\n");
  put("memory/old/memory.stat", "cache 9\ntotal_cache 100000\n");
  CHECK(detail::cgroup_room("4:cpu,cpuacct:/old\n3:memory:/old\n", r) == std::uint64_t{0});
  put("memory/old/memory.usage_in_bytes", "300000\n");
  CHECK(detail::cgroup_room("3:memory:/old\n", r) == std::uint64_t{300000});
  // Both: the tighter wins. No group at all, or files that are not there: no limit.
  CHECK(detail::cgroup_room("3:memory:/old\n0::/grp\n", r) == std::uint64_t{300000});
  CHECK_FALSE(detail::cgroup_room("", r).has_value());
  CHECK_FALSE(detail::cgroup_room("0::/missing\n", r).has_value());
}
