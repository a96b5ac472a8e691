#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/model/safetensors.h"
#include "minitx/quant/fp16.h"

using namespace minitx;

namespace {

std::string le64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}

// A file as the format lays it out: length, header, data.
std::string st_bytes(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string out;
  for (const float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

std::string u16_bytes(const std::vector<std::uint16_t>& values) {
  std::string out;
  for (const std::uint16_t v : values) {
    out.push_back(static_cast<char>(v & 0xFF));
    out.push_back(static_cast<char>(v >> 8));
  }
  return out;
}

std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

// Plain writes: crafted files need no atomicity, and the fuzz test makes hundreds of them.
void write_raw(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Writes `bytes` as a new file of `dir` and returns its path.
fs::path put(const TempDir& dir, const std::string& bytes) {
  static int serial = 0;
  const fs::path path = dir.path() / fmt::format("f{}.safetensors", serial++);
  write_raw(path, bytes);
  return path;
}

// One tensor "w", F32 [2, 3], filling a 24-byte data area.
const std::string kGoodHeader = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
const std::string kGoodData(24, '\x01');

}  // namespace

TEST_CASE("safetensors: write then read gives back every bit, shape and metadata") {
  TempDir dir;
  const float nan_payload = std::bit_cast<float>(0x7FC12345u);
  const std::vector<float> a = {1.5f, -0.0f, std::numeric_limits<float>::infinity(), nan_payload, 0x1p-149f, -3.25e38f};
  const std::vector<float> scalar = {42.0f};
  const std::vector<float> b(3 * 5, 0.0f);
  std::vector<float> c(3 * 5);
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<float>(i) * 0.1f - 0.7f;
  const std::vector<SafeTensorOut> tensors = {
      {"zeta.weight", {3, 5}, c.data()},
      {"alpha", {2, 3}, a.data()},
      {"empty", {0, 4}, nullptr},
      {"scalar", {}, scalar.data()},
      {"beta", {15}, b.data()},
  };
  const fs::path path = dir.path() / "model.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "quote \" and ünïcode"}});

  const SafetensorsFile f(path);
  std::vector<std::string> names;
  for (const SafeTensorInfo& t : f.tensors()) names.push_back(t.name);
  CHECK(names == std::vector<std::string>{"alpha", "beta", "empty", "scalar", "zeta.weight"});
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "quote \" and ünïcode"}});
  for (const SafeTensorOut& t : tensors) {
    const SafeTensorInfo& info = f.tensor(t.name);
    CHECK(info.dtype == SafeDtype::f32);
    CHECK(info.shape == t.shape);
    const std::vector<float> got = f.read_f32(t.name);
    REQUIRE(got.size() == info.numel());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(bits(got[i]) == bits(t.data[i]));
  }
  CHECK(f.tensor("scalar").numel() == 1);
  CHECK(f.tensor("empty").numel() == 0);
  CHECK(f.find("nope") == nullptr);
  CHECK_ERROR_CONTAINS(f.tensor("nope"), path.string() + ": no tensor named \"nope\"");
  std::vector<float> wrong(5);
  CHECK_ERROR_CONTAINS(f.read_f32("alpha", wrong), "tensor \"alpha\" has 6 elements, the destination 5");
}

TEST_CASE("safetensors: the writer's bytes are the format exactly: sorted keys, space padding to 8") {
  TempDir dir;
  const std::vector<float> a = {1.0f, -0.0f}, b = {2.0f};
  const std::vector<SafeTensorOut> tensors = {{"b", {1}, b.data()}, {"a", {2}, a.data()}};
  const fs::path path = dir.path() / "x.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}});
  std::string header = R"({"__metadata__":{"format":"pt"},)"
                       R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  REQUIRE(header.size() % 8 != 0);  // so that the padding is exercised
  header.append(8 - header.size() % 8, ' ');
  CHECK(read_file(path) == le64(header.size()) + header + f32_bytes({1.0f, -0.0f, 2.0f}));
  // Without tensors or metadata the header is "{}" and six spaces.
  write_safetensors(path, std::vector<SafeTensorOut>{});
  CHECK(read_file(path) == le64(8) + "{}      ");
  CHECK(SafetensorsFile(path).tensors().empty());
}

