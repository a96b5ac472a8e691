// Unicode data for NFC normalization (see scripts/gen_nfc_tables.py). Every table is sorted by
// its first field, for binary search.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minitx::detail {

struct CombiningClassRange {
  char32_t lo, hi;
  std::uint8_t ccc;
};
struct Decomposition {
  char32_t cp;
  std::uint16_t offset, length;  // into kDecompositionPool
};
struct Composition {
  char32_t first, second, composite;
};

extern const CombiningClassRange kCombiningClasses[];
extern const std::size_t kCombiningClassCount;
extern const char32_t kDecompositionPool[];
extern const Decomposition kDecompositions[];
extern const std::size_t kDecompositionCount;
extern const Composition kCompositions[];
extern const std::size_t kCompositionCount;

}  // namespace minitx::detail
