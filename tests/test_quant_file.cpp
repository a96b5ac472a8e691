#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/quant/file.h"
#include "quant_samples.h"

using namespace minitx::quant;
using namespace minitx::quant::testing;

namespace {

QuantFile sample() {
  std::vector<float> a(64 * 96), b(96), c(3 * 2 * 32);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.1f * gaussian(51, i);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = uniform(52, i);
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = uniform(53, i);
  QuantFile f;
  f.metadata = "[model]\nn_layer = 2\n";
  f.tensors.push_back(quantize_tensor("h.0.attn.w", {64, 96}, a, Format::q4_0));
  f.tensors.push_back(quantize_tensor("h.0.ln.b", {96}, b, Format::f32));
  f.tensors.push_back(quantize_tensor("wte", {3, 2, 32}, c, Format::q8_0));
  return f;
}

// Recomputes the checksum after a test edits the table, so that the reader gets past it and
// meets the edit itself, as with a file from a buggy or newer writer.
void reseal(std::string& bytes) {
  const std::string digest = minitx::sha256_hex(std::string_view(bytes).substr(qfile::kHeaderBytes));
  for (std::size_t i = 0; i < 32; ++i)
    bytes[qfile::kChecksumOffset + i] = static_cast<char>(std::stoi(digest.substr(2 * i, 2), nullptr, 16));
}

// The table offset of the field that follows the name of tensor `name`.
std::size_t after_name(const std::string& bytes, const std::string& name) {
  const std::size_t at = bytes.find(name, qfile::kHeaderBytes);
  REQUIRE(at != std::string::npos);
  return at + name.size();
}

template <class T>
void poke(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

}  // namespace

TEST_CASE("quant file: save and load give back every tensor, byte for byte") {
  const QuantFile f = sample();
  minitx::TempDir dir("minitx-test");
  const auto path = dir.path() / "model.q4";
  write_quant_file(path, f);
  const QuantFile g = read_quant_file(path);
  CHECK(g.metadata == f.metadata);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    CHECK(g.tensors[i].name == f.tensors[i].name);
    CHECK(g.tensors[i].format == f.tensors[i].format);
    CHECK(g.tensors[i].shape == f.tensors[i].shape);
    CHECK(g.tensors[i].data == f.tensors[i].data);
  }
  CHECK(g.get("wte").rows() == 6);
  CHECK(g.find("nope") == nullptr);
  CHECK_THROWS_WITH(g.get("nope"), doctest::Contains("no tensor named 'nope'"));
  // Deterministic, and the file is the encoding exactly.
  CHECK(minitx::read_file(path) == encode_quant_file(f));
  CHECK(encode_quant_file(g) == encode_quant_file(f));
}

TEST_CASE("quant file: every byte is counted, at the advertised bits per weight") {
  const QuantFile f = sample();
  const std::string bytes = encode_quant_file(f);
  CHECK(f.tensors[0].data.size() == 64 * 96 / 32 * 18);  // 4.5 bits per weight
  CHECK(f.tensors[2].data.size() == 6 * 34);              // 8.5 bits per weight
  CHECK(bits_per_weight(Format::q4_0) == 4.5);
  CHECK(bits_per_weight(Format::q8_0) == 8.5);
  CHECK(bytes.size() % 64 != 0);  // no trailing padding after the last tensor
  CHECK(bytes.size() < qfile::kHeaderBytes + 256 + f.payload_bytes() + 3 * 64);
}

