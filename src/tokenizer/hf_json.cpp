// tokenizer.json: written in exactly the layout Hugging Face tokenizers saves (serde_json's
// pretty printer: two-space indent, keys in its struct order, no trailing newline), so that a
// tokenizer we train is byte-for-byte the file it would write; read with nlohmann::json and
// checked field by field.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "minitx/core/error.h"
#include "minitx/tokenizer/byte_level.h"
#include "minitx/tokenizer/tokenizer.h"

namespace minitx {
namespace {

// serde_json's string escaping: the two-character escapes, \u00XX for other controls.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out.push_back(ch);
    }
  }
  out.push_back('"');
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace

std::string Tokenizer::to_json() const {
  const auto& m = model_;
  std::vector<bool> added(m.vocab.size(), false);
  for (const auto& a : m.added_tokens) added[a.id] = true;
  const auto vocab_string = [&](std::uint32_t id) { return added[id] ? m.vocab[id] : bytes_to_byte_level(m.vocab[id]); };

  std::string out;
  out.reserve(m.vocab.size() * 24 + m.merges.size() * 40 + 2048);
  out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
  for (std::size_t i = 0; i < m.added_tokens.size(); ++i) {
    const AddedToken& a = m.added_tokens[i];
    out += i == 0 ? "\n" : ",\n";
    out += fmt::format("    {{\n      \"id\": {},\n      \"content\": {},\n      \"single_word\": false,\n      \"lstrip\": false,\n"
                       "      \"rstrip\": false,\n      \"normalized\": {},\n      \"special\": {}\n    }}",
                       a.id, json_string(a.content), a.special ? "false" : "true", a.special ? "true" : "false");
  }
  out += m.added_tokens.empty() ? "],\n" : "\n  ],\n";
  out += m.nfc ? "  \"normalizer\": {\n    \"type\": \"NFC\"\n  },\n" : "  \"normalizer\": null,\n";
  out += "  \"pre_tokenizer\": ";
  if (m.pattern == SplitPattern::gpt2) {
    out += fmt::format("{{\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": {},\n    \"trim_offsets\": true,\n    \"use_regex\": true\n  }}",
                       m.add_prefix_space ? "true" : "false");
  } else {
    out += fmt::format(
        "{{\n    \"type\": \"Sequence\",\n    \"pretokenizers\": [\n      {{\n        \"type\": \"Split\",\n        \"pattern\": {{\n"
        "          \"Regex\": {}\n        }},\n        \"behavior\": \"Isolated\",\n        \"invert\": false\n      }},\n"
        "      {{\n        \"type\": \"ByteLevel\",\n        \"add_prefix_space\": {},\n        \"trim_offsets\": true,\n"
        "        \"use_regex\": false\n      }}\n    ]\n  }}",
        json_string(split_pattern_regex(m.pattern)), m.add_prefix_space ? "true" : "false");
  }
  out += ",\n  \"post_processor\": null,\n  \"decoder\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": true,\n"
         "    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n";
  out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
         "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
         "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {";
  for (std::uint32_t id = 0; id < m.vocab.size(); ++id) {
    out += id == 0 ? "\n      " : ",\n      ";
    append_json_string(out, vocab_string(id));
    out += ": ";
    out += std::to_string(id);
  }
  out += m.vocab.empty() ? "},\n" : "\n    },\n";
  out += "    \"merges\": [";
  for (std::size_t r = 0; r < m.merges.size(); ++r) {
    out += r == 0 ? "\n      [\n        " : ",\n      [\n        ";
    append_json_string(out, vocab_string(m.merges[r].first));
    out += ",\n        ";
    append_json_string(out, vocab_string(m.merges[r].second));
    out += "\n      ]";
  }
  out += m.merges.empty() ? "]\n  }\n}" : "\n    ]\n  }\n}";
  return out;
}

namespace {

using Json = nlohmann::json;

struct Reader {
  const std::string& name;

  [[noreturn]] void bad(std::string_view where, std::string_view what) const { fail("{}: {}: {}", name, where, what); }

