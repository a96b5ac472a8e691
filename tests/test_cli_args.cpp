#include <doctest/doctest.h>

#include "../src/cli/args.h"
#include "helpers.h"

using minitx::cli::Args;

TEST_CASE("args: options, flags, repeats, positionals") {
  Args args("pack", {"--output", "x.tgz", "--exclude=a", "f1", "--exclude", "b", "--verbose", "f2", "--n", "7", "--lr", "0.5"});
  CHECK(args.required("--output") == "x.tgz");
  CHECK(args.repeated("--exclude") == std::vector<std::string>{"a", "b"});
  CHECK(args.flag("--verbose"));
  CHECK_FALSE(args.flag("--quiet"));
  CHECK(args.integer("--n", 0, 10, 1) == 7);
  CHECK(args.number("--lr", 0, 1, 0.1) == 0.5);
  CHECK(args.integer("--absent", 0, 10, 3) == 3);
  CHECK(args.positionals() == std::vector<std::string>{"f1", "f2"});
  args.done();
}

TEST_CASE("args: errors say which option and what was expected") {
  Args a("fetch", {"--config"});
  CHECK_ERROR_CONTAINS(a.option("--config"), "fetch: option --config needs a value");
  Args b("fetch", {});
  CHECK_ERROR_CONTAINS(b.required("--config"), "fetch: option --config is required (see minitx fetch --help)");
  Args c("gen", {"--n", "11", "--t", "x"});
  CHECK_ERROR_CONTAINS(c.integer("--n", 0, 10, 0), "gen: --n expects an integer from 0 to 10, got '11'");
  CHECK_ERROR_CONTAINS(c.number("--t", 0, 1, 0), "gen: --t expects a number from 0 to 1, got 'x'");
  Args d("fetch", {"--colour", "x"});
  CHECK_ERROR_CONTAINS(d.done(), "fetch: unknown option '--colour'");
  Args e("fetch", {"stray"});
  CHECK_ERROR_CONTAINS(e.done(), "fetch: unexpected argument 'stray'");
}

TEST_CASE("args: a value of a megabyte is quoted in part") {
  const std::string huge(1 << 20, '9');
  Args a("eval", {"--batch-size", huge, "--" + huge});
  try {
    a.integer("--batch-size", 1, 4096, 1);
    FAIL("accepted");
  } catch (const minitx::Error& e) {
    CHECK(std::string(e.what()) == "eval: --batch-size expects an integer from 1 to 4096, got '" + std::string(80, '9') + "…'");
  }
  try {
    a.done();
    FAIL("accepted");
  } catch (const minitx::Error& e) {
    CHECK(std::string(e.what()) == "eval: unknown option '--" + std::string(78, '9') + "…' (see minitx eval --help)");
  }
}
