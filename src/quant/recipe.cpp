#include "minitx/quant/recipe.h"

#include "minitx/core/error.h"
#include "minitx/quant/block.h"

namespace minitx::quant {

bool glob_match(std::string_view pattern, std::string_view name) {
  // Iterative matching with one backtrack point: the last '*' seen absorbs one more character
  // whenever the rest fails, which is enough for '*' alone (no '?' or classes).
  std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Recipe recipe_by_name(std::string_view name, const std::vector<std::string>& q8_patterns) {
  if (name == "q4_mix") {
    Recipe recipe{"q4_mix", Format::q4_0, {}};
    for (const std::string& pattern : q8_patterns) recipe.rules.emplace_back(pattern, Format::q8_0);
    return recipe;
  }
  if (const auto format = format_from_name(name)) return Recipe{std::string(name), *format, {}};
  fail("quantization recipe '{}' is unknown (expected f32, q8_0, q4_0 or q4_mix)", name);
}

Format choose_format(const Recipe& recipe, std::string_view tensor, std::span<const std::size_t> shape) {
  if (shape.size() < 2 || shape.back() % QK != 0) return Format::f32;
  for (const auto& [pattern, format] : recipe.rules)
    if (glob_match(pattern, tensor)) return format;
  return recipe.matrices;
}

}  // namespace minitx::quant
