#include <doctest/doctest.h>

#include "helpers.h"
#include "minitx/core/config.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/experiment.h"

using namespace minitx;

namespace {
const char* kGood = R"(
title = "x"
[train]
steps = 100
lr = 0.001
warm = 3
flags = ["a", "b"]
fast = true

[[train.runs]]
name = "one"
[[train.runs]]
name = "two"
)";
}

TEST_CASE("config: typed getters with ranges and defaults") {
  const ConfigFile file = ConfigFile::parse(kGood, "t.toml");
  const ConfigSection root = file.root();
  CHECK(root.string("title") == "x");
  const ConfigSection train = root.table("train");
  CHECK(train.integer("steps", 1, 1000) == 100);
  CHECK(train.number("lr", 0, 1) == doctest::Approx(0.001));
  CHECK(train.number("warm", 0, 10) == 3.0);  // integers are numbers too
  CHECK(train.number("missing", 0, 1, 0.5) == 0.5);
  CHECK(train.integer("missing", 0, 9, 7) == 7);
  CHECK(train.boolean("fast", false));
  CHECK(train.strings("flags") == std::vector<std::string>{"a", "b"});
  CHECK(train.choice("mode", {"cpu", "cuda"}, "cpu") == "cpu");
  const auto runs = train.tables("runs");
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].string("name") == "one");
  CHECK(runs[1].string("name") == "two");
  CHECK(runs[1].path() == "train.runs[2]");
  for (const auto& r : runs) r.finish();
  train.finish();
  root.finish();
  CHECK_FALSE(root.optional_table("nothing").has_value());
}

TEST_CASE("config: errors name file, line and key") {
  const ConfigFile file = ConfigFile::parse(kGood, "t.toml");
  const ConfigSection train = file.root().table("train");
  CHECK_ERROR_CONTAINS(train.integer("steps", 1, 10), "t.toml:4: [train] steps: expected an integer from 1 to 10, got 100");
  CHECK_ERROR_CONTAINS(train.integer("lr", 1, 10), "t.toml:5: [train] lr: expected an integer from 1 to 10, got 0.001");
  CHECK_ERROR_CONTAINS(train.string("steps"), "[train] steps: expected a string, got 100");
  CHECK_ERROR_CONTAINS(train.number("lr", 0.01, 1), "expected a number from 0.01 to 1, got 0.001");
  CHECK_ERROR_CONTAINS(train.boolean("steps", false), "expected true or false, got 100");
  CHECK_ERROR_CONTAINS(train.string("absent"), "[train] absent: missing (this key is required)");
  CHECK_ERROR_CONTAINS(train.strings("fast"), "expected an array of strings, got true");
  CHECK_ERROR_CONTAINS(train.table("steps"), "expected a table, got 100");
  CHECK_ERROR_CONTAINS(train.tables("flags"), "expected a non-empty array of tables ([[train.flags]])");
  CHECK_ERROR_CONTAINS(train.choice("mode", {"cpu"}, "gpu"), "expected one of \"cpu\", got \"gpu\"");

  const ConfigFile mixed = ConfigFile::parse("a = [\"x\", 2]\n", "m.toml");
  CHECK_ERROR_CONTAINS(mixed.root().strings("a"), "m.toml:1: a: item 2: expected a string, got 2");
}

TEST_CASE("config: values and keys of a megabyte are quoted in part, and hashed whole") {
  const std::string huge(1 << 20, 'v');
  const ConfigFile file = ConfigFile::parse("[s]\nmode = \"" + huge + "\"\n\"" + huge + "\" = 1\n", "h.toml");
  const ConfigSection s = file.root().table("s");
  CHECK_ERROR_CONTAINS(s.integer("mode", 0, 1), "h.toml:2: [s] mode: expected an integer from 0 to 1, got \"" + std::string(80, 'v') + "…\"");
  CHECK_ERROR_CONTAINS(s.choice("mode", {"a"}, "a"), "got \"" + std::string(80, 'v') + "…\"");
  try {
    s.finish();
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "h.toml:3: [s] " + std::string(80, 'v') + "…: unknown key");
  }
  const ConfigFile other = ConfigFile::parse("[s]\nmode = \"" + huge + "w\"\n", "o.toml");
  CHECK(file.canonical_section("s").find(huge) != std::string::npos);
  CHECK(other.canonical_section("s") != ConfigFile::parse("[s]\nmode = \"" + huge + "\"\n", "p.toml").canonical_section("s"));
}

TEST_CASE("excerpt: at most 80 characters, whole UTF-8 sequences, control characters escaped") {
  CHECK(excerpt("short") == "short");
  CHECK(excerpt(std::string(80, 'a')) == std::string(80, 'a'));
  CHECK(excerpt(std::string(81, 'a')) == std::string(80, 'a') + "…");
  CHECK(excerpt(std::string(79, 'a') + "éé") == std::string(79, 'a') + "é…");
  CHECK(excerpt("line\nnext\ttab\x01") == "line\\nnext\\ttab\\x01");
  CHECK(excerpt("abcdef", 3) == "abc…");
}

