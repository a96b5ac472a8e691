#include <doctest/doctest.h>
#include <sys/stat.h>

#include "helpers.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/tar.h"
#include "minitx/release/provenance.h"
#include "minitx/release/release.h"

using namespace minitx;

namespace {

// A small project tree: sources and a results directory, inside the current directory.
PackOptions make_tree() {
  write_file_atomic("src/a.cpp", "int a;\n");
  write_file_atomic("src/b.cpp", "int b;\n");
  write_file_atomic("run.sh", "#!/bin/sh\n");
  ::chmod("run.sh", 0775);
  write_file_atomic("out/model.ckpt", std::string(5000, 'm'));
  write_file_atomic("out/.stamps/x", "hidden");
  write_file_atomic("out/log.csv.tmp-123", "in progress");
  PackOptions options;
  options.output = "dist/minitx-9.9.9.tar.gz";
  options.prefix = "minitx-9.9.9";
  options.files = {"src/b.cpp", "run.sh", "src/a.cpp"};
  options.results_dir = "out";
  options.source_date_epoch = 1700000000;
  return options;
}

// Writes an archive of the given entries and its matching .sha256, as a tamperer would.
void write_release(const std::string& path, TarWriter& tar) {
  const std::string gz = gzip_compress(tar.finish());
  write_file_atomic(path, gz);
  write_file_atomic(path + ".sha256", sha256_hex(gz) + "  " + fs::path(path).filename().string() + "\n");
}

// The archive of a tamperer: the manifest of a.txt = "A" and b.txt = "B", then `entries`
// (path, tar type, data or link target) under r/, with a matching .sha256.
struct Entry {
  std::string path;
  char type = '0';
  std::string data;
};
void write_tampered(const std::string& path, const std::string& manifest, const std::vector<Entry>& entries) {
  TarWriter tar(0);
  if (!manifest.empty()) tar.add_file("r/MANIFEST.sha256", manifest, false);
  for (const Entry& e : entries) {
    const bool link = e.type == '1' || e.type == '2';
    tar.add_entry(e.path, e.type, link ? "" : e.data, link ? e.data : "", 0644);
  }
  write_release(path, tar);
}

std::string manifest_for(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<ManifestEntry> entries;
  for (const auto& [path, data] : files) entries.push_back({sha256_hex(data), path});
  return format_manifest(entries);
}

}  // namespace

TEST_CASE("release: pack is deterministic and verify accepts it") {
  TempDir dir;
  test::InDirectory cd(dir.path());
  const PackOptions options = make_tree();
  const PackResult first = pack_release(options);
  CHECK(first.files == 5);  // 3 sources + 1 result + the manifest
  const std::string sum = read_file("dist/minitx-9.9.9.tar.gz.sha256");
  CHECK(sum == first.sha256 + "  minitx-9.9.9.tar.gz\n");

  // Another order of arguments, other mtimes and permissions: the same bytes.
  ::chmod("src/a.cpp", 0600);
  PackOptions again = options;
  again.files = {"src/a.cpp", "./run.sh", "src/b.cpp"};
  CHECK(pack_release(again).sha256 == first.sha256);
  again.source_date_epoch = 1;
  CHECK(pack_release(again).sha256 != first.sha256);
  pack_release(options);

  const ReleaseReport report = verify_release("dist/minitx-9.9.9.tar.gz");
  CHECK(report.files == 4);
  CHECK(report.sha256 == first.sha256);

  const std::string archive = gzip_decompress(read_file("dist/minitx-9.9.9.tar.gz"), "t");
  const auto entries = parse_tar(archive, "t");
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.path);
  CHECK(names == std::vector<std::string>{"minitx-9.9.9/MANIFEST.sha256", "minitx-9.9.9/out/model.ckpt", "minitx-9.9.9/run.sh",
                                          "minitx-9.9.9/src/a.cpp", "minitx-9.9.9/src/b.cpp"});
  CHECK(entries[2].mode == 0755);
  CHECK(entries[3].mode == 0644);
  CHECK(entries[0].data == manifest_for({{"out/model.ckpt", std::string(5000, 'm')}, {"run.sh", "#!/bin/sh\n"},
                                          {"src/a.cpp", "int a;\n"}, {"src/b.cpp", "int b;\n"}}));
}

