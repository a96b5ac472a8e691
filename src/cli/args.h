// Command-line options of one subcommand. Getters consume what they read; done() rejects
// whatever is left, so a misspelt option is an error instead of being ignored.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minitx::cli {

class Args {
 public:
  Args(std::string command, std::vector<std::string> tokens);

  bool flag(std::string_view name);                        // --name
  std::optional<std::string> option(std::string_view name);  // --name VALUE or --name=VALUE; the last one wins
  std::string required(std::string_view name);
  std::vector<std::string> repeated(std::string_view name);  // every --name VALUE, in order
  std::int64_t integer(std::string_view name, std::int64_t lo, std::int64_t hi, std::int64_t fallback);
  double number(std::string_view name, double lo, double hi, double fallback);
  std::vector<std::string> positionals();  // everything not starting with "--"
  void done();

  const std::string& command() const { return command_; }

 private:
  std::string command_;
  std::vector<std::string> tokens_;
  std::vector<bool> used_;
};

}  // namespace minitx::cli
