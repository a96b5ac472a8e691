// JSON as the model importers read it: nlohmann::json, but with duplicate keys refused (the
// parser would keep the last one silently, so two files that differ only there would load as
// one) and nesting bounded (no real file nests deeply; a hostile one should not cost memory).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace minitx::detail {

inline constexpr int kMaxJsonDepth = 64;

// `source` names the text in errors, e.g. "model.safetensors: header".
nlohmann::json parse_json_strict(std::string_view text, const std::string& source);

// "an object", "a string", "a negative integer", … for messages that say what was found.
std::string json_kind(const nlohmann::json& value);

}  // namespace minitx::detail