TEST_CASE("config: unknown keys are errors with their line") {
  const ConfigFile file = ConfigFile::parse("[train]\nsteps = 1\nstesp = 2\n", "u.toml");
  const ConfigSection train = file.root().table("train");
  train.integer("steps", 0, 10);
  CHECK_ERROR_CONTAINS(train.finish(), "u.toml:3: [train] stesp: unknown key");
}

TEST_CASE("config: syntax errors name line and column") {
  CHECK_ERROR_CONTAINS(ConfigFile::parse("[train\n", "s.toml"), "s.toml:1:");
  CHECK_ERROR_CONTAINS(ConfigFile::parse("a = 1\na = 2\n", "d.toml"), "d.toml:2:");
  CHECK_ERROR_CONTAINS(ConfigFile::load("/nonexistent.toml"), "/nonexistent.toml: cannot open");
}

// Found by `make fuzz` (fuzz/findings/config-*): each aborted or reached undefined behaviour
// inside toml++ 3.3.0 before config.cpp guarded it.
TEST_CASE("config: texts that break toml++'s own checks are syntax errors, not aborts") {
  CHECK_ERROR_CONTAINS(ConfigFile::parse("[\nmodel]\n", "k.toml"), "k.toml: TOML syntax error");
  CHECK_ERROR_CONTAINS(ConfigFile::parse("[[\ncorpus.sources]]\n", "k.toml"), "k.toml: TOML syntax error");
  CHECK_ERROR_CONTAINS(ConfigFile::parse("a = [}", "v.toml"), "v.toml: TOML syntax error");
  CHECK_ERROR_CONTAINS(ConfigFile::parse("[a\u3001]", "u.toml"),
                       "u.toml:1:3: TOML syntax error: a character past ASCII outside a string or comment");
  CHECK_ERROR_CONTAINS(ConfigFile::parse("x = 1\n  \u00e9 = 2\n", "e.toml"), "e.toml:2:3: TOML syntax error");
  // A value running into a quote and a character past ASCII (U+01E6): toml++ scans it as a value.
  CHECK_ERROR_CONTAINS(ConfigFile::parse("steps = 2\"fe\u01e6f3\"\n", "s.toml"), "s.toml:1:");
}

// Found by `make fuzz` (fuzz/findings/config-39578556…): toml++'s formatter, which made the
// canonical text before, casts log10 of a float below 1 in an array to size_t.
TEST_CASE("config: canonical text is one line per key, exact numbers, escaped strings") {
  const ConfigFile c = ConfigFile::parse("[s]\nb = [6e-4, 1.0, 2, -0.5]\na = \"x\\\"y\"\n[s.t]\nz = 1\n[[s.u]]\nw = true\n", "c.toml");
  CHECK(c.canonical_section("s") ==
        "\"a\" = \"x\\\"y\"\n\"b\" = [0.0006, 1.0, 2, -0.5]\n\"t\" = {\"z\" = 1}\n\"u\" = [{\"w\" = true}]\n");
  CHECK(c.canonical_section("missing").empty());
}

TEST_CASE("config: characters past ASCII are fine in strings and comments") {
  const ConfigFile c = ConfigFile::parse(
      "# caf\u00e9\n"
      "a = \"\u3001 \\\" \u00e9\" # \u00e9\n"
      "b = '\u00e9\\'\n"
      "c = \"\"\"\n\u00e9 \"\" \u3001\"\"\"\n"
      "d = '''\u00e9\n\u00e9'''\n"
      "\"\u00e9\" = 1\n",
      "ok.toml");
  const ConfigSection root = c.root();
  CHECK(root.string("a") == "\u3001 \" \u00e9");
  CHECK(root.string("b") == "\u00e9\\");
  CHECK(root.string("c") == "\u00e9 \"\" \u3001");
  CHECK(root.string("d") == "\u00e9\n\u00e9");
}

TEST_CASE("config: a section's canonical text ignores layout and order, not content") {
  const ConfigFile a = ConfigFile::parse("[s]\nx = 1\ny = \"b\"\n[t]\nz = 2\n", "a");
  const ConfigFile b = ConfigFile::parse("# comment\n[t]\nz = 3\n[s]\ny =   'b'\nx = 1\n", "b");
  CHECK(a.canonical_section("s") == b.canonical_section("s"));
  CHECK(a.canonical_section("t") != b.canonical_section("t"));
  CHECK(a.canonical_section("none").empty());
}

TEST_CASE("experiment: shipped configs load; out dirs are per config") {
  for (const char* name : {"default", "tiny", "gpu"}) {
    const Experiment e = load_experiment(std::string("configs/") + name + ".toml");
    CHECK(e.name == name);
    CHECK(e.out_dir == (std::string(name) == "default" ? fs::path("out") : fs::path("out") / name));
    CHECK(is_sha256_hex(e.corpus.sha256));
  }
  TempDir dir;
  write_file_atomic(dir.path() / "bad.toml", "[corpus]\nname = \"x\"\nsha256 = \"" + std::string(64, '0') +
                                                  "\"\n[[corpus.sources]]\nurl = \"file://x\"\n[mystery]\n");
  CHECK_ERROR_CONTAINS(load_experiment(dir.path() / "bad.toml"), "bad.toml:6: mystery: unknown key");
}
