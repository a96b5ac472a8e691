// The only translation unit that includes toml++: it is header-only here and slow to compile.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
// toml++ 3.3.0 checks its parser's invariants with assert(), and fuzzing found texts that break
// them ("[\nmodel]", "a = [}"): an abort in a build without NDEBUG, undefined behaviour with it.
// Here a broken invariant is an exception, which parse() reports as the syntax error it is.
#define TOML_ASSERT(expr) ((expr) ? void() : ::minitx::detail::toml_invariant_broken(#expr))
#include <stdexcept>

namespace minitx::detail {
struct TomlInvariantBroken : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void toml_invariant_broken(const char* expr) { throw TomlInvariantBroken(expr); }
}  // namespace minitx::detail

#include "minitx/core/config.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>
#include <toml++/toml.h>

#include "minitx/core/build_info.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"

namespace minitx {
namespace {

// A value as the canonical text of a section holds it: whole, since it is hashed.
std::string value_text(const toml::node& node) {
  if (auto v = node.value<std::string>(); v && node.is_string()) return fmt::format("\"{}\"", *v);
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_floating_point()) return fmt::format("{}", *node.value<double>());
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_array()) return "an array";
  if (node.is_table()) return "a table";
  return "a date/time";
}

// A value as an error message quotes it.
std::string describe(const toml::node& node) {
  if (auto v = node.value<std::string>(); v && node.is_string()) return fmt::format("\"{}\"", excerpt(*v));
  return value_text(node);
}

}  // namespace

ConfigSection::ConfigSection(std::shared_ptr<const toml::table> root, const toml::table* table, std::string file, std::string path)
    : root_(std::move(root)), table_(table), file_(std::move(file)), path_(std::move(path)) {}

const toml::node* ConfigSection::find(const std::string& key) const {
  used_.insert(key);
  return table_->get(key);
}

int ConfigSection::line_of(const std::string& key) const {
  if (const toml::node* node = table_->get(key)) return static_cast<int>(node->source().begin.line);
  return static_cast<int>(table_->source().begin.line);
}

std::string ConfigSection::where(const std::string& key) const {
  return fmt::format("{}:{}: {}{}", file_, line_of(key), path_.empty() ? "" : fmt::format("[{}] ", path_), key);
}

void ConfigSection::error(const std::string& key, const std::string& what) const { fail("{}: {}", where(key), what); }

bool ConfigSection::has(const std::string& key) const { return find(key) != nullptr; }

const toml::node& ConfigSection::require(const std::string& key) const {
  const toml::node* node = find(key);
  if (node == nullptr) error(key, "missing (this key is required)");
  return *node;
}

std::int64_t ConfigSection::integer(const std::string& key, std::int64_t lo, std::int64_t hi) const {
  const toml::node& node = require(key);
  if (!node.is_integer()) error(key, fmt::format("expected an integer from {} to {}, got {}", lo, hi, describe(node)));
  const std::int64_t value = *node.value<std::int64_t>();
  if (value < lo || value > hi) error(key, fmt::format("expected an integer from {} to {}, got {}", lo, hi, value));
  return value;
}

std::int64_t ConfigSection::integer(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t fallback) const {
  return has(key) ? integer(key, lo, hi) : fallback;
}

double ConfigSection::number(const std::string& key, double lo, double hi) const {
  const toml::node& node = require(key);
  if (!node.is_number()) error(key, fmt::format("expected a number from {} to {}, got {}", lo, hi, describe(node)));
  const double value = *node.value<double>();
  if (!std::isfinite(value) || value < lo || value > hi)
    error(key, fmt::format("expected a number from {} to {}, got {}", lo, hi, value));
  return value;
}

double ConfigSection::number(const std::string& key, double lo, double hi, double fallback) const {
  return has(key) ? number(key, lo, hi) : fallback;
}

bool ConfigSection::boolean(const std::string& key, bool fallback) const {
  const toml::node* node = find(key);
  if (node == nullptr) return fallback;
  if (!node->is_boolean()) error(key, fmt::format("expected true or false, got {}", describe(*node)));
  return *node->value<bool>();
}

std::string ConfigSection::string(const std::string& key) const {
  const toml::node& node = require(key);
  if (!node.is_string()) error(key, fmt::format("expected a string, got {}", describe(node)));
  return *node.value<std::string>();
}

std::string ConfigSection::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

std::string ConfigSection::choice(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback) const {
  const std::string value = string(key, fallback);
  for (const auto& option : allowed)
    if (option == value) return value;
  error(key, fmt::format("expected one of \"{}\", got \"{}\"", fmt::join(allowed, "\", \""), excerpt(value)));
}

std::vector<std::string> ConfigSection::strings(const std::string& key) const {
  const toml::node& node = require(key);
  const toml::array* array = node.as_array();
  if (array == nullptr) error(key, fmt::format("expected an array of strings, got {}", describe(node)));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    if (!item.is_string()) error(key, fmt::format("item {}: expected a string, got {}", i + 1, describe(item)));
    out.push_back(*item.value<std::string>());
  }
  return out;
}

