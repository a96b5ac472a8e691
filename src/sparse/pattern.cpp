#include "minitx/sparse/pattern.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "minitx/core/config.h"
#include "minitx/core/error.h"

namespace minitx::sparse {
namespace {

using Kind = AttentionPattern::Kind;

constexpr Kind kKinds[] = {Kind::dense, Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks};

// The numbers each pattern reads: the key (in [model.attention], and after kPrefix in a model
// description), the member it sets, the whole numbers it takes, and the patterns that read it.
// Both readers and the writer go through this table, so a key's name and range are written once.
using P = AttentionPattern;
struct Field {
  const char* key;
  std::variant<std::int32_t P::*, bool P::*, std::uint64_t P::*> member;
  std::int64_t lo, hi;  // a bool member is 0..1: true/false in a config, 0/1 in a description
  std::initializer_list<Kind> used_by;
  bool tile = false;  // within lo..hi, also one of the block sizes the kernels tile by (kTiles)
};
const Field kFields[] = {
    {"block", &P::block, 16, 128, {Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks}, true},
    {"window", &P::window, 1, 65536, {Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks}},
    {"stride", &P::stride, 1, 65536, {Kind::strided}},
    {"global_blocks", &P::global_blocks, 0, 65536, {Kind::bigbird}},
    {"random_blocks", &P::random_blocks, 0, 65535, {Kind::bigbird}},
    {"per_head", &P::per_head, 0, 1, {Kind::bigbird}},
    {"seed", &P::seed, 0, std::int64_t{1} << 62, {Kind::bigbird}},
    {"global_tokens", &P::global_tokens, 0, 1 << 20, {Kind::longformer}},
    {"sinks", &P::sinks, 0, 65536, {Kind::sinks}},
};

// A description's keys are the config's with this in front: attention_block, attention_window, ...
constexpr std::string_view kPrefix = "attention_";

bool uses(Kind kind, const Field& f) { return std::find(f.used_by.begin(), f.used_by.end(), kind) != f.used_by.end(); }
bool is_flag(const Field& f) { return std::holds_alternative<bool P::*>(f.member); }

std::int64_t get(const AttentionPattern& p, const Field& f) {
  return std::visit([&](auto member) { return static_cast<std::int64_t>(p.*member); }, f.member);
}

void set(AttentionPattern& p, const Field& f, std::int64_t value) {
  std::visit([&](auto member) { p.*member = static_cast<std::remove_reference_t<decltype(p.*member)>>(value); },
             f.member);
}

std::string users(const Field& f) {
  std::string out;
  for (Kind k : f.used_by) out += fmt::format("{}{}", out.empty() ? "" : ", ", to_string(k));
  return out;
}

constexpr const char* kTiles = "16, 32, 64 or 128";
bool tile_ok(const Field& f, std::int64_t value) {
  return !f.tile || value == 16 || value == 32 || value == 64 || value == 128;
}

Kind kind_named(const std::string& name, const std::string& where) {
  for (Kind k : kKinds)
    if (name == to_string(k)) return k;
  fail("{}: attention pattern '{}' is not one of dense, local, strided, bigbird, longformer, sinks", where,
       name.substr(0, 40));
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
  std::vector<std::string> names;
  for (Kind k : kKinds) names.push_back(to_string(k));
  p.kind = kind_named(s.choice("pattern", names, "dense"), s.file());
  for (const Field& f : kFields)
    if (s.has(f.key) && !uses(p.kind, f))
      s.error(f.key, fmt::format("is read by the {} patterns only, not by {}", users(f), to_string(p.kind)));
  for (const Field& f : kFields) {
    if (!uses(p.kind, f)) continue;
    set(p, f, is_flag(f) ? s.boolean(f.key, get(p, f) != 0) : s.integer(f.key, f.lo, f.hi, get(p, f)));
    if (!tile_ok(f, get(p, f))) s.error(f.key, fmt::format("expected {}, got {}", kTiles, get(p, f)));
  }
  s.finish();
  return p;
}

std::string describe_pattern(const AttentionPattern& p) {
  if (p.dense()) return "";
  std::string out = fmt::format("{}pattern {}\n", kPrefix, to_string(p.kind));
  for (const Field& f : kFields)
    if (uses(p.kind, f)) out += fmt::format("{}{} {}\n", kPrefix, f.key, get(p, f));
  return out;
}

AttentionPattern parse_pattern(std::map<std::string, std::string>& keys, const std::string& where) {
  AttentionPattern p;
  const auto it = keys.find(std::string(kPrefix) + "pattern");
  if (it == keys.end()) return p;
  p.kind = kind_named(it->second, where);
  keys.erase(it);
  MINITX_CHECK(!p.dense(), "{}: attention_pattern dense is never written (dense models have no attention lines)", where);
  for (const Field& f : kFields)
    if (uses(p.kind, f)) set(p, f, take_int(keys, std::string(kPrefix) + f.key, f.lo, f.hi, where));
  for (const Field& f : kFields)
    MINITX_CHECK(tile_ok(f, get(p, f)), "{}: attention {} = {}: expected {}", where, f.key, get(p, f), kTiles);
  return p;
}

std::string summarize_pattern(const AttentionPattern& p) {
  if (p.dense()) return "dense";
  std::string out;
  for (const Field& f : kFields)
    if (uses(p.kind, f)) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", f.key, get(p, f));
  return fmt::format("{} ({})", to_string(p.kind), out);
}

}  // namespace minitx::sparse
