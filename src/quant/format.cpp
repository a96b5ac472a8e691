#include "minitx/quant/format.h"

#include <array>

#include "minitx/core/error.h"
#include "minitx/quant/block.h"

namespace minitx::quant {

namespace {
constexpr std::array<FormatInfo, 3> kFormats = {{
    {Format::f32, "f32", 1, 4},
    {Format::q8_0, "q8_0", QK, sizeof(block_q8_0)},
    {Format::q4_0, "q4_0", QK, sizeof(block_q4_0)},
}};
}  // namespace

const FormatInfo& format_info(Format format) {
  for (const FormatInfo& info : kFormats)
    if (info.format == format) return info;
  fail("quant: unknown format id {}", static_cast<std::uint32_t>(format));
}

std::optional<Format> format_from_id(std::uint32_t id) {
  for (const FormatInfo& info : kFormats)
    if (static_cast<std::uint32_t>(info.format) == id) return info.format;
  return std::nullopt;
}

std::optional<Format> format_from_name(std::string_view name) {
  for (const FormatInfo& info : kFormats)
    if (info.name == name) return info.format;
  return std::nullopt;
}

std::size_t row_bytes(Format format, std::size_t cols) {
  const FormatInfo& info = format_info(format);
  MINITX_CHECK(cols % info.block_elems == 0, "quant: a {} row needs a multiple of {} values, got {}", info.name,
               info.block_elems, cols);
  return cols / info.block_elems * info.block_bytes;
}

double bits_per_weight(Format format) {
  const FormatInfo& info = format_info(format);
  return 8.0 * static_cast<double>(info.block_bytes) / static_cast<double>(info.block_elems);
}

}  // namespace minitx::quant
