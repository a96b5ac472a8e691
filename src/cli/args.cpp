#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "minitx/core/error.h"

namespace minitx::cli {

Args::Args(std::string command, std::vector<std::string> tokens)
    : command_(std::move(command)), tokens_(std::move(tokens)), used_(tokens_.size(), false) {}

bool Args::flag(std::string_view name) {
  bool seen = false;
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    if (!used_[i] && tokens_[i] == name) used_[i] = seen = true;
  return seen;
}

std::optional<std::string> Args::option(std::string_view name) {
  std::vector<std::string> all = repeated(name);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::vector<std::string> Args::repeated(std::string_view name) {
  std::vector<std::string> values;
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if (used_[i]) continue;
    const std::string& token = tokens_[i];
    if (token == name) {
      if (i + 1 >= tokens_.size()) fail("{}: option {} needs a value", command_, name);
      used_[i] = used_[i + 1] = true;
      values.push_back(tokens_[i + 1]);
      ++i;
    } else if (token.size() > name.size() && token.compare(0, name.size(), name) == 0 && token[name.size()] == '=') {
      used_[i] = true;
      values.push_back(token.substr(name.size() + 1));
    }
  }
  return values;
}

std::string Args::required(std::string_view name) {
  auto value = option(name);
  if (!value) fail("{}: option {} is required (see minitx {} --help)", command_, name, command_);
  return *value;
}

std::int64_t Args::integer(std::string_view name, std::int64_t lo, std::int64_t hi, std::int64_t fallback) {
  const auto text = option(name);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0 || value < lo || value > hi)
    fail("{}: {} expects an integer from {} to {}, got '{}'", command_, name, lo, hi, excerpt(*text));
  return value;
}

double Args::number(std::string_view name, double lo, double hi, double fallback) {
  const auto text = option(name);
  if (!text) return fallback;
  char* end = nullptr;
  const double value = std::strtod(text->c_str(), &end);
  if (text->empty() || *end != '\0' || !std::isfinite(value) || value < lo || value > hi)
    fail("{}: {} expects a number from {} to {}, got '{}'", command_, name, lo, hi, excerpt(*text));
  return value;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    if (!used_[i] && tokens_[i].rfind("--", 0) != 0) {
      used_[i] = true;
      out.push_back(tokens_[i]);
    }
  return out;
}

void Args::done() {
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    if (!used_[i]) {
      if (tokens_[i].rfind("--", 0) == 0) fail("{}: unknown option '{}' (see minitx {} --help)", command_, excerpt(tokens_[i]), command_);
      fail("{}: unexpected argument '{}' (see minitx {} --help)", command_, excerpt(tokens_[i]), command_);
    }
}

}  // namespace minitx::cli
