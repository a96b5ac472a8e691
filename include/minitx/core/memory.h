// Memory: how much the machine has left, and big allocations that fail with a message naming
// what was being allocated and how many bytes, instead of a bare std::bad_alloc.
//
// Linux overcommits: an allocation larger than what is left usually succeeds, and the process is
// killed (no message, outputs half written) when it touches the pages. So an allocation of
// kCheckedAllocation bytes or more is compared with available_memory() before it is tried, and
// one that does fail (a `ulimit -v`, a size past what the allocator can map) is caught and named.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minitx {

// Bytes this process can still take without swapping others out or being killed: MemAvailable
// plus SwapFree of /proc/meminfo, or the room left under the process's cgroup memory limit
// (v1 or v2) where that is less. Unknown (nullopt) where none of them can be read.
std::optional<std::uint64_t> available_memory();

namespace detail {
// The room a cgroup memory limit leaves this process, from the text of /proc/self/cgroup and the
// cgroup file systems under `root` (/sys/fs/cgroup; v1's memory controller in root/memory);
// nullopt where no limit applies. Apart, so that tests can give it a file tree of their own.
std::optional<std::uint64_t> cgroup_room(const std::string& cgroup_lines, const std::string& root);
}  // namespace detail

// "512 bytes", "3.5 MiB", "12.3 GiB", "2.0 TiB".
std::string format_bytes(double bytes);

// Below this, allocations are tried without reading /proc first: the check would cost more than
// it could save.
inline constexpr double kCheckedAllocation = 64.0 * 1024 * 1024;

// "WHAT (12.3 GiB): out of memory (3.1 GiB available)". `bytes` is a double so that the size of
// an absurd request can be reported even where it overflows 64 bits.
[[noreturn]] void fail_allocation(std::string_view what, double bytes);
// Fails as above when `bytes` is more than available_memory() (nothing when that is unknown).
void check_available(std::string_view what, double bytes);

// Runs `allocate`, which allocates about `bytes` for `what` ("train: the activations of batch
// 8 × 1024"), and returns what it returns; an allocation failure inside becomes an Error naming
// `what` and the size. The one door for the big buffers: parameters, optimizer state,
// activations, KV caches, token buffers, whole files.
template <class F>
decltype(auto) allocating(std::string_view what, double bytes, F&& allocate) {
  if (bytes >= kCheckedAllocation) check_available(what, bytes);
  try {
    return std::forward<F>(allocate)();
  } catch (const std::bad_alloc&) {
    fail_allocation(what, bytes);
  } catch (const std::length_error&) {  // a vector longer than max_size(): no machine has that much
    fail_allocation(what, bytes);
  }
}

// The allocator's policy for big buffers, set once at the start of minitx's main. glibc serves
// a request of 128 KiB or more with a mapping of its own, unmapped again when freed, and raises
// that threshold (to at most 32 MiB) only when such a mapping is freed. So where parameters,
// activations and caches lived depended on what a command happened to free first: 934e95f read
// a checkpoint into a buffer grown by doubling, whose freed steps raised the threshold before
// the parameters were allocated, so they came from the heap; reading into one buffer of the
// file's size left them in a mapping of their own beside the file buffer's. On a guest with
// shadow page tables (PVM, as on the development VM), unmapping memory also drops the host's
// entries for the mappings near it: freeing the file buffer made the next touch of each page
// of the parameters cost about 5 µs (2.4 ms for the tied 2 MB head in the first prefill), and
// with the threshold left at 128 KiB every per-token buffer is mapped and unmapped again (2.5×
// the no-cache decode time in a trial). Fixed here: buffers up to 32 MiB (the most glibc
// allows) come from the heap and are reused, and the heap is trimmed only past 64 MiB free at
// its top (glibc's own 2× rule). A no-op without glibc.
// docs/results/2026-12-03-cpu-refactor-check.md, last section.
void set_allocation_policy();

// n value-initialised (zero) elements, through allocating().
template <class T>
std::vector<T> zeros(std::size_t n, std::string_view what) {
  return allocating(what, static_cast<double>(n) * sizeof(T), [n] { return std::vector<T>(n); });
}

}  // namespace minitx
