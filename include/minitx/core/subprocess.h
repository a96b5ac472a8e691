// Runs another program (npm, curl, git) without a shell: arguments are passed as they are,
// and both output streams are captured.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace minitx {

struct ProcessResult {
  bool started = false;  // false when the program could not be found or executed
  int exit_code = -1;    // 128 + signal number when killed by a signal
  std::string out, err;
  bool ok() const { return started && exit_code == 0; }
};

ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

// The last `lines` non-empty lines of a program's output, for error messages.
std::string tail_lines(const std::string& text, int lines);

}  // namespace minitx
