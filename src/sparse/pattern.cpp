#include "minitx/sparse/pattern.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <vector>

#include "minitx/core/config.h"
#include "minitx/core/error.h"

namespace minitx::sparse {
namespace {

using Kind = AttentionPattern::Kind;

constexpr Kind kKinds[] = {Kind::dense, Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks};

// The numbers each pattern reads, by their config and description key.
struct Field {
  const char* key;
  std::initializer_list<Kind> used_by;
};
const Field kFields[] = {
    {"block", {Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks}},
    {"window", {Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks}},
    {"stride", {Kind::strided}},
    {"global_blocks", {Kind::bigbird}},
    {"random_blocks", {Kind::bigbird}},
    {"per_head", {Kind::bigbird}},
    {"seed", {Kind::bigbird}},
    {"global_tokens", {Kind::longformer}},
    {"sinks", {Kind::sinks}},
};

bool uses(Kind kind, const Field& f) { return std::find(f.used_by.begin(), f.used_by.end(), kind) != f.used_by.end(); }

std::string users(const Field& f) {
  std::string out;
  for (Kind k : f.used_by) out += fmt::format("{}{}", out.empty() ? "" : ", ", to_string(k));
  return out;
}

Kind kind_named(const std::string& name, const std::string& where) {
  for (Kind k : kKinds)
    if (name == to_string(k)) return k;
  fail("{}: attention pattern '{}' is not one of dense, local, strided, bigbird, longformer, sinks", where,
       name.substr(0, 40));
}

// The pattern's own checks, whatever it was read from.
void validate(const AttentionPattern& p, const std::string& where) {
  if (p.dense()) return;
  MINITX_CHECK(p.block == 16 || p.block == 32 || p.block == 64 || p.block == 128,
               "{}: attention block = {}: expected 16, 32, 64 or 128", where, p.block);
  MINITX_CHECK(p.window >= 1 && p.window <= 65536, "{}: attention window = {}: expected 1..65536 blocks", where, p.window);
  MINITX_CHECK(p.stride >= 1 && p.stride <= 65536, "{}: attention stride = {}: expected 1..65536 blocks", where, p.stride);
  MINITX_CHECK(p.global_blocks >= 0 && p.global_blocks <= 65536, "{}: attention global_blocks = {}: expected 0..65536",
               where, p.global_blocks);
  MINITX_CHECK(p.random_blocks >= 0 && p.random_blocks < 65536, "{}: attention random_blocks = {}: expected 0..65535",
               where, p.random_blocks);
  MINITX_CHECK(p.global_tokens >= 0 && p.global_tokens <= (1 << 20),
               "{}: attention global_tokens = {}: expected 0..1048576", where, p.global_tokens);
  MINITX_CHECK(p.sinks >= 0 && p.sinks <= 65536, "{}: attention sinks = {}: expected 0..65536 blocks", where, p.sinks);
}

std::int64_t take_int(std::map<std::string, std::string>& keys, const std::string& key, std::int64_t lo,
                      std::int64_t hi, const std::string& where) {
  const auto it = keys.find(key);
  MINITX_CHECK(it != keys.end(), "{}: the model description lacks '{}'", where, key);
  const std::string value = std::move(it->second);
  keys.erase(it);
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  MINITX_CHECK(ec == std::errc() && end == value.data() + value.size() && !value.empty() && out >= lo && out <= hi,
               "{}: {} = '{}': expected a whole number from {} to {}", where, key, value.substr(0, 40), lo, hi);
  return out;
}

}  // namespace

const char* to_string(AttentionPattern::Kind kind) {
  switch (kind) {
    case Kind::dense: return "dense";
    case Kind::local: return "local";
    case Kind::strided: return "strided";
    case Kind::bigbird: return "bigbird";
    case Kind::longformer: return "longformer";
    case Kind::sinks: break;
  }
  return "sinks";
}

BlockLayout build_layout(const AttentionPattern& p, std::int32_t T, std::int32_t heads, std::int32_t dense_block) {
  switch (p.kind) {
    case Kind::dense: return dense_causal(T, dense_block);
    case Kind::local: return local(T, p.block, p.window);
    case Kind::strided: return strided(T, p.block, p.window, p.stride);
    case Kind::bigbird:
      return bigbird(T, p.block, p.window, p.global_blocks, p.random_blocks, p.seed, p.per_head ? heads : 1);
    case Kind::longformer: {
      std::vector<std::int32_t> globals;
      for (std::int32_t t = 0; t < std::min(p.global_tokens, T); ++t) globals.push_back(t);
      return longformer(T, p.block, p.window, globals);
    }
    case Kind::sinks: break;
  }
  return sinks(T, p.block, p.sinks, p.window);
}

AttentionPattern parse_attention_pattern(const ConfigSection& s) {
  AttentionPattern p;
  p.kind = kind_named(s.choice("pattern", {"dense", "local", "strided", "bigbird", "longformer", "sinks"}, "dense"),
                      s.file());
  for (const Field& f : kFields)
    if (s.has(f.key) && !uses(p.kind, f))
      s.error(f.key, fmt::format("is read by the {} patterns only, not by {}", users(f), to_string(p.kind)));
  auto integer = [&](const char* key, std::int64_t lo, std::int64_t hi, std::int32_t fallback) {
    return static_cast<std::int32_t>(s.integer(key, lo, hi, fallback));
  };
  if (!p.dense()) {
    p.block = integer("block", 16, 128, p.block);
    if (p.block != 16 && p.block != 32 && p.block != 64 && p.block != 128)
      s.error("block", fmt::format("expected 16, 32, 64 or 128, got {}", p.block));
    p.window = integer("window", 1, 65536, p.window);
  }
  if (p.kind == Kind::strided) p.stride = integer("stride", 1, 65536, p.stride);
  if (p.kind == Kind::bigbird) {
    p.global_blocks = integer("global_blocks", 0, 65536, p.global_blocks);
    p.random_blocks = integer("random_blocks", 0, 65535, p.random_blocks);
    p.per_head = s.boolean("per_head", p.per_head);
    p.seed = static_cast<std::uint64_t>(s.integer("seed", 0, std::int64_t{1} << 62, static_cast<std::int64_t>(p.seed)));
  }
  if (p.kind == Kind::longformer) p.global_tokens = integer("global_tokens", 0, 1 << 20, p.global_tokens);
  if (p.kind == Kind::sinks) p.sinks = integer("sinks", 0, 65536, p.sinks);
  s.finish();
  validate(p, s.file());
  return p;
}

std::string describe_pattern(const AttentionPattern& p) {
  if (p.dense()) return "";
  std::string out = fmt::format("attention_pattern {}\n", to_string(p.kind));
  for (const Field& f : kFields) {
    if (!uses(p.kind, f)) continue;
    const std::string key = f.key;
    const std::uint64_t value = key == "block"           ? static_cast<std::uint64_t>(p.block)
                                : key == "window"        ? static_cast<std::uint64_t>(p.window)
                                : key == "stride"        ? static_cast<std::uint64_t>(p.stride)
                                : key == "global_blocks" ? static_cast<std::uint64_t>(p.global_blocks)
                                : key == "random_blocks" ? static_cast<std::uint64_t>(p.random_blocks)
                                : key == "per_head"      ? static_cast<std::uint64_t>(p.per_head ? 1 : 0)
                                : key == "seed"          ? p.seed
                                : key == "global_tokens" ? static_cast<std::uint64_t>(p.global_tokens)
                                                         : static_cast<std::uint64_t>(p.sinks);
    out += fmt::format("attention_{} {}\n", key, value);
  }
  return out;
}

AttentionPattern parse_pattern(std::map<std::string, std::string>& keys, const std::string& where) {
  AttentionPattern p;
  const auto it = keys.find("attention_pattern");
  if (it == keys.end()) return p;
  p.kind = kind_named(it->second, where);
  keys.erase(it);
  MINITX_CHECK(!p.dense(), "{}: attention_pattern dense is never written (dense models have no attention lines)", where);
  auto get = [&](const char* key, std::int64_t lo, std::int64_t hi) {
    return take_int(keys, std::string("attention_") + key, lo, hi, where);
  };
  p.block = static_cast<std::int32_t>(get("block", 16, 128));
  p.window = static_cast<std::int32_t>(get("window", 1, 65536));
  if (p.kind == Kind::strided) p.stride = static_cast<std::int32_t>(get("stride", 1, 65536));
  if (p.kind == Kind::bigbird) {
    p.global_blocks = static_cast<std::int32_t>(get("global_blocks", 0, 65536));
    p.random_blocks = static_cast<std::int32_t>(get("random_blocks", 0, 65535));
    p.per_head = get("per_head", 0, 1) == 1;
    p.seed = static_cast<std::uint64_t>(get("seed", 0, std::int64_t{1} << 62));
  }
  if (p.kind == Kind::longformer) p.global_tokens = static_cast<std::int32_t>(get("global_tokens", 0, 1 << 20));
  if (p.kind == Kind::sinks) p.sinks = static_cast<std::int32_t>(get("sinks", 0, 65536));
  validate(p, where);
  return p;
}

std::string summarize_pattern(const AttentionPattern& p) {
  if (p.dense()) return "dense";
  std::string text = describe_pattern(p), out;
  // "attention_pattern local\nattention_block 64\n..." -> "local (block 64, window 4)"
  std::size_t line_start = text.find('\n') + 1;
  while (line_start < text.size()) {
    const std::size_t end = text.find('\n', line_start);
    out += fmt::format("{}{}", out.empty() ? "" : ", ", text.substr(line_start + 10, end - line_start - 10));
    line_start = end + 1;
  }
  return fmt::format("{} ({})", to_string(p.kind), out);
}

}  // namespace minitx::sparse