TEST_CASE("quant file: damaged files are clear errors") {
  const std::string good = encode_quant_file(sample());

  SUBCASE("truncated anywhere") {
    for (std::size_t size : {std::size_t{0}, std::size_t{7}, std::size_t{40}, std::size_t{64}, std::size_t{100},
                             good.size() / 2, good.size() - 1})
      CHECK_THROWS_WITH(decode_quant_file(good.substr(0, size), "m.q"), doctest::Contains("m.q: truncated"));
  }
  SUBCASE("bytes after the end") {
    CHECK_THROWS_WITH(decode_quant_file(good + "x", "m.q"), doctest::Contains("m.q: 1 bytes follow the end"));
  }
  SUBCASE("wrong magic") {
    std::string bad = good;
    bad[0] = 'X';
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: not a minitx quantized model"));
    CHECK_THROWS_WITH(decode_quant_file("PK\x03\x04 a zip file, say", "m.q"), doctest::Contains("not a minitx quantized model"));
  }
  SUBCASE("unsupported version") {
    std::string bad = good;
    poke<std::uint32_t>(bad, 8, 2);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: format version 2, this build reads version 1"));
  }
  SUBCASE("a flipped bit in the payload") {
    std::string bad = good;
    bad[bad.size() - 5] ^= 0x10;
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: checksum mismatch"));
  }
  SUBCASE("unknown format id") {
    std::string bad = good;
    poke<std::uint32_t>(bad, after_name(bad, "h.0.ln.b"), 7);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: tensor 'h.0.ln.b': unknown format id 7"));
  }
  SUBCASE("a block count that does not match the shape") {
    // Claim 65 rows for the 64-row q4_0 matrix: the 192 blocks stored are not the 195 needed.
    std::string bad = good;
    poke<std::uint64_t>(bad, after_name(bad, "h.0.attn.w") + 8, 65);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"),
                      doctest::Contains("m.q: tensor 'h.0.attn.w': 3456 bytes (192 q4_0 blocks of 18 bytes) do not match shape [65, 96], which needs 195 blocks"));
  }
  SUBCASE("a row that is not a whole number of blocks") {
    std::string bad = good;
    poke<std::uint64_t>(bad, after_name(bad, "wte") + 8 + 16, 33);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: tensor 'wte': q8_0 rows need a multiple of 32 values"));
  }
  SUBCASE("an offset outside the payload") {
    std::string bad = good;
    // wte: name, format, rank, 3 dims, then its offset.
    poke<std::uint64_t>(bad, after_name(bad, "wte") + 8 + 24, std::uint64_t{1} << 40);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: tensor 'wte': offset 1099511627776, expected"));
  }
  SUBCASE("a rank of zero") {
    std::string bad = good;
    poke<std::uint32_t>(bad, after_name(bad, "h.0.ln.b") + 4, 0);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: tensor 'h.0.ln.b': rank 0 is outside 1 to 4"));
  }
  SUBCASE("a tensor count beyond the table") {
    std::string bad = good;
    poke<std::uint32_t>(bad, 12, 1000);
    reseal(bad);
    CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: the header counts 1000 tensors, the table holds 3"));
  }
  SUBCASE("every header field is bound to the checksummed table and payload") {
    // The checksum covers the table and the payload; the header's fields are each checked
    // against them, so no change to one goes unnoticed (issue 14: headers covered).
    for (std::size_t byte = 8; byte < 32; ++byte)
      for (const int bit : {0x01, 0x10, 0x80}) {
        CAPTURE(byte);
        CAPTURE(bit);
        std::string bad = good;
        bad[byte] = static_cast<char>(bad[byte] ^ bit);
        CHECK_THROWS_WITH(decode_quant_file(bad, "m.q"), doctest::Contains("m.q: "));
      }
    // The one change the checksum cannot see: the table made 64 bytes longer at the payload's expense.
    std::uint64_t table = 0, payload = 0;
    std::memcpy(&table, good.data() + 16, 8);
    std::memcpy(&payload, good.data() + 24, 8);
    std::string moved = good;
    poke<std::uint64_t>(moved, 16, table + 64);
    poke<std::uint64_t>(moved, 24, payload - 64);
    CHECK_THROWS_WITH(decode_quant_file(moved, "m.q"), doctest::Contains("m.q: "));
    poke<std::uint64_t>(moved, 16, table - 64);
    poke<std::uint64_t>(moved, 24, payload + 64);
    CHECK_THROWS_WITH(decode_quant_file(moved, "m.q"), doctest::Contains("m.q: "));
  }
  SUBCASE("a missing file names the path") {
    CHECK_THROWS_WITH(read_quant_file("/nonexistent/model.q4"), doctest::Contains("/nonexistent/model.q4"));
  }
}

TEST_CASE("quant file: the writer refuses what the reader would refuse") {
  QuantFile f = sample();
  f.tensors.push_back(f.tensors[1]);
  CHECK_THROWS_WITH(encode_quant_file(f), doctest::Contains("two tensors are named 'h.0.ln.b'"));
  f = sample();
  f.tensors[0].data.pop_back();
  CHECK_THROWS_WITH(encode_quant_file(f), doctest::Contains("h.0.attn.w: holds 3455 bytes"));
  f = sample();
  f.tensors[0].name = "has space";
  CHECK_THROWS_WITH(encode_quant_file(f), doctest::Contains("printable ASCII"));
  CHECK_THROWS_WITH(quantize_tensor("w", {2, 32}, std::vector<float>(63), Format::q8_0),
                    doctest::Contains("w: expected 64 values for its shape, got 63"));
  std::vector<float> inf(64, 1.0f);
  inf[5] = 1.0f / 0.0f;
  CHECK_THROWS_WITH(quantize_tensor("w", {2, 32}, inf, Format::q4_0), doctest::Contains("w: value inf at index 5 cannot be stored as q4_0"));
}

TEST_CASE("quant file: any truncation or any corrupted table byte is an Error, never a crash") {
  // Under the debug build's AddressSanitizer this also shows that no read leaves the buffer.
  const std::string good = encode_quant_file(sample());
  for (std::size_t size = 0; size < good.size(); ++size)
    REQUIRE_THROWS_AS(decode_quant_file(good.substr(0, size), "m.q"), minitx::Error);
  std::uint64_t table_bytes;
  std::memcpy(&table_bytes, good.data() + 16, sizeof table_bytes);
  for (std::size_t at = qfile::kHeaderBytes; at < qfile::kHeaderBytes + table_bytes; ++at)
    for (int value : {0x00, 0x01, 0x7F, 0xFF}) {
      std::string bad = good;
      bad[at] = static_cast<char>(value);
      reseal(bad);
      CAPTURE(at);
      try {
        (void)decode_quant_file(bad, "m.q");  // some edits are harmless (a name's letter)
      } catch (const minitx::Error&) {
      }
    }
}
