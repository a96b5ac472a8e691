#include "minitx/core/gzip.h"

#include <zlib.h>

#include <algorithm>

#include "minitx/core/error.h"

namespace minitx {
namespace {
constexpr int kGzipWindow = 15 + 16;  // 15-bit window, gzip framing
constexpr std::size_t kChunk = 1 << 18;
}  // namespace

std::string gzip_compress(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, kGzipWindow, 9, Z_DEFAULT_STRATEGY) != Z_OK) fail("gzip: zlib initialisation failed");
  gz_header header{};  // all zero: no name, no comment, mtime 0
  header.os = 3;       // Unix, whatever the host, so the bytes do not depend on it
  deflateSetHeader(&z, &header);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  std::size_t remaining = data.size();
  int status = Z_OK;
  do {
    const auto feed = static_cast<uInt>(std::min<std::size_t>(remaining, 1u << 30));
    z.avail_in = feed;
    remaining -= feed;
    const int flush = remaining == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      const std::size_t old = out.size();
      out.resize(old + kChunk);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      z.avail_out = static_cast<uInt>(kChunk);
      status = deflate(&z, flush);
      out.resize(old + kChunk - z.avail_out);
    } while (z.avail_out == 0);
  } while (remaining > 0);
  deflateEnd(&z);
  if (status != Z_STREAM_END) fail("gzip: compression did not finish");
  return out;
}

std::string gzip_decompress(std::string_view data, std::string_view what, std::uint64_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindow) != Z_OK) fail("{}: zlib initialisation failed", what);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(data.size(), 1u << 31));
  std::size_t fed = z.avail_in;
  std::string out;
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (z.avail_in == 0 && fed < data.size()) {
      const auto feed = static_cast<uInt>(std::min<std::size_t>(data.size() - fed, 1u << 31));
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + fed));
      z.avail_in = feed;
      fed += feed;
    }
    // Never room for more than one byte past the limit: a stream that fills it is over the
    // limit, and the memory spent on a bomb stays bounded by the limit, not by the stream.
    const std::size_t old = out.size();
    const std::uint64_t left = max_bytes - old;
    const auto room = static_cast<std::size_t>(left >= kChunk ? kChunk : left + 1);
    out.resize(old + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z.avail_out = static_cast<uInt>(room);
    status = inflate(&z, Z_NO_FLUSH);
    out.resize(old + room - z.avail_out);
    if (status == Z_BUF_ERROR && z.avail_in == 0 && fed == data.size()) {
      inflateEnd(&z);
      fail("{}: gzip data is truncated", what);
    }
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
      const std::string message = z.msg != nullptr ? z.msg : "invalid data";
      inflateEnd(&z);
      fail("{}: not valid gzip data ({})", what, message);
    }
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      fail("{}: decompresses to more than {} bytes, the most it may hold; refusing it (corrupt, or a decompression bomb)",
           what, max_bytes);
    }
  }
  const std::size_t trailing = z.avail_in + (data.size() - fed);
  inflateEnd(&z);
  if (trailing != 0) fail("{}: {} bytes of trailing data after the gzip stream", what, trailing);
  return out;
}

}  // namespace minitx
