#include "minitx/infer/quant_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <string_view>
#include <unordered_map>

#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

namespace minitx {

namespace {

constexpr const char* kMetaHeader = "minitx-gpt 2";

// One named slice of the model's parameters (tensor_name: "wte", "h.3.qkvw"): where its floats
// are and its shape, in the tensor table's order.
struct NamedParam {
  std::string name;
  const float* values;
  std::vector<std::size_t> shape;
};

std::vector<std::size_t> shape_of(const ParamTensor& t) {
  return t.matrix() ? std::vector<std::size_t>{t.rows, t.cols} : std::vector<std::size_t>{t.rows};
}

// File order: the global tensors before the layers (embeddings), layer by layer, then the rest.
std::vector<NamedParam> named_params(const GptModel& model) {
  const ModelConfig& m = model.config;
  const std::vector<ParamTensor> table = param_tensors(m);
  std::vector<NamedParam> out;
  const auto add = [&](const ParamTensor& t, std::size_t l) {
    out.push_back({tensor_name(t, l), model.params.at(t.kind) + l * t.slice(), shape_of(t)});
  };
  std::size_t i = 0;
  for (; i < table.size() && !table[i].per_layer; ++i) add(table[i], 0);
  const std::size_t first_layer_tensor = i;
  for (std::size_t l = 0; l < m.n_layer; ++l)
    for (i = first_layer_tensor; i < table.size() && table[i].per_layer; ++i) add(table[i], l);
  for (; i < table.size(); ++i) add(table[i], 0);
  return out;
}

std::size_t numel(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::string encode_metadata(const ModelConfig& m, const QuantModelInfo& info, const std::vector<std::string>& q8) {
  std::string q8_list;
  for (const std::string& name : q8) q8_list += (q8_list.empty() ? "" : ",") + name;
  return fmt::format("{}\n{}tokenizer_sha256 {}\ncheckpoint_step {}\nrecipe {}\nq8_0_tensors {}\n", kMetaHeader,
                     describe_architecture(m), info.tokenizer_sha256, info.checkpoint_step, info.recipe,
                     q8_list.empty() ? "-" : q8_list);
}

std::uint64_t parse_uint(const std::string& name, const std::string& key, const std::string& value) {
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  MINITX_CHECK(ec == std::errc() && end == value.data() + value.size() && !value.empty(),
               "{}: metadata {}: expected a whole number, got '{}'", name, key, value.substr(0, 40));
  return out;
}

void parse_metadata(const std::string& text, const std::string& name, ModelConfig& m, QuantModelInfo& info) {
  const std::size_t first_end = std::min(text.find('\n'), text.size());
  const std::string first = text.substr(0, first_end);
  MINITX_CHECK(first != "minitx-gpt 1", "{}: a quantized file of format 1 (GPT-2 only, before the architecture "
               "descriptor) is no longer read: quantize the checkpoint again", name);
  MINITX_CHECK(first == kMetaHeader, "{}: metadata starts with '{}', expected '{}' (not a minitx GPT?)", name,
               first.substr(0, 40), kMetaHeader);
  auto kv = parse_key_values(first_end < text.size() ? text.substr(first_end + 1) : std::string(), name);
  const auto take = [&](const char* key) {
    const auto it = kv.find(key);
    MINITX_CHECK(it != kv.end(), "{}: metadata lacks '{}'", name, key);
    std::string value = it->second;
    kv.erase(it);
    return value;
  };
  info.tokenizer_sha256 = take("tokenizer_sha256");
  MINITX_CHECK(info.tokenizer_sha256.size() == 64 &&
                   std::all_of(info.tokenizer_sha256.begin(), info.tokenizer_sha256.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
               "{}: metadata tokenizer_sha256 is not 64 lowercase hex digits", name);
  info.checkpoint_step = parse_uint(name, "checkpoint_step", take("checkpoint_step"));
  info.recipe = take("recipe");
  take("q8_0_tensors");  // informative only
  m = parse_architecture(kv, name);
  MINITX_CHECK(kv.empty(), "{}: unknown metadata key '{}'", name, kv.empty() ? "" : kv.begin()->first.substr(0, 40));
}

void check_shape(const std::string& name, const quant::QTensor& t, const std::vector<std::size_t>& shape) {
  if (t.shape != shape)
    fail("{}: tensor {} has shape ({}), the model's config needs ({})", name, t.name, fmt::join(t.shape, ", "),
         fmt::join(shape, ", "));
}

// The view's field for the layer matrix named "h.<l>.<kind>".
Linear* layer_matrix(GptWeights& w, const std::string& name) {
  const std::size_t l = std::stoul(name.substr(2));
  GptLayerWeights& y = w.layers.at(l);
  const std::string kind = name.substr(name.rfind('.') + 1);
  if (kind == "qkvw") return &y.qkvw;
  if (kind == "attprojw") return &y.attprojw;
  if (kind == "fcw") return &y.fcw;
  if (kind == "fcprojw") return &y.fcprojw;
  fail("quantize: {} is not a layer matrix", name);
}

}  // namespace

quant::QuantFile quantize_model(const GptModel& model, const quant::Recipe& recipe, const QuantModelInfo& info) {
  model.config.validate("quantize");
  quant::QuantFile file;
  std::vector<std::string> q8;
  for (const NamedParam& p : named_params(model)) {
    const quant::Format format = quant::choose_format(recipe, p.name, p.shape);
    if (format == quant::Format::q8_0 && recipe.matrices != quant::Format::q8_0) q8.push_back(p.name);
    file.tensors.push_back(quant::quantize_tensor(p.name, p.shape, std::span(p.values, numel(p.shape)), format));
  }
  file.metadata = encode_metadata(model.config, info, q8);
  return file;
}

std::unique_ptr<QuantModel> make_quant_model(quant::QuantFile file, const std::string& name) {
  auto qm = std::make_unique<QuantModel>();
  parse_metadata(file.metadata, name, qm->config, qm->info);
  qm->file = std::move(file);
  const ModelConfig& m = qm->config;
  // By name once: a linear search per tensor is quadratic in the tensors a file may claim (up to 2^20).
  std::unordered_map<std::string_view, const quant::QTensor*> by_name;
  for (const quant::QTensor& t : qm->file.tensors) by_name.emplace(t.name, &t);
  std::size_t expected_count = 0;
  const auto find = [&](const ParamTensor& t, std::size_t l) {
    ++expected_count;
    const std::string tensor = tensor_name(t, l);
    const auto it = by_name.find(tensor);
    MINITX_CHECK(it != by_name.end(), "{}: the tensor {} is missing", name, tensor);
    check_shape(name, *it->second, shape_of(t));
    return it->second;
  };
  qm->weights = make_weights(
      m, [&](const ParamTensor& t, std::size_t l) -> Linear { return find(t, l)->matrix(); },
      [&](const ParamTensor& t, std::size_t l) {
        const quant::QTensor* q = find(t, l);
        MINITX_CHECK(q->format == quant::Format::f32, "{}: the vector {} is {}; vectors must be f32", name, q->name,
                     quant::format_name(q->format));
        return reinterpret_cast<const float*>(q->data.data());
      });
  MINITX_CHECK(qm->file.tensors.size() == expected_count, "{}: holds {} tensors, a GPT of this shape has {}", name,
               qm->file.tensors.size(), expected_count);
  return qm;
}

bool is_quant_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(quant::qfile::kMagic)] = {};
  in.read(magic, sizeof magic);
  const auto got = static_cast<std::size_t>(in.gcount());
  // A file cut short inside the magic (or empty, named .mtq) is a truncated quantized model, not
  // a checkpoint: the quantized reader's error says so.
  if (got < sizeof magic)
    return (got > 0 && std::memcmp(magic, quant::qfile::kMagic, got) == 0) || path.extension() == ".mtq";
  return std::memcmp(magic, quant::qfile::kMagic, sizeof magic) == 0;
}

namespace {

InferenceModel load_any(const std::filesystem::path& path, const ModelConfig* config, const std::string& config_name) {
  InferenceModel out;
  if (!is_quant_file(path)) {
    Checkpoint header;
    out.fp32 = config != nullptr ? load_model(path, *config, config_name, &header) : load_model(path, &header);
    out.weights = weights_of(*out.fp32);
    out.config = out.fp32->config;
    out.tokenizer_sha256 = header.tokenizer_sha256;
    out.step = header.step;
    out.format = "fp32 checkpoint";
    return out;
  }
  out.quant = make_quant_model(quant::read_quant_file(path), path.string());
  const ModelConfig& c = out.quant->config;
  if (config != nullptr) check_architecture_fits(c, *config, path.string() + ": the quantized model", config_name);
  out.weights = out.quant->weights;
  out.config = c;
  out.tokenizer_sha256 = out.quant->info.tokenizer_sha256;
  out.step = out.quant->info.checkpoint_step;
  out.format = out.quant->info.recipe;
  return out;
}

}  // namespace

InferenceModel load_inference_model(const std::filesystem::path& path, const ModelConfig& config,
                                    const std::string& config_name) {
  return load_any(path, &config, config_name);
}

InferenceModel load_inference_model(const std::filesystem::path& path) { return load_any(path, nullptr, ""); }

void check_tokenizer_fits(const InferenceModel& model, const std::filesystem::path& path, std::uint32_t vocab_size,
                          const std::string& tokenizer_sha256, const std::string& source) {
  if (model.tokenizer_sha256 == kNoTokenizer) {
    if (vocab_size > model.config.tokens())
      fail("{}: the model has {} token rows and no tokenizer of its own; {} has ids up to {}", path.string(),
           model.config.tokens(), source, vocab_size);
    return;
  }
  if (model.config.tokens() != vocab_size)
    fail("{}: the model has a vocabulary of {} tokens, but {} has {}", path.string(), model.config.tokens(), source,
         vocab_size);
  if (model.tokenizer_sha256 != tokenizer_sha256)
    fail("{}: made with the tokenizer whose SHA-256 is {}, but {} comes from {}", path.string(), model.tokenizer_sha256,
         source, tokenizer_sha256);
}

double mean_kl(const float* ref, const float* logits, std::size_t N, std::size_t V) {
  std::vector<double> rows(N);
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    for (std::size_t n = begin; n < end; ++n) {
      const float* a = ref + n * V;
      const float* b = logits + n * V;
      const double ma = *std::max_element(a, a + V), mb = *std::max_element(b, b + V);
      double sa = 0.0, sb = 0.0;
      for (std::size_t v = 0; v < V; ++v) {
        sa += std::exp(a[v] - ma);
        sb += std::exp(b[v] - mb);
      }
      const double la = ma + std::log(sa), lb = mb + std::log(sb);
      double kl = 0.0;
      for (std::size_t v = 0; v < V; ++v) {
        const double lpa = a[v] - la, lpb = b[v] - lb;
        kl += std::exp(lpa) * (lpa - lpb);
      }
      rows[n] = kl;
    }
  });
  double sum = 0.0;
  for (double kl : rows) sum += kl;
  return N > 0 ? sum / static_cast<double>(N) : 0.0;
}