TEST_CASE("safetensors: the writer refuses bad tensors and leaves no file behind") {
  TempDir dir;
  const std::vector<float> a = {1.0f, 2.0f};
  const fs::path path = dir.path() / "x.safetensors";
  CHECK_ERROR_CONTAINS(write_safetensors(path, std::vector<SafeTensorOut>{{"a", {2}, a.data()}, {"a", {1}, a.data()}}),
                       "tensor \"a\" is given twice");
  CHECK_ERROR_CONTAINS(write_safetensors(path, std::vector<SafeTensorOut>{{"", {2}, a.data()}}), "cannot name a tensor");
  CHECK_ERROR_CONTAINS(write_safetensors(path, std::vector<SafeTensorOut>{{"__metadata__", {2}, a.data()}}),
                       "cannot name a tensor");
  CHECK_ERROR_CONTAINS(write_safetensors(path, std::vector<SafeTensorOut>{{"a", {2}, nullptr}}), "has no data");
  CHECK_ERROR_CONTAINS(
      write_safetensors(path, std::vector<SafeTensorOut>{{"a", {std::uint64_t{1} << 62, 8}, a.data()}}),
      "more than 2^64 elements");
  CHECK_ERROR_CONTAINS(write_safetensors(path, std::vector<SafeTensorOut>{{"bad\xff", {2}, a.data()}}),
                       "is not valid UTF-8");
  CHECK(fs::is_empty(dir.path()));
  // A failed rewrite keeps the previous file whole.
  write_safetensors(path, std::vector<SafeTensorOut>{{"a", {2}, a.data()}});
  const std::string before = read_file(path);
  CHECK_THROWS_AS(write_safetensors(path, std::vector<SafeTensorOut>{{"a", {2}, nullptr}}), Error);
  CHECK(read_file(path) == before);
}

TEST_CASE("safetensors: F16 and BF16 convert to f32 exactly") {
  TempDir dir;
  const std::vector<std::uint16_t> f16 = {0x0000, 0x8000, 0x3C00, 0xC000, 0x0001, 0x8001, 0x03FF, 0x0400,
                                          0x7BFF, 0x7C00, 0xFC00, 0x3555, 0x7E00};
  const std::vector<std::uint32_t> f16_expected = {
      0x00000000,                    // +0
      0x80000000,                    // -0
      bits(1.0f),      bits(-2.0f),  //
      bits(0x1p-24f),                // smallest subnormal
      bits(-0x1p-24f),               //
      bits(1023 * 0x1p-24f),         // largest subnormal
      bits(0x1p-14f),                // smallest normal
      bits(65504.0f),                // largest finite
      0x7F800000,      0xFF800000,   // ±inf
      bits(0.333251953125f),         // 0x3555 = 1.0101010101b × 2^-2
      0x7FC00000,                    // the canonical NaN
  };
  const std::vector<std::uint16_t> bf16 = {0x0000, 0x8000, 0x3F80, 0xC040, 0x4049, 0x0001, 0x7F7F, 0x7F80, 0xFF80, 0x7FC1};
  std::string data = u16_bytes(f16) + u16_bytes(bf16);
  const std::string header = fmt::format(
      R"({{"h":{{"dtype":"F16","shape":[{}],"data_offsets":[0,{}]}},"b":{{"dtype":"BF16","shape":[{}],"data_offsets":[{},{}]}}}})",
      f16.size(), 2 * f16.size(), bf16.size(), 2 * f16.size(), data.size());
  const SafetensorsFile f(put(dir, st_bytes(header, data)));
  CHECK(f.tensor("h").dtype == SafeDtype::f16);
  CHECK(f.tensor("b").dtype == SafeDtype::bf16);
  const std::vector<float> h = f.read_f32("h");
  REQUIRE(h.size() == f16.size());
  for (std::size_t i = 0; i < h.size(); ++i) CHECK_MESSAGE(bits(h[i]) == f16_expected[i], "f16 0x" << std::hex << f16[i]);
  CHECK(h[4] == 5.9604644775390625e-8f);
  CHECK(h[11] == 0.333251953125f);

  // BF16 is the top half of an f32: the conversion is a shift, whatever the value.
  const std::vector<float> b = f.read_f32("b");
  REQUIRE(b.size() == bf16.size());
  for (std::size_t i = 0; i < b.size(); ++i) CHECK(bits(b[i]) == std::uint32_t{bf16[i]} << 16);
  CHECK(b[2] == 1.0f);
  CHECK(b[3] == -3.0f);
  CHECK(b[4] == 3.140625f);
  CHECK(std::signbit(b[1]));
  CHECK(b[5] == 0x1p-133f);  // an f32 subnormal
  CHECK(std::isinf(b[7]));
  CHECK(std::isnan(b[9]));
}

