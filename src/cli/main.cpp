// build/minitx: global options, then one subcommand (see commands.cpp).
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "common.h"
#include "minitx/backend/cpu/gemm.h"
#include "minitx/core/error.h"
#include "minitx/core/memory.h"
#include "minitx/core/threads.h"

namespace minitx::cli {
namespace {

void print_help() {
  fmt::print(
      "minitx {} - a reproducible laboratory for small transformers\n\n"
      "usage: minitx [--threads N] <command> [options]\n"
      "       minitx <command> --help     options of one command\n"
      "       minitx --version\n\n"
      "--threads N   worker threads (default: MINITX_THREADS, else all cores); results do not depend on it\n"
      "MINITX_GEMM_ISA=avx2|avx512  the matrix-product kernels, fp32 and quantized (default: avx512,\n"
      "              with VNNI for q8_0/q4_0, where the CPU has it); results do not depend on it either\n\n"
      "commands:\n",
      MINITX_VERSION);
  for (const Command& c : commands()) fmt::print("  {:<22} {}\n", c.name, c.summary);
}

// The command whose words match the most leading arguments ("tokenizer train" before "tokenizer").
const Command* find_command(const std::vector<std::string>& argv, std::size_t* words) {
  const Command* best = nullptr;
  std::size_t best_words = 0;
  for (const Command& c : commands()) {
    std::size_t n = 0, pos = 0;
    bool match = true;
    while (pos <= c.name.size()) {
      const std::size_t end = std::min(c.name.find(' ', pos), c.name.size());
      if (n >= argv.size() || argv[n] != c.name.substr(pos, end - pos)) {
        match = false;
        break;
      }
      ++n;
      pos = end + 1;
    }
    if (match && n > best_words) best = &c, best_words = n;
  }
  *words = best_words;
  return best;
}

int run(int argc, char** argv) {
  std::vector<std::string> tokens(argv + 1, argv + argc);
  std::size_t i = 0;
  for (; i < tokens.size() && tokens[i].rfind("--", 0) == 0; ++i) {
    if (tokens[i] == "--help" || tokens[i] == "-h") {
      print_help();
      return 0;
    }
    if (tokens[i] == "--version") {
      fmt::print("minitx {}\n", MINITX_VERSION);
      return 0;
    }
    if (tokens[i] == "--threads" && i + 1 < tokens.size()) {
      const std::string& value = tokens[++i];
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > 1024) fail("--threads: expected a whole number from 1 to 1024, got '{}'", excerpt(value));
      set_thread_count(static_cast<int>(n));
      continue;
    }
    fail("unknown global option '{}' (see minitx --help)", excerpt(tokens[i]));
  }
  tokens.erase(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(i));
  if (tokens.empty()) {
    print_help();
    return 2;
  }
  std::size_t words = 0;
  const Command* command = find_command(tokens, &words);
  if (command == nullptr) fail("unknown command '{}' (see minitx --help)", excerpt(tokens[0]));
  tokens.erase(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(words));
  for (const auto& t : tokens)
    if (t == "--help" || t == "-h") {
      fmt::print("usage: minitx {}\n\n{}\n", command->name, command->usage);
      return 0;
    }
  Args args(std::string(command->name), std::move(tokens));
  cpu::gemm_isa();  // a malformed MINITX_GEMM_ISA stops here, before any output
  return command->run(args);
}

}  // namespace
}  // namespace minitx::cli

namespace {

int report(const std::string& message, int status) {
  std::fflush(stdout);
  std::fprintf(stderr, "minitx: %s\n", message.c_str());
  return status;
}

// A filesystem error is about the user's files, not a bug of ours: "<path>: <operation>: <reason>"
// from libstdc++'s "filesystem error: <operation>: <reason> [<path>]".
std::string describe(const std::filesystem::filesystem_error& e) {
  constexpr std::string_view kLabel = "filesystem error: ";
  std::string text = e.what();
  if (text.rfind(kLabel, 0) == 0) text.erase(0, kLabel.size());
  std::string paths;
  for (const auto* path : {&e.path1(), &e.path2()}) {
    if (path->empty()) continue;
    const std::string suffix = " [" + path->string() + "]";
    if (const std::size_t at = text.rfind(suffix); at != std::string::npos) text.erase(at, suffix.size());
    paths += (paths.empty() ? "" : ", ") + minitx::excerpt(path->string());
  }
  return paths.empty() ? text : paths + ": " + text;
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (`ulimit -f`) would kill the process in the middle of a write, with no
  // message and the temporary file left behind; ignored, the write fails with EFBIG instead,
  // which AtomicFile reports and cleans up after.
  std::signal(SIGXFSZ, SIG_IGN);
  minitx::set_allocation_policy();
  try {
    const int status = minitx::cli::run(argc, argv);
    minitx::cli::flush_stdout();
    return status;
  } catch (const minitx::Error& e) {
    return report(e.what(), 1);
  } catch (const std::filesystem::filesystem_error& e) {
    return report(describe(e), 1);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    // fmt::print throws when standard output fails; that is the user's device, not a bug.
    if (std::ferror(stdout)) return report(fmt::format("standard output: write error ({})", e.what()), 1);
    return report(fmt::format("internal error: {}", e.what()), 2);
  }
}
