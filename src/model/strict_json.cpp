#include "strict_json.h"

#include <set>
#include <vector>

#include "minitx/core/error.h"

namespace minitx::detail {

nlohmann::json parse_json_strict(std::string_view text, const std::string& source) {
  using json = nlohmann::json;
  // One set of keys per object being parsed; a key always belongs to the innermost one.
  std::vector<std::set<std::string>> open_objects;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        MINITX_CHECK(depth < kMaxJsonDepth, "{}: JSON nested deeper than {} levels", source, kMaxJsonDepth);
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        MINITX_CHECK(!open_objects.empty() && open_objects.back().insert(key).second,
                     "{}: duplicate key \"{}\" in one JSON object (expected each key once)", source, key);
        break;
      }
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), check);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", source, e.what());
  }
}

std::string json_kind(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      return fmt::format("the string \"{}{}\"", s.substr(0, 60), s.size() > 60 ? "…" : "");
    }
    case nlohmann::json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return fmt::format("the number {}", value.dump());
    case nlohmann::json::value_t::null: return "null";
    default: return "an unexpected JSON value";
  }
}

}  // namespace minitx::detail