TEST_CASE("safetensors: a long F16 tensor converts across read slices") {
  TempDir dir;
  const std::size_t n = 70000;  // more than one slice of the reader
  std::vector<std::uint16_t> halves(n);
  for (std::size_t i = 0; i < n; ++i) halves[i] = static_cast<std::uint16_t>(i * 7919);
  const std::string header =
      fmt::format(R"({{"x":{{"dtype":"F16","shape":[{},2],"data_offsets":[0,{}]}}}})", n / 2, 2 * n);
  const SafetensorsFile f(put(dir, st_bytes(header, u16_bytes(halves))));
  const std::vector<float> x = f.read_f32("x");
  REQUIRE(x.size() == n);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < n; ++i) mismatches += bits(x[i]) != bits(quant::fp16_to_fp32_ref(halves[i]));
  CHECK(mismatches == 0);
}

TEST_CASE("safetensors: the smallest valid files open") {
  TempDir dir;
  CHECK(SafetensorsFile(put(dir, st_bytes("{}"))).tensors().empty());
  CHECK(SafetensorsFile(put(dir, st_bytes("{}      "))).tensors().empty());
  CHECK(SafetensorsFile(put(dir, st_bytes(" {\"__metadata__\":{}} "))).metadata().empty());
  const SafetensorsFile zero(put(dir, st_bytes(R"({"z":{"dtype":"F16","shape":[3,0],"data_offsets":[0,0]},)"
                                                R"("y":{"dtype":"BF16","shape":[0],"data_offsets":[0,0]}})")));
  CHECK(zero.read_f32("z").empty());
  CHECK(zero.tensor("z").shape == std::vector<std::uint64_t>{3, 0});
  CHECK(SafetensorsFile(put(dir, st_bytes(kGoodHeader, kGoodData))).read_f32("w").size() == 6);
}

