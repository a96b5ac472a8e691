#include <doctest/doctest.h>

#include <vector>

#include "minitx/quant/recipe.h"

using namespace minitx::quant;

TEST_CASE("quant recipe: glob patterns") {
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*wte*", "transformer.wte.weight"));
  CHECK(glob_match("h.*.mlp.*", "h.11.mlp.fc.w"));
  CHECK_FALSE(glob_match("h.*.mlp.*", "h.11.attn.w"));
  CHECK(glob_match("a*b*c", "aXXbYYbZc"));
  CHECK_FALSE(glob_match("a*b*c", "aXXbYYbZ"));
  CHECK(glob_match("exact", "exact"));
  CHECK_FALSE(glob_match("exact", "exact2"));
}

TEST_CASE("quant recipe: formats per tensor") {
  const std::vector<std::size_t> matrix = {512, 512}, vector = {512}, odd = {512, 100};
  const Recipe q8 = recipe_by_name("q8_0");
  CHECK(choose_format(q8, "h.0.attn.w", matrix) == Format::q8_0);
  CHECK(choose_format(q8, "h.0.ln1.b", vector) == Format::f32);
  CHECK(choose_format(q8, "h.0.odd.w", odd) == Format::f32);
  CHECK(choose_format(recipe_by_name("f32"), "h.0.attn.w", matrix) == Format::f32);
  const Recipe mix = recipe_by_name("q4_mix", {"wte", "h.0.mlp.*"});
  CHECK(choose_format(mix, "wte", matrix) == Format::q8_0);
  CHECK(choose_format(mix, "h.0.mlp.proj.w", matrix) == Format::q8_0);
  CHECK(choose_format(mix, "h.1.mlp.proj.w", matrix) == Format::q4_0);
  CHECK(choose_format(recipe_by_name("q4_mix"), "lm_head", matrix) == Format::q8_0);
  CHECK_THROWS_WITH(recipe_by_name("q3_k"), doctest::Contains("recipe 'q3_k' is unknown (expected f32, q8_0, q4_0 or q4_mix)"));
}
