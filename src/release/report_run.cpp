// The sections about what ran: the experiment (config, corpus, commit, toolchain, device from
// provenance.json) and the tokenizer (vocabulary and compression).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "minitx/core/error.h"
#include "minitx/data/token_file.h"
#include "minitx/tokenizer/tokenizer.h"
#include "report_parts.h"

namespace minitx::report {
namespace {

using Facts = std::vector<std::pair<std::string, std::string>>;  // label, HTML value

std::string facts_html(const Facts& facts) {
  std::string out = "<dl class=\"facts\">\n";
  for (const auto& [label, value] : facts) out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", escape(label), value);
  return out + "</dl>\n";
}

std::string code(std::string_view text) { return fmt::format("<code>{}</code>", escape(text)); }

nlohmann::json read_json(const fs::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

// A string at `pointer` ("/source/commit"), or a named error.
std::string json_string(const nlohmann::json& doc, const char* pointer, const fs::path& path) {
  const nlohmann::json::json_pointer at(pointer);
  if (!doc.contains(at) || !doc[at].is_string()) fail("{}: {}: expected a string", path.string(), pointer);
  return doc[at].get<std::string>();
}

// The corpus's size as the corpus stage recorded it in provenance.json, else the config's pin.
std::optional<std::uint64_t> corpus_bytes(const Context& cx) {
  if (cx.has("provenance.json")) {
    const nlohmann::json doc = read_json(cx.file("provenance.json"));
    if (doc.contains("stages") && doc["stages"].is_array())
      for (const auto& stage : doc["stages"])
        if (stage.value("name", "") == "corpus" && stage.contains("outputs") && stage["outputs"].is_array() &&
            !stage["outputs"].empty() && stage["outputs"][0].contains("bytes") && stage["outputs"][0]["bytes"].is_number_unsigned())
          return stage["outputs"][0]["bytes"].get<std::uint64_t>();
  }
  return cx.experiment.corpus.bytes;
}

}  // namespace

CsvTable Context::csv(std::string_view name) const { return read_csv(file(name)); }

Section experiment_section(const Context& cx) {
  const Experiment& ex = cx.experiment;
  Facts facts;
  facts.emplace_back("config", fmt::format("{} ({})", escape(ex.name), code(ex.config_path.filename().string())));
  if (!cx.has("provenance.json")) {
    facts.emplace_back("corpus", fmt::format("{}, SHA-256 {} (pinned by the config)", escape(ex.corpus.name), code(ex.corpus.sha256)));
    facts.emplace_back("provenance", "<em>provenance.json is absent</em> (<code>make provenance</code> writes it)");
  } else {
    const fs::path path = cx.file("provenance.json");
    const nlohmann::json doc = read_json(path);
    facts.front().second += fmt::format(", SHA-256 {}", code(json_string(doc, "/config/sha256", path)));
    facts.emplace_back("corpus", fmt::format("{}, SHA-256 {}", escape(json_string(doc, "/corpus/name", path)),
                                             code(json_string(doc, "/corpus/sha256", path))));
    const nlohmann::json::json_pointer dirty_at("/source/dirty");
    const bool dirty = doc.contains(dirty_at) && doc[dirty_at] == true;
    facts.emplace_back("commit", code(json_string(doc, "/source/commit", path)) +
                                     (dirty ? " <em>with uncommitted changes</em>" : ""));
    std::string toolchain;
    for (const char* key : {"compiler", "build_type", "isa", "cuda", "fmt", "openssl", "zlib", "nlohmann_json", "tomlplusplus"}) {
      const std::string pointer = fmt::format("/build/{}", key);
      if (doc.contains(nlohmann::json::json_pointer(pointer)))
        toolchain += fmt::format("{}{} {}", toolchain.empty() ? "" : "; ", key, escape(json_string(doc, pointer.c_str(), path)));
    }
    facts.emplace_back("toolchain", toolchain.empty() ? "<em>not recorded</em>" : toolchain);
    const nlohmann::json& gpu = doc.contains("gpu") ? doc["gpu"] : nlohmann::json();
    facts.emplace_back("device", gpu.is_object() ? fmt::format("{} ({} SMs, compute capability {})",
                                                               escape(json_string(doc, "/gpu/name", path)),
                                                               gpu.value("sm_count", 0), escape(gpu.value("compute_capability", "?")))
                                                 : "the CPU (no GPU was used)");
  }
  std::string body = facts_html(facts);
  body += fmt::format("<details><summary>The config, {}</summary>\n<pre>{}</pre></details>\n",
                      code(ex.config_path.filename().string()), escape(read_file(ex.config_path)));
  return {"experiment", "The experiment", body};
}

std::optional<Section> tokenizer_section(const Context& cx) {
  if (!cx.has("tokenizer.json")) return std::nullopt;
  const Tokenizer tokenizer = Tokenizer::load(cx.file("tokenizer.json"));
  Facts facts = {{"vocabulary", fmt::format("{} tokens", group_digits(tokenizer.vocab_size()))},
                 {"merges", group_digits(tokenizer.merge_count())}};
  std::string sentence;
  if (cx.has("train.bin") && cx.has("val.bin")) {
    const std::uint64_t train = read_token_file(cx.file("train.bin")).ids.size();
    const std::uint64_t val = read_token_file(cx.file("val.bin")).ids.size();
    facts.emplace_back("tokens", fmt::format("{} in train.bin + {} in val.bin", group_digits(train), group_digits(val)));
    if (const auto bytes = corpus_bytes(cx); bytes && train + val > 0) {
      const double per_token = static_cast<double>(*bytes) / static_cast<double>(train + val);
      facts.emplace_back("compression", fmt::format("{} bytes per token ({} corpus bytes)", fixed(per_token, 3), group_digits(*bytes)));
      sentence = fmt::format("<p>Each token stands for {} bytes of the corpus on average.</p>\n", fixed(per_token, 2));
    }
  }
  return Section{"tokenizer", "Tokenizer", sentence + facts_html(facts)};
}

}  // namespace minitx::report
