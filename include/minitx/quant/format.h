// The storage formats a weight tensor can have, with the sizes that follow from them. Format ids
// are written into quantized model files: never renumber one, only add.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace minitx::quant {

enum class Format : std::uint32_t { f32 = 0, q8_0 = 1, q4_0 = 2 };

struct FormatInfo {
  Format format;
  std::string_view name;    // "f32", "q8_0", "q4_0"
  std::size_t block_elems;  // 1 for f32
  std::size_t block_bytes;
};

const FormatInfo& format_info(Format format);
inline std::string_view format_name(Format format) { return format_info(format).name; }
std::optional<Format> format_from_id(std::uint32_t id);
std::optional<Format> format_from_name(std::string_view name);

// Bytes of one row of `cols` weights; throws when cols is not a whole number of blocks.
std::size_t row_bytes(Format format, std::size_t cols);
// Storage bits per weight: 32, 8.5, 4.5.
double bits_per_weight(Format format);

}  // namespace minitx::quant