  const Json& member(const Json& obj, const char* key, std::string_view where) const {
    const auto it = obj.find(key);
    if (it == obj.end()) bad(where, fmt::format("missing key \"{}\"", key));
    return *it;
  }
  const Json* optional(const Json& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  bool boolean(const Json& obj, const char* key, bool fallback, std::string_view where) const {
    const Json* v = optional(obj, key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) bad(fmt::format("{}.{}", where, key), "expected true or false");
    return v->get<bool>();
  }
  std::string string(const Json& v, std::string_view where) const {
    if (!v.is_string()) bad(where, "expected a string");
    return v.get<std::string>();
  }
  std::string type_of(const Json& obj, std::string_view where) const {
    if (!obj.is_object()) bad(where, "expected an object");
    return string(member(obj, "type", where), fmt::format("{}.type", where));
  }
};

// ByteLevel's own options; `with_regex` is what its use_regex must be in this position.
void read_byte_level(const Reader& r, const Json& pt, std::string_view where, bool with_regex, TokenizerModel& model) {
  model.add_prefix_space = r.boolean(pt, "add_prefix_space", true, where);
  const bool use_regex = r.boolean(pt, "use_regex", true, where);
  if (use_regex != with_regex)
    r.bad(where, with_regex ? "ByteLevel with use_regex false and no Split before it is not supported (no split pattern)"
                            : "ByteLevel after a Split must have use_regex false");
}

void read_pre_tokenizer(const Reader& r, const Json& root, TokenizerModel& model) {
  const Json* pt = r.optional(root, "pre_tokenizer");
  if (pt == nullptr) r.bad("pre_tokenizer", "missing: only byte-level BPE (pre_tokenizer ByteLevel) is supported");
  const std::string type = r.type_of(*pt, "pre_tokenizer");
  if (type == "ByteLevel") {
    model.pattern = SplitPattern::gpt2;
    read_byte_level(r, *pt, "pre_tokenizer", true, model);
    return;
  }
  if (type == "Sequence") {
    const Json& list = r.member(*pt, "pretokenizers", "pre_tokenizer");
    if (!list.is_array() || list.size() != 2)
      r.bad("pre_tokenizer.pretokenizers", "only [Split(pattern), ByteLevel(use_regex=false)] is supported");
    if (r.type_of(list[0], "pre_tokenizer.pretokenizers[0]") != "Split")
      r.bad("pre_tokenizer.pretokenizers[0]", "only a Split is supported before ByteLevel");
    const Json& split = list[0];
    const Json& pattern = r.member(split, "pattern", "pre_tokenizer.pretokenizers[0]");
    const Json* regex = pattern.is_object() ? r.optional(pattern, "Regex") : nullptr;
    if (regex == nullptr) r.bad("pre_tokenizer.pretokenizers[0].pattern", "only a Regex pattern is supported");
    const std::string text = r.string(*regex, "pre_tokenizer.pretokenizers[0].pattern.Regex");
    if (text == split_pattern_regex(SplitPattern::gpt2)) model.pattern = SplitPattern::gpt2;
    else if (text == split_pattern_regex(SplitPattern::gpt4)) model.pattern = SplitPattern::gpt4;
    else r.bad("pre_tokenizer.pretokenizers[0].pattern.Regex", fmt::format("unsupported split pattern {} (supported: the GPT-2 and GPT-4 patterns)", json_string(text)));
    const Json* behavior = r.optional(split, "behavior");
    if (behavior == nullptr || !behavior->is_string() || behavior->get<std::string>() != "Isolated")
      r.bad("pre_tokenizer.pretokenizers[0].behavior", "only \"Isolated\" is supported");
    if (r.boolean(split, "invert", false, "pre_tokenizer.pretokenizers[0]")) r.bad("pre_tokenizer.pretokenizers[0].invert", "true is not supported");
    if (r.type_of(list[1], "pre_tokenizer.pretokenizers[1]") != "ByteLevel")
      r.bad("pre_tokenizer.pretokenizers[1]", "only ByteLevel is supported after the Split");
    read_byte_level(r, list[1], "pre_tokenizer.pretokenizers[1]", false, model);
    return;
  }
  r.bad("pre_tokenizer", fmt::format("type \"{}\" is not supported (only byte-level BPE: ByteLevel, or Sequence [Split, ByteLevel])", type));
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& name) {
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    fail("{}: not a valid tokenizer.json: {}", name, e.what());
  }
  const Reader r{name};
  if (!root.is_object()) r.bad("(top level)", "expected a JSON object");

  bool nfc = false;
  if (const Json* normalizer = r.optional(root, "normalizer")) {
    const std::string type = r.type_of(*normalizer, "normalizer");
    if (type != "NFC") r.bad("normalizer", fmt::format("type \"{}\" is not supported (only none or NFC)", type));
    nfc = true;
  }
  if (const Json* decoder = r.optional(root, "decoder")) {
    const std::string type = r.type_of(*decoder, "decoder");
    if (type != "ByteLevel") r.bad("decoder", fmt::format("type \"{}\" is not supported (only ByteLevel)", type));
  }