TEST_CASE("safetensors: malformed files are refused with an error naming the file and the fault") {
  TempDir dir;
  const auto refused = [&](const std::string& bytes, const std::string& needle, SafetensorsOptions options = {}) {
    const fs::path path = put(dir, bytes);
    CHECK_ERROR_CONTAINS(SafetensorsFile(path, options), path.string() + ": ");
    CHECK_ERROR_CONTAINS(SafetensorsFile(path, options), needle);
  };
  const auto one = [](const std::string& entry) { return fmt::format(R"({{"w":{}}})", entry); };

  SUBCASE("truncated") {
    refused("", "0 bytes is too short for a safetensors file");
    refused(std::string("\x10\0\0", 3), "3 bytes is too short");
    refused(st_bytes(kGoodHeader, kGoodData.substr(0, 20)), "tensor \"w\": data_offsets [0, 24] run past the data area of 20 bytes");
    refused(st_bytes(kGoodHeader).substr(0, 40), "header length 57 runs past the end of the file (32 bytes after the length)");
  }
  SUBCASE("header length") {
    refused(le64(1000) + "{}", "header length 1000 runs past the end of the file");
    refused(le64(~std::uint64_t{0}) + "{}", "header length 18446744073709551615 exceeds the limit of 100000000 bytes");
    refused(le64(1) + "{", "header length 1 is too short for a JSON object");
    refused(le64(0), "header length 0 is too short");
  }
  SUBCASE("header JSON") {
    refused(st_bytes("{not json}"), "header: not valid JSON");
    refused(st_bytes(R"({"w":{"dtype":"F32",)"), "header: not valid JSON");
    refused(st_bytes("{\"w\xff\":1}"), "header: not valid JSON");
    refused(st_bytes("[1,2]"), "header is an array, expected a JSON object");
    refused(st_bytes("\"text\""), "header is the string \"text\", expected a JSON object");
    refused(st_bytes(std::string(100, '[') + std::string(100, ']')), "nested deeper than 64 levels");
    refused(st_bytes(R"({"__metadata__":[1]})"), "\"__metadata__\" is an array, expected an object of strings");
    refused(st_bytes(R"({"__metadata__":{"k":1}})"), "__metadata__ \"k\" is the number 1, expected a string");
  }
  SUBCASE("duplicate keys, which a JSON parser would quietly merge") {
    refused(st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     std::string(8, '\0')),
            "duplicate key \"w\"");
    refused(st_bytes(one(R"({"dtype":"F32","dtype":"F16","shape":[0],"data_offsets":[0,0]})")), "duplicate key \"dtype\"");
  }
  SUBCASE("tensor entries") {
    refused(st_bytes(one("[1]")), "tensor \"w\" is an array, expected an object with dtype, shape and data_offsets");
    refused(st_bytes(one(R"({"shape":[1],"data_offsets":[0,4]})"), "abcd"), "tensor \"w\": \"dtype\" is missing");
    refused(st_bytes(one(R"({"dtype":"F32","data_offsets":[0,4]})"), "abcd"), "tensor \"w\": \"shape\" is missing");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1]})"), "abcd"), "tensor \"w\": \"data_offsets\" is missing");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1})"), "abcd"),
            "tensor \"w\": unknown key \"extra\"");
    refused(st_bytes(R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"), "a tensor has an empty name");
  }
  SUBCASE("dtype") {
    refused(st_bytes(one(R"({"dtype":"I64","shape":[1],"data_offsets":[0,8]})"), "abcdefgh"),
            "tensor \"w\": dtype \"I64\" is not supported (expected F32, F16 or BF16)");
    refused(st_bytes(one(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})"), "abcd"), "dtype \"f32\" is not supported");
    refused(st_bytes(one(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})"), "abcd"),
            "\"dtype\" is the number 4, expected a string");
  }
  SUBCASE("shape against range") {
    refused(st_bytes(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})"), std::string(20, 'x')),
            "tensor \"w\": shape [2,3] of F32 needs 6 elements × 4 bytes, but data_offsets [0, 20] hold 20 bytes");
    refused(st_bytes(one(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]})"), std::string(24, 'x')),
            "needs 6 elements × 2 bytes, but data_offsets [0, 24] hold 24 bytes");
    refused(st_bytes(one(R"({"dtype":"F32","shape":"6","data_offsets":[0,24]})"), std::string(24, 'x')),
            "\"shape\" is the string \"6\", expected an array");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[6],"data_offsets":[0]})"), std::string(24, 'x')),
            "\"data_offsets\" is [0], expected [begin, end]");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[6],"data_offsets":[0,24,48]})"), std::string(24, 'x')),
            "expected [begin, end]");
  }
  SUBCASE("negative, fractional and overflowing numbers") {
    refused(st_bytes(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), "abcd"),
            "a shape entry holds the number -1, expected a non-negative integer");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})"), "abcd"),
            "a shape entry holds the number 1.0, expected a non-negative integer");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"), "abcd"),
            "data_offsets holds the number -4, expected a non-negative integer");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]})"), "abcd"),
            "expected a non-negative integer below 2^64");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[4294967296,4294967297],"data_offsets":[0,4]})"), "abcd"),
            "shape [4294967296,4294967297] has more than 2^64 elements");
    // 2^62 elements fit in 64 bits, their bytes do not.
    refused(st_bytes(one(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})")),
            "needs 4611686018427387904 elements × 4 bytes, but data_offsets [0, 0] hold 0 bytes");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})"), "abcd"),
            "data_offsets [0, 18446744073709551615] run past the data area of 4 bytes");
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})"), "abcd"),
            "data_offsets [4, 0] end before they begin");
  }
  SUBCASE("ranges: inside the data area, no overlap, no gap") {
    refused(st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), "abcd"),
            "data_offsets [4, 8] run past the data area of 4 bytes");
    refused(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     std::string(12, 'x')),
            "tensors \"a\" [0, 8] and \"b\" [4, 12] overlap in the data area");
    refused(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     std::string(8, 'x')),
            "tensors \"a\" [0, 8] and \"b\" [4, 8] overlap");
    const std::string gap = st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                     std::string(12, 'x'));
    refused(gap, "bytes [4, 8) of the data area belong to no tensor");
    const std::string trailing = st_bytes(kGoodHeader, kGoodData + "junk");
    refused(trailing, "the data area is 28 bytes but the tensors end at byte 24 (trailing bytes)");
    // allow_gaps accepts both, and still refuses overlaps.
    CHECK(SafetensorsFile(put(dir, gap), {.allow_gaps = true}).tensor("b").begin == 8);
    CHECK(SafetensorsFile(put(dir, trailing), {.allow_gaps = true}).read_f32("w").size() == 6);
    refused(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     std::string(12, 'x')),
            "overlap", {.allow_gaps = true});
  }
}

