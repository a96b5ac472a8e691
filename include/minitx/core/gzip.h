// gzip streams through zlib. Compression is deterministic: no name, no timestamp, fixed level,
// so the same bytes in give the same bytes out (what `gzip -n -9` does).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace minitx {

std::string gzip_compress(std::string_view data);
// Decompresses a whole gzip member; `what` names the input in errors (truncated or corrupt
// data, trailing garbage, output over `max_bytes`).
std::string gzip_decompress(std::string_view data, std::string_view what, std::uint64_t max_bytes = 4ull << 30);

}  // namespace minitx
