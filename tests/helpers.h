// Shared test helpers.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "minitx/core/error.h"

namespace minitx::test {

// Runs the body of a test inside a directory, restoring the old working directory after.
class InDirectory {
 public:
  explicit InDirectory(const std::filesystem::path& dir) : old_(std::filesystem::current_path()) { std::filesystem::current_path(dir); }
  ~InDirectory() { std::filesystem::current_path(old_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  std::filesystem::path old_;
};

}  // namespace minitx::test

// Checks that `expr` throws minitx::Error whose message contains `needle`.
#define CHECK_ERROR_CONTAINS(expr, needle)                                                       \
  do {                                                                                           \
    try {                                                                                        \
      (void)(expr);                                                                              \
      FAIL_CHECK("expected an error containing \"" << (needle) << "\", got none");              \
    } catch (const ::minitx::Error& error_) {                                                    \
      const std::string message_ = error_.what();                                                \
      CHECK_MESSAGE(message_.find(needle) != std::string::npos, "message: " << message_);       \
    }                                                                                            \
  } while (0)
