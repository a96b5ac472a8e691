// Errors: one exception type whose message is complete and user-facing. The CLI prints it
// after "minitx: " and exits non-zero; library code never prints and exits on its own.
#pragma once
#include <fmt/format.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace minitx {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// User input as a message quotes it: at most `max_chars` characters, then "…", with control
// characters escaped, so that an error never echoes megabytes or breaks its line.
std::string excerpt(std::string_view text, std::size_t max_chars = 80);

// Checks an invariant that input data must satisfy; the message says what was expected.
#define MINITX_CHECK(cond, ...)                  \
  do {                                           \
    if (!(cond)) ::minitx::fail(__VA_ARGS__);    \
  } while (0)

}  // namespace minitx