  const Json& model_json = r.member(root, "model", "(top level)");
  const std::string type = model_json.is_object() && !model_json.contains("type") ? "BPE" : r.type_of(model_json, "model");
  if (type != "BPE") r.bad("model.type", fmt::format("model type \"{}\" is not supported (only BPE)", type));
  if (r.optional(model_json, "dropout") != nullptr) r.bad("model.dropout", "BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const Json* v = r.optional(model_json, key); v != nullptr && !(v->is_string() && v->get<std::string>().empty()))
      r.bad(fmt::format("model.{}", key), "is not supported (byte-level BPE has none)");
  if (r.boolean(model_json, "byte_fallback", false, "model")) r.bad("model.byte_fallback", "true is not supported");
  if (r.boolean(model_json, "ignore_merges", false, "model")) r.bad("model.ignore_merges", "true is not supported");

  TokenizerModel model;
  model.nfc = nfc;
  read_pre_tokenizer(r, root, model);

  // Added tokens, then the vocabulary; together their ids must be exactly 0..n-1.
  std::map<std::uint32_t, std::string> by_id;
  std::vector<AddedToken> added;
  if (const Json* list = r.optional(root, "added_tokens")) {
    if (!list->is_array()) r.bad("added_tokens", "expected an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Json& a = (*list)[i];
      const std::string where = fmt::format("added_tokens[{}]", i);
      if (!a.is_object()) r.bad(where, "expected an object");
      const Json& id = r.member(a, "id", where);
      if (!id.is_number_unsigned() || id.get<std::uint64_t>() >= (1u << 31)) r.bad(where + ".id", "expected a token id");
      AddedToken token{id.get<std::uint32_t>(), r.string(r.member(a, "content", where), where + ".content"), r.boolean(a, "special", false, where)};
      if (token.content.empty()) r.bad(where + ".content", "is empty");
      for (const char* key : {"single_word", "lstrip", "rstrip"})
        if (r.boolean(a, key, false, where)) r.bad(fmt::format("{}.{}", where, key), "true is not supported");
      added.push_back(token);
    }
  }
  const Json& vocab = r.member(model_json, "vocab", "model");
  if (!vocab.is_object()) r.bad("model.vocab", "expected an object of token: id");
  std::unordered_map<std::string, std::uint32_t> ids;  // vocab strings as written
  for (const auto& [key, value] : vocab.items()) {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= (1u << 31))
      r.bad("model.vocab", fmt::format("token {} has id {}, expected a whole number below 2^31", json_string(key), value.dump()));
    const auto id = value.get<std::uint32_t>();
    if (!by_id.emplace(id, key).second) r.bad("model.vocab", fmt::format("id {} is used twice ({} and {})", id, json_string(by_id[id]), json_string(key)));
    ids.emplace(key, id);
  }
  std::map<std::uint32_t, const AddedToken*> added_by_id;
  for (const AddedToken& a : added) {
    // The model's vocabulary may hold an added token as its content or in byte-level form
    // (GPT-NeoX's space tokens: "ĠĠ" for "  ").
    const auto it = by_id.find(a.id);
    if (it != by_id.end() && it->second != a.content && byte_level_to_bytes(it->second) != a.content)
      r.bad("added_tokens", fmt::format("id {} is {} but model.vocab has {}", a.id, json_string(a.content), json_string(it->second)));
    if (it != by_id.end()) it->second = a.content;
    else by_id.emplace(a.id, a.content);
    ids.emplace(a.content, a.id);
    added_by_id[a.id] = &a;
  }
  if (by_id.empty()) r.bad("model.vocab", "is empty");
  if (by_id.rbegin()->first != by_id.size() - 1)
    r.bad("model.vocab", fmt::format("ids are not contiguous: {} tokens but the largest id is {}", by_id.size(), by_id.rbegin()->first));
  model.vocab.resize(by_id.size());
  for (const auto& [id, key] : by_id) {
    if (added_by_id.count(id) != 0) {
      model.vocab[id] = key;
      continue;
    }
    auto bytes = byte_level_to_bytes(key);
    if (!bytes || bytes->empty())
      r.bad("model.vocab", fmt::format("token {} (id {}) is not made of byte-level characters", json_string(key), id));
    model.vocab[id] = std::move(*bytes);
  }
  for (const auto& [id, token] : added_by_id) model.added_tokens.push_back(*token);

  const Json& merges = r.member(model_json, "merges", "model");
  if (!merges.is_array()) r.bad("model.merges", "expected an array");
  model.merges.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.bad(fmt::format("model.merges[{}]", i), fmt::format("{} is not two tokens separated by one space", json_string(s)));
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      r.bad(fmt::format("model.merges[{}]", i), "expected \"a b\" or [\"a\", \"b\"]");
    }
    const auto a = ids.find(left), b = ids.find(right);
    if (a == ids.end() || b == ids.end())
      r.bad(fmt::format("model.merges[{}]", i), fmt::format("token {} is not in the vocabulary", json_string(a == ids.end() ? left : right)));
    if (ids.find(left + right) == ids.end())
      r.bad(fmt::format("model.merges[{}]", i), fmt::format("the merged token {} is not in the vocabulary", json_string(left + right)));
    model.merges.emplace_back(a->second, b->second);
  }
  try {
    return Tokenizer(std::move(model));
  } catch (const Error& e) {
    fail("{}: {}", name, e.what());
  }
}

}  // namespace minitx