std::vector<std::string> ConfigSection::strings(const std::string& key, const std::vector<std::string>& fallback) const {
  return has(key) ? strings(key) : fallback;
}

ConfigSection ConfigSection::table(const std::string& key) const {
  const toml::node& node = require(key);
  if (!node.is_table()) error(key, fmt::format("expected a table, got {}", describe(node)));
  return ConfigSection(root_, node.as_table(), file_, path_.empty() ? key : path_ + "." + key);
}

std::optional<ConfigSection> ConfigSection::optional_table(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return table(key);
}

std::vector<ConfigSection> ConfigSection::tables(const std::string& key) const {
  const toml::node& node = require(key);
  const toml::array* array = node.as_array();
  if (array == nullptr || array->empty() || !array->is_array_of_tables())
    error(key, fmt::format("expected a non-empty array of tables ([[{}{}]]), got {}", path_.empty() ? "" : path_ + ".", key, describe(node)));
  std::vector<ConfigSection> out;
  for (std::size_t i = 0; i < array->size(); ++i)
    out.emplace_back(root_, array->get(i)->as_table(), file_, fmt::format("{}{}[{}]", path_.empty() ? "" : path_ + ".", key, i + 1));
  return out;
}

void ConfigSection::finish() const {
  for (const auto& [key, node] : *table_) {
    const std::string name(key.str());
    if (!used_.count(name))
      fail("{}:{}: {}{}: unknown key", file_, node.source().begin.line, path_.empty() ? "" : fmt::format("[{}] ", path_), excerpt(name));
  }
}

ConfigFile ConfigFile::load(const std::filesystem::path& path) { return parse(read_file(path), path.string()); }

namespace {

// TOML allows characters past ASCII only in strings and comments, and toml++ 3.3.0 must not see
// one anywhere else: its whitespace test reaches __builtin_unreachable for some (U+3001 in
// "[a、]", found by fuzzing). So they are refused here first, with their line and column.
void check_ascii_outside_strings(std::string_view text, const std::string& name) {
  enum class In { code, comment, basic, literal, multi_basic, multi_literal } in = In::code;
  std::size_t line = 1, column = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0) != 0x80) ++column;  // columns count characters, as toml++'s do
    if (byte == '\n') {
      ++line;
      column = 0;
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;
      continue;
    }
    const std::string_view rest = text.substr(i);
    switch (in) {
      case In::code:
        if (byte >= 0x80)
          fail("{}:{}:{}: TOML syntax error: a character past ASCII outside a string or comment", name, line, column);
        if (byte == '#') in = In::comment;
        else if (rest.starts_with("\"\"\"")) in = In::multi_basic, i += 2, column += 2;
        else if (rest.starts_with("'''")) in = In::multi_literal, i += 2, column += 2;
        else if (byte == '"') in = In::basic;
        else if (byte == '\'') in = In::literal;
        break;
      case In::comment: break;
      case In::basic:
      case In::multi_basic:
        if (byte == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i, ++column;
        else if (in == In::basic && byte == '"') in = In::code;
        else if (in == In::multi_basic && rest.starts_with("\"\"\"")) in = In::code, i += 2, column += 2;
        break;
      case In::literal:
        if (byte == '\'') in = In::code;
        break;
      case In::multi_literal:
        if (rest.starts_with("'''")) in = In::code, i += 2, column += 2;
        break;
    }
  }
}

}  // namespace

ConfigFile ConfigFile::parse(std::string_view text, std::string name) {
  ConfigFile config;
  config.name_ = std::move(name);
  check_ascii_outside_strings(text, config.name_);
  try {
    config.table_ = std::make_shared<const toml::table>(toml::parse(text, config.name_));
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: TOML syntax error: {}", config.name_, e.source().begin.line, e.source().begin.column, e.description());
  } catch (const detail::TomlInvariantBroken& e) {
    fail("{}: TOML syntax error that toml++ {} does not locate (its check '{}' failed)", config.name_,
         toml_library_version(), e.what());
  }
  return config;
}

ConfigSection ConfigFile::root() const { return ConfigSection(table_, table_.get(), name_, ""); }

std::string ConfigFile::canonical_section(const std::string& key) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return "";
  std::ostringstream out;
  // toml++ tables are ordered maps, so the formatter's output depends on content alone.
  if (const toml::table* t = node->as_table())
    out << toml::toml_formatter(*t, toml::format_flags::none);
  else if (const toml::array* a = node->as_array())
    out << toml::toml_formatter(*a, toml::format_flags::none);
  else
    out << value_text(*node);
  return out.str();
}

}  // namespace minitx

namespace minitx {
std::string toml_library_version() { return fmt::format("{}.{}.{}", TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH); }
}  // namespace minitx
