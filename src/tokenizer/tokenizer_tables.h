// The lookup tables behind Tokenizer, shared by its encoder and its JSON code.
#pragma once
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "flat_map.h"
#include "minitx/tokenizer/tokenizer.h"

namespace minitx {
namespace detail {
struct MergeValue {
  std::uint32_t rank = 0, new_id = 0;
};
struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

struct Tokenizer::Tables {
  std::uint64_t serial = 0;                 // tells per-thread caches which tokenizer they hold
  std::array<std::uint32_t, 256> byte_id{};
  detail::FlatMap<detail::MergeValue> merges;
  std::unordered_map<std::string, std::uint32_t, detail::TransparentHash, std::equal_to<>> index;  // bytes -> id
  std::vector<bool> is_added;
  std::array<bool, 256> special_first{}, plain_first{};  // first bytes of added tokens
  bool any_plain = false;
  std::vector<AddedToken> added_by_length;  // longest first
};

}  // namespace minitx
