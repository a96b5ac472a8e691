// Where position p's key and value rows sit in a KV cache: row p, or in a ring cache (patterns
// whose queries read a bounded span: local, sinks) the first `fixed` positions at their own rows
// and each later one at fixed + (p - fixed) % ring, overwriting the position `ring` before it.
// One definition for the CPU cache (size_t) and the GPU's prefill and step kernels (uint32: a
// 64-bit remainder per key would cost the decode kernel a division subroutine).
#pragma once
#include "minitx/core/host_device.h"

namespace minitx {

template <class I>
struct BasicKvSlots {
  I fixed = static_cast<I>(~I{0}), ring = 1;  // fixed = all ones: no ring, row p
  MINITX_HD I operator()(I p) const { return p < fixed ? p : fixed + (p - fixed) % ring; }
  MINITX_HD bool is_ring() const { return fixed != static_cast<I>(~I{0}); }
  // Rows the cache needs for `positions` positions.
  MINITX_HD I rows(I positions) const { return is_ring() && fixed + ring < positions ? fixed + ring : positions; }
};

}  // namespace minitx
