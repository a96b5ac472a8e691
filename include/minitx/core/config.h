// Experiment configs: TOML read through a checking view. Every getter records the key it
// read; finish() then rejects any key nobody asked for. Errors name file, line and key:
//   configs/x.toml:12: [tokenizer] vocab_size: expected an integer from 256 to 1048576, got 40
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace minitx {

class ConfigSection {
 public:
  // `path` is the dotted name shown in messages ("corpus", "corpus.sources[1]").
  ConfigSection(std::shared_ptr<const toml::table> root, const toml::table* table, std::string file, std::string path);

  bool has(const std::string& key) const;
  std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi) const;
  std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t fallback) const;
  double number(const std::string& key, double lo, double hi) const;
  double number(const std::string& key, double lo, double hi, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  // One of `allowed`; the message lists them.
  std::string choice(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback) const;
  std::vector<std::string> strings(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback) const;
  ConfigSection table(const std::string& key) const;          // required
  std::optional<ConfigSection> optional_table(const std::string& key) const;
  std::vector<ConfigSection> tables(const std::string& key) const;  // an array of tables, non-empty

  // Throws for the first key that no getter asked for.
  void finish() const;
  // "file:line: [path] key: " — the prefix of every message about `key`.
  std::string where(const std::string& key) const;
  [[noreturn]] void error(const std::string& key, const std::string& what) const;

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

 private:
  const toml::node* find(const std::string& key) const;
  const toml::node& require(const std::string& key) const;
  int line_of(const std::string& key) const;

  std::shared_ptr<const toml::table> root_;
  const toml::table* table_;
  std::string file_, path_;
  mutable std::set<std::string> used_;
};

class ConfigFile {
 public:
  // Parses the file; a syntax error names file, line and column.
  static ConfigFile load(const std::filesystem::path& path);
  static ConfigFile parse(std::string_view text, std::string name);

  ConfigSection root() const;
  // The canonical text of one top-level section (sorted keys, normalised values); its hash
  // tells whether that section changed between two versions of a config.
  std::string canonical_section(const std::string& key) const;
  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<const toml::table> table_;
  std::string name_;
};

}  // namespace minitx
