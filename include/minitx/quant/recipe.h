// Quantization recipes: which format each tensor of a model gets. Vectors (biases, norm gains)
// and rows that are not whole blocks always stay f32: they are a tiny share of the bytes and
// quantizing them costs accuracy for nothing. Matrices get the recipe's format unless a rule
// matches their name first.
//
//   f32, q8_0, q4_0   every matrix in that format
//   q4_mix            q4_0, except the rules' names (embeddings, output head and the layers the
//                     caller found most sensitive), which get q8_0
#pragma once
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "minitx/quant/format.h"

namespace minitx::quant {

struct Recipe {
  std::string name;
  Format matrices = Format::f32;
  std::vector<std::pair<std::string, Format>> rules;  // (glob over tensor names, format); first match wins
};

// Names a model's embeddings and output head usually carry; q4_mix keeps them at q8_0.
inline const std::vector<std::string> kEmbeddingPatterns = {"*wte*", "*wpe*", "*embed*", "*lm_head*", "head"};

// "f32", "q8_0", "q4_0" or "q4_mix"; `q8_patterns` are the q4_mix rules (kEmbeddingPatterns
// plus, say, the MLP projections of the first and last layers). Unknown names are errors that
// list the known ones.
Recipe recipe_by_name(std::string_view name, const std::vector<std::string>& q8_patterns = kEmbeddingPatterns);

Format choose_format(const Recipe& recipe, std::string_view tensor, std::span<const std::size_t> shape);

// '*' matches any run of characters (also none); everything else matches itself.
bool glob_match(std::string_view pattern, std::string_view name);

}  // namespace minitx::quant