TEST_CASE("release: pack refuses bad input") {
  TempDir dir;
  test::InDirectory cd(dir.path());
  PackOptions options = make_tree();
  options.files.push_back("missing.cpp");
  CHECK_ERROR_CONTAINS(pack_release(options), "pack: 'missing.cpp' is not a regular file");
  options.files.back() = "/etc/hostname";
  CHECK_ERROR_CONTAINS(pack_release(options), "pack: '/etc/hostname': absolute path");
  options.files.back() = "../x";
  CHECK_ERROR_CONTAINS(pack_release(options), "path leaves the tree");
  options = make_tree();
  options.prefix = "a/b";
  CHECK_ERROR_CONTAINS(pack_release(options), "must be a single directory name");
  CHECK_FALSE(fs::exists("dist/minitx-9.9.9.tar.gz"));

  CHECK(parse_source_date_epoch("0") == 0);
  CHECK(parse_source_date_epoch("1700000000") == 1700000000);
  CHECK_ERROR_CONTAINS(parse_source_date_epoch("17e8"), "SOURCE_DATE_EPOCH: expected whole seconds since 1970");
  CHECK_ERROR_CONTAINS(parse_source_date_epoch(""), "got ''");
  CHECK_ERROR_CONTAINS(parse_source_date_epoch("-1"), "got '-1'");
  CHECK_ERROR_CONTAINS(parse_source_date_epoch("99999999999999"), "SOURCE_DATE_EPOCH");
}