TEST_CASE("safetensors: a header length past the limit is refused before anything is read") {
  TempDir dir;
  // A sparse file large enough for the header length to lie inside it.
  const fs::path path = dir.path() / "huge.safetensors";
  write_file_atomic(path, le64(kSafetensorsMaxHeader + 1));
  fs::resize_file(path, kSafetensorsMaxHeader + 16);
  CHECK_ERROR_CONTAINS(SafetensorsFile(path), "header length 100000001 exceeds the limit of 100000000 bytes");
}

TEST_CASE("safetensors: files that are not there or not files, and files cut short after opening") {
  TempDir dir;
  CHECK_ERROR_CONTAINS(SafetensorsFile(dir.path() / "missing.safetensors"), "missing.safetensors: cannot open");
  CHECK_ERROR_CONTAINS(SafetensorsFile(dir.path()), "not a regular file");
  const fs::path path = put(dir, st_bytes(kGoodHeader, kGoodData));
  const SafetensorsFile f(path);
  fs::resize_file(path, fs::file_size(path) - 4);
  CHECK_ERROR_CONTAINS(f.read_f32("w"), "the file ended while reading tensor \"w\" (was it truncated?)");
}

TEST_CASE("safetensors: every truncation and byte flip of a valid file is either read or refused cleanly") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8};
  const fs::path good = dir.path() / "good.safetensors";
  write_safetensors(good, std::vector<SafeTensorOut>{{"a", {2, 3}, a.data()}, {"b", {2}, b.data()}}, {{"k", "v"}});
  const std::string bytes = read_file(good);
  std::size_t opened = 0, refused = 0;
  const auto attempt = [&](const std::string& variant) {
    const fs::path path = dir.path() / "variant.safetensors";
    write_raw(path, variant);
    try {
      const SafetensorsFile f(path);
      for (const SafeTensorInfo& t : f.tensors()) (void)f.read_f32(t.name);
      ++opened;
    } catch (const Error&) {
      ++refused;
    }
  };
  for (std::size_t n = 0; n < bytes.size(); ++n) attempt(bytes.substr(0, n));
  CHECK(opened == 0);  // every proper prefix loses something the header promised
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const int x : {0x01, 0x20, 0x80, 0xFF}) {
      std::string variant = bytes;
      variant[i] = static_cast<char>(variant[i] ^ x);
      attempt(variant);
    }
  }
  CHECK(opened > 0);  // flips inside the data area are valid files
  CHECK(refused > bytes.size());
}