std::vector<Sensitivity> measure_sensitivity(const GptModel& model, const std::vector<std::uint32_t>& ids,
                                             std::size_t T, std::size_t windows, quant::Format format) {
  const ModelConfig& m = model.config;
  MINITX_CHECK(T >= 1 && T <= m.context, "quantize: calibration window of {} tokens outside 1..{}", T, m.context);
  MINITX_CHECK(windows >= 1 && ids.size() >= windows * T, "quantize: {} calibration tokens are fewer than {} windows of {}",
               ids.size(), windows, T);
  const std::size_t N = windows * T, V = m.vocab_size;
  const GptWeights fp32 = weights_of(model);
  GptActivations acts(m, windows, T, false);
  const auto logits_of = [&](const GptWeights& w, std::vector<float>& logits) {
    logits.resize(N * V);
    gpt_forward(w, acts, ids.data(), windows, T);
    gpt_logits(w, logits.data(), acts.lnf, N);
  };
  std::vector<float> ref, logits;
  logits_of(fp32, ref);
  std::vector<Sensitivity> out;
  for (const NamedParam& p : named_params(model)) {
    if (p.name.rfind("h.", 0) != 0 || p.shape.size() != 2) continue;
    const quant::QTensor q = quant::quantize_tensor(p.name, p.shape, std::span(p.values, numel(p.shape)), format);
    GptWeights w = fp32;
    *layer_matrix(w, p.name) = q.matrix();
    logits_of(w, logits);
    out.push_back({p.name, numel(p.shape), mean_kl(ref.data(), logits.data(), N, V)});
  }
  return out;
}

std::vector<std::string> choose_q8_tensors(std::vector<Sensitivity> s, double share) {
  std::size_t total = 0;
  for (const Sensitivity& x : s) total += x.params;
  std::sort(s.begin(), s.end(), [](const Sensitivity& a, const Sensitivity& b) {
    const double ka = a.kl / static_cast<double>(a.params), kb = b.kl / static_cast<double>(b.params);
    return ka != kb ? ka > kb : a.tensor < b.tensor;
  });
  std::vector<std::string> chosen;
  std::size_t kept = 0;
  const double budget = share * static_cast<double>(total);
  for (const Sensitivity& x : s) {
    if (static_cast<double>(kept + x.params) > budget) continue;
    chosen.push_back(x.tensor);
    kept += x.params;
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace minitx