TEST_CASE("release: verify names what is wrong") {
  TempDir dir;
  test::InDirectory cd(dir.path());
  const std::string tgz = "dist/r.tar.gz";
  const std::string good_manifest = manifest_for({{"a.txt", "A"}, {"b.txt", "B"}});

  SUBCASE("a flipped byte") {
    write_tampered(tgz, good_manifest, {{"r/a.txt", '0', "A"}, {"r/b.txt", '0', "B"}});
    CHECK(verify_release(tgz).files == 2);
    std::string bytes = read_file(tgz);
    bytes[bytes.size() / 2] ^= 0x20;
    write_file_atomic(tgz, bytes);
    CHECK_ERROR_CONTAINS(verify_release(tgz), "dist/r.tar.gz: SHA-256 mismatch: r.tar.gz.sha256 says");
  }
  SUBCASE("a changed file whose archive hash was updated") {
    write_tampered(tgz, good_manifest, {{"r/a.txt", '0', "a"}, {"r/b.txt", '0', "B"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r/a.txt: SHA-256 mismatch: manifest " + sha256_hex("A"));
  }
  SUBCASE("a missing file") {
    write_tampered(tgz, good_manifest, {{"r/b.txt", '0', "B"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r/a.txt: listed in MANIFEST.sha256 but missing");
  }
  SUBCASE("an extra file") {
    write_tampered(tgz, good_manifest, {{"r/a.txt", '0', "A"}, {"r/b.txt", '0', "B"}, {"r/sub/extra.sh", '0', "rm -rf /"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r/sub/extra.sh: present but not listed in MANIFEST.sha256");
  }
  SUBCASE("path traversal") {
    write_tampered(tgz, good_manifest, {{"r/../../evil.txt", '0', "x"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'r/../../evil.txt': path leaves the tree");
    CHECK_FALSE(fs::exists("evil.txt"));
  }
  SUBCASE("absolute path") {
    write_tampered(tgz, "", {{"/tmp/minitx-evil.txt", '0', "x"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'/tmp/minitx-evil.txt': absolute path");
  }
  SUBCASE("a link that leaves the tree") {
    write_tampered(tgz, good_manifest, {{"r/a.txt", '2', "../../../etc/passwd"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz),
                         "'r/a.txt': symbolic link to '../../../etc/passwd'; a release holds only regular files and directories");
  }
  SUBCASE("a device file") {
    write_tampered(tgz, good_manifest, {{"r/null", '3', ""}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'r/null': device, fifo or other special file");
  }
  SUBCASE("entries outside the release directory, duplicates, hard links") {
    write_tampered(tgz, good_manifest, {{"other/a.txt", '0', "A"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'other/a.txt': outside the release directory 'r/'");
    write_tampered(tgz, "", {{"r/a.txt", '0', "A"}, {"r/a.txt", '0', "A"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'r/a.txt': appears twice");
    write_tampered(tgz, "", {{"r/a.txt", '1', "r/nothing"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "hard link to 'r/nothing'");
    // Even a hard link to an earlier file of the archive: pack never writes one.
    write_tampered(tgz, good_manifest, {{"r/a.txt", '0', "A"}, {"r/b.txt", '1', "r/a.txt"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'r/b.txt': hard link to 'r/a.txt'; a release holds only regular files and directories");
    write_tampered(tgz, good_manifest, {{"r/d", '5', ""}, {"r/h", '1', "r/d"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "'r/h': hard link to 'r/d'; a release holds only regular files and directories");
  }
  SUBCASE("a file where the tree needs a directory") {
    write_tampered(tgz, good_manifest, {{"r/a.txt", '0', "A"}, {"r/a.txt/b.txt", '0', "B"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "dist/r.tar.gz: 'r/a.txt/b.txt': 'r/a.txt' is a file, not a directory");
  }
  SUBCASE("a path of a megabyte is quoted in part") {
    const std::string path = "r/" + std::string(1 << 20, 'p');
    const std::string record = " path=" + path + "\n";
    std::string length = std::to_string(record.size());
    length = std::to_string(record.size() + length.size());
    TarWriter tar(0);
    tar.add_entry("r/PaxHeader", 'x', length + record, "", 0644);
    tar.add_file("r/x", "x", false);
    write_release(tgz, tar);
    try {
      verify_release(tgz);
      FAIL("verify accepted a path of a megabyte");
    } catch (const Error& e) {
      const std::string message = e.what();
      CHECK(message.find("'r/" + std::string(78, 'p') + "…'") != std::string::npos);
      CHECK(message.size() < 300);
    }
  }
  SUBCASE("malformed manifest, sums file, archive") {
    write_tampered(tgz, "not a manifest\n", {});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "MANIFEST.sha256: line 1: expected \"<64 hex digits>  <path>\"");
    write_tampered(tgz, "", {{"r/a.txt", '0', "A"}});
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r/MANIFEST.sha256 is missing");
    write_file_atomic(tgz + ".sha256", "abc  r.tar.gz\n");
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r.tar.gz.sha256: expected one line");
    fs::remove(tgz + ".sha256");
    CHECK_ERROR_CONTAINS(verify_release(tgz), "r.tar.gz.sha256: missing; run `make pack`");
    fs::remove(tgz);
    CHECK_ERROR_CONTAINS(verify_release(tgz), "dist/r.tar.gz: missing; run `make pack`");
    write_file_atomic(tgz, "not gzip");
    write_file_atomic(tgz + ".sha256", sha256_hex("not gzip") + "  r.tar.gz\n");
    CHECK_ERROR_CONTAINS(verify_release(tgz), "dist/r.tar.gz: not valid gzip data");
    TarWriter empty(0);
    write_release(tgz, empty);
    CHECK_ERROR_CONTAINS(verify_release(tgz), "the archive is empty");
  }
}

TEST_CASE("release: verify writes nothing through links and leaves nothing behind") {
  TempDir dir;
  test::InDirectory cd(dir.path());
  fs::create_directories("tmp");
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir != nullptr ? old_tmpdir : "";
  setenv("TMPDIR", (dir.path() / "tmp").c_str(), 1);
  // Each link seems to stay inside the tree, read alone; together they climb from the scratch
  // directory to TMPDIR and then to its parent, where a later member would land.
  write_tampered("dist/r.tar.gz", manifest_for({{"a.txt", "A"}}),
                 {{"r/a", '2', "."}, {"r/a/b", '2', ".."}, {"r/a/b/c", '2', ".."}, {"r/a/b/c/d", '2', ".."},
                  {"r/a/b/c/d/evil.txt", '0', "written outside"}});
  CHECK_ERROR_CONTAINS(verify_release("dist/r.tar.gz"), "'r/a': symbolic link to '.'; a release holds only regular files");
  // A failure after unpacking began leaves no scratch directory either.
  write_tampered("dist/r.tar.gz", manifest_for({{"a.txt", "A"}}), {{"r/a.txt", '0', "A"}, {"r/a.txt/x", '0', "x"}});
  CHECK_ERROR_CONTAINS(verify_release("dist/r.tar.gz"), "'r/a.txt' is a file, not a directory");
  if (old_tmpdir != nullptr) setenv("TMPDIR", saved.c_str(), 1);
  else unsetenv("TMPDIR");
  CHECK_FALSE(fs::exists("evil.txt"));
  CHECK_FALSE(fs::exists("tmp/evil.txt"));
  CHECK(fs::is_empty("tmp"));
}

TEST_CASE("release: verify stops inflating a gzip bomb at a bound set by the tarball's size") {
  TempDir dir;
  test::InDirectory cd(dir.path());
  // 80 MiB of zeros deflate to about 80 kB: far past 32 times that, and past the 64 MiB floor.
  TarWriter tar(0);
  tar.add_file("r/zeros", std::string(80u << 20, '\0'), false);
  write_release("dist/r.tar.gz", tar);
  CHECK(fs::file_size("dist/r.tar.gz") < (1u << 20));
  CHECK_ERROR_CONTAINS(verify_release("dist/r.tar.gz"),
                       "dist/r.tar.gz: decompresses to more than 67108864 bytes, the most it may hold; refusing it");
}

TEST_CASE("manifest: parse is strict") {
  const std::string line = sha256_hex("x") + "  a/b.txt\n";
  CHECK(parse_manifest(line, "m").at(0).path == "a/b.txt");
  CHECK_ERROR_CONTAINS(parse_manifest(line.substr(0, line.size() - 1), "m"), "m: line 1: missing final newline");
  CHECK_ERROR_CONTAINS(parse_manifest(sha256_hex("x") + "  ../b\n", "m"), "m: line 1: '../b': path leaves the tree");
  CHECK_ERROR_CONTAINS(parse_manifest(sha256_hex("x") + " b\n", "m"), "expected \"<64 hex digits>  <path>\"");
}

TEST_CASE("provenance: stage records, source state and the JSON") {
  const StageRecord r = parse_stage_record("tokenizer:corpus/x.txt,out/.stamps/t.sha256:out/tokenizer.json");
  CHECK(r.name == "tokenizer");
  CHECK(r.inputs == std::vector<std::string>{"corpus/x.txt", "out/.stamps/t.sha256"});
  CHECK(r.outputs == std::vector<std::string>{"out/tokenizer.json"});
  CHECK(parse_stage_record("empty::").inputs.empty());
  CHECK_ERROR_CONTAINS(parse_stage_record("a:b"), "expected NAME:INPUT,…:OUTPUT,…");

  TempDir dir;
  test::InDirectory cd(dir.path());
  setenv("MINITX_SOURCE_COMMIT", "abc123", 1);
  setenv("MINITX_SOURCE_DIRTY", "1", 1);
  const SourceState state = source_state();
  unsetenv("MINITX_SOURCE_COMMIT");
  unsetenv("MINITX_SOURCE_DIRTY");
  CHECK(state.commit == "abc123");
  CHECK(state.dirty);
  CHECK(source_state().commit == "unknown");  // a temporary directory is no git checkout

  write_file_atomic("c.toml", "x");
  write_file_atomic("in.txt", "input");
  write_file_atomic("out.txt", "output");
  Experiment e;
  e.name = "c";
  e.config_path = "./c.toml";
  e.corpus.name = "k";
  e.corpus.sha256 = sha256_hex("k");
  const std::string json = provenance_json(e, {parse_stage_record("s:in.txt:out.txt")}, state, false);
  CHECK(json == provenance_json(e, {parse_stage_record("s:in.txt:out.txt")}, state, false));
  CHECK(json.find("\"path\": \"c.toml\"") != std::string::npos);
  CHECK(json.find(sha256_hex("output")) != std::string::npos);
  CHECK(json.find("\"commit\": \"abc123\"") != std::string::npos);
  CHECK(json.find("\"isa\": \"x86-64-v3\"") != std::string::npos);
  CHECK(json.find(dir.path().string()) == std::string::npos);  // no absolute paths
  CHECK_ERROR_CONTAINS(provenance_json(e, {parse_stage_record("s:missing.txt:")}, state, false), "'missing.txt' does not exist");
  CHECK_ERROR_CONTAINS(provenance_json(e, {parse_stage_record("s:/etc/hostname:")}, state, false), "absolute path");
  CHECK_ERROR_CONTAINS(provenance_json(e, {parse_stage_record("s\xff:in.txt:")}, state, false),
                       "provenance: a stage name, path or config value is not valid UTF-8");
}