TEST_CASE("safetensors checkpoint: a sharded index opens every shard and finds every tensor once") {
  TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5}, c = {6};
  write_safetensors(dir.path() / "model-00001-of-00002.safetensors", std::vector<SafeTensorOut>{{"a", {2}, a.data()}, {"b", {3}, b.data()}});
  write_safetensors(dir.path() / "model-00002-of-00002.safetensors", std::vector<SafeTensorOut>{{"c", {1}, c.data()}});
  const fs::path index = dir.path() / "model.safetensors.index.json";
  const auto write_index = [&](const std::string& text) { write_file_atomic(index, text); };
  const std::string good = R"({"metadata":{"total_size":24},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
                           R"("b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})";
  write_index(good);
  const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir.path());
  CHECK(ck.shards().size() == 2);
  CHECK(ck.names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(ck.read_f32("b") == b);
  CHECK(ck.read_f32("c") == c);
  CHECK(ck.tensor("a").shape == std::vector<std::uint64_t>{2});
  CHECK(ck.shard_of("c").path().filename() == "model-00002-of-00002.safetensors");
  CHECK(ck.contains("a"));
  CHECK_FALSE(ck.contains("d"));
  CHECK_ERROR_CONTAINS(ck.read_f32("d"), "model.safetensors.index.json: no tensor named \"d\"");

  const auto refused = [&](const std::string& text, const std::string& needle) {
    write_index(text);
    CHECK_ERROR_CONTAINS(SafetensorsCheckpoint::open_index(index), needle);
  };
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  const auto map = [](const std::string& entries) { return fmt::format(R"({{"weight_map":{{{}}}}})", entries); };
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"../{1}")", s1, s2)),
          "weight_map \"c\" names shard \"../model-00002-of-00002.safetensors\", expected a plain file name");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"{1}")", s1, (dir.path() / s2).string())),
          "expected a plain file name in the index's directory");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"..")", s1)), "names shard \"..\"");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"")", s1)), "names shard \"\"");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"sub\\{1}")", s1, s2)), "expected a plain file name");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"{1}","d":"{1}")", s1, s2)),
          "tensor \"d\" is mapped to shard model-00002-of-00002.safetensors, which does not hold it");
  refused(map(fmt::format(R"("a":"{0}","c":"{1}")", s1, s2)),
          "tensor \"b\" of shard model-00001-of-00002.safetensors is not in the weight_map");
  refused(map(fmt::format(R"("a":"{0}","b":"{1}","c":"{1}")", s1, s2)),
          "tensor \"b\" is in shard model-00001-of-00002.safetensors, the weight_map says model-00002-of-00002.safetensors");
  refused(map(fmt::format(R"("a":"{0}","b":"{0}","c":"missing.safetensors")", s1)), "missing.safetensors: cannot open");
  refused(map(fmt::format(R"("a":"{0}","a":"{0}","b":"{0}","c":"{1}")", s1, s2)), "duplicate key \"a\"");
  refused(map(R"("a":1)"), "weight_map \"a\" is the number 1, expected a shard file name");
  refused(map(""), "\"weight_map\" is empty, expected a non-empty object");
  refused(R"({"metadata":{}})", "\"weight_map\" is missing");
  refused(R"({"weight_map":[]})", "\"weight_map\" is an array");
  refused("[]", "is an array, expected a JSON object with a weight_map");
  refused("{", "not valid JSON");

  // A tensor held by two shards, even when the index names one of them.
  write_safetensors(dir.path() / s2, std::vector<SafeTensorOut>{{"a", {2}, a.data()}, {"c", {1}, c.data()}});
  refused(good, "tensor \"a\" is in both model-00001-of-00002.safetensors and model-00002-of-00002.safetensors");
}

TEST_CASE("safetensors checkpoint: a directory with one file, or with nothing to open") {
  TempDir dir;
  CHECK_ERROR_CONTAINS(SafetensorsCheckpoint::open_dir(dir.path()),
                       "holds neither model.safetensors nor model.safetensors.index.json");
  const std::vector<float> a = {1, 2};
  write_safetensors(dir.path() / "model.safetensors", std::vector<SafeTensorOut>{{"a", {2}, a.data()}});
  const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir.path());
  CHECK(ck.shards().size() == 1);
  CHECK(ck.read_f32("a") == a);
  std::vector<float> out(2);
  ck.read_f32("a", out);
  CHECK(out == a);
}
