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

#include "minitx/core/error.h"
#include "minitx/core/threads.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

namespace minitx {

namespace {

constexpr const char* kMetaHeader = "minitx-gpt 1";

// One named parameter of the model: where its floats are and its shape.
struct NamedParam {
  std::string name;
  const float* values;
  std::vector<std::size_t> shape;
};

// Layer l's tensors in file order, with the part of the name after "h.<l>.".
const char* const kLayerTensors[] = {"ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
                                     "fcw",  "fcb",  "fcprojw", "fcprojb"};

std::string layer_name(std::size_t l, const char* what) { return fmt::format("h.{}.{}", l, what); }

std::vector<NamedParam> named_params(const GptModel& model) {
  const ModelConfig& m = model.config;
  const GptParams& p = model.params;
  const std::size_t C = m.n_embd, V = m.vocab_size, T = m.context;
  std::vector<NamedParam> out = {{"wte", p.wte, {V, C}}, {"wpe", p.wpe, {T, C}}};
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    const NamedParam layer[] = {
        {layer_name(l, "ln1w"), p.ln1w + l * C, {C}},
        {layer_name(l, "ln1b"), p.ln1b + l * C, {C}},
        {layer_name(l, "qkvw"), p.qkvw + l * 3 * C * C, {3 * C, C}},
        {layer_name(l, "qkvb"), p.qkvb + l * 3 * C, {3 * C}},
        {layer_name(l, "attprojw"), p.attprojw + l * C * C, {C, C}},
        {layer_name(l, "attprojb"), p.attprojb + l * C, {C}},
        {layer_name(l, "ln2w"), p.ln2w + l * C, {C}},
        {layer_name(l, "ln2b"), p.ln2b + l * C, {C}},
        {layer_name(l, "fcw"), p.fcw + l * 4 * C * C, {4 * C, C}},
        {layer_name(l, "fcb"), p.fcb + l * 4 * C, {4 * C}},
        {layer_name(l, "fcprojw"), p.fcprojw + l * 4 * C * C, {C, 4 * C}},
        {layer_name(l, "fcprojb"), p.fcprojb + l * C, {C}},
    };
    for (const NamedParam& x : layer) out.push_back(x);
  }
  out.push_back({"lnfw", p.lnfw, {C}});
  out.push_back({"lnfb", p.lnfb, {C}});
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
  return fmt::format(
      "{}\nn_layer {}\nn_embd {}\nn_head {}\ncontext {}\nvocab_size {}\nposition {}\nactivation {}\n"
      "parallel_residual {}\nrotary_fraction {}\ntokenizer_sha256 {}\ncheckpoint_step {}\nrecipe {}\nq8_0_tensors {}\n",
      kMetaHeader, m.n_layer, m.n_embd, m.n_head, m.context, m.vocab_size, to_string(m.position),
      to_string(m.activation), m.parallel_residual ? 1 : 0, m.rotary_fraction, info.tokenizer_sha256,
      info.checkpoint_step, info.recipe, q8_list.empty() ? "-" : q8_list);
}

std::uint64_t parse_uint(const std::string& name, const std::string& key, const std::string& value) {
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  MINITX_CHECK(ec == std::errc() && end == value.data() + value.size() && !value.empty(),
               "{}: metadata {}: expected a whole number, got '{}'", name, key, value);
  return out;
}

void parse_metadata(const std::string& text, const std::string& name, ModelConfig& m, QuantModelInfo& info) {
  std::map<std::string, std::string> kv;
  std::size_t at = 0, line_no = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line_no++ == 0) {
      MINITX_CHECK(line == kMetaHeader, "{}: metadata starts with '{}', expected '{}' (not a minitx GPT?)", name, line,
                   kMetaHeader);
      continue;
    }
    const std::size_t space = line.find(' ');
    MINITX_CHECK(space != std::string::npos, "{}: metadata line {} '{}' is not 'key value'", name, line_no, line);
    MINITX_CHECK(kv.emplace(line.substr(0, space), line.substr(space + 1)).second, "{}: metadata key '{}' repeats",
                 name, line.substr(0, space));
  }
  MINITX_CHECK(line_no > 0, "{}: the metadata is empty (not a minitx GPT?)", name);
  static const std::set<std::string> kKeys = {"n_layer",         "n_embd",          "n_head",         "context",
                                              "vocab_size",      "position",        "activation",     "parallel_residual",
                                              "rotary_fraction", "tokenizer_sha256", "checkpoint_step", "recipe",
                                              "q8_0_tensors"};
  for (const auto& [key, value] : kv) MINITX_CHECK(kKeys.count(key) == 1, "{}: unknown metadata key '{}'", name, key);
  for (const std::string& key : kKeys) MINITX_CHECK(kv.count(key) == 1, "{}: metadata lacks '{}'", name, key);
  const auto num = [&](const char* key) {
    const std::uint64_t v = parse_uint(name, key, kv[key]);
    MINITX_CHECK(v <= (std::uint64_t{1} << 31), "{}: metadata {} = {} is out of range", name, key, v);
    return static_cast<std::size_t>(v);
  };
  m.n_layer = num("n_layer");
  m.n_embd = num("n_embd");
  m.n_head = num("n_head");
  m.context = num("context");
  m.vocab_size = num("vocab_size");
  const std::string& position = kv["position"];
  MINITX_CHECK(position == "learned" || position == "rotary", "{}: metadata position '{}'", name, position);
  m.position = position == "learned" ? ModelConfig::Position::learned : ModelConfig::Position::rotary;
  const std::string& activation = kv["activation"];
  MINITX_CHECK(activation == "gelu" || activation == "relu", "{}: metadata activation '{}'", name, activation);
  m.activation = activation == "gelu" ? ModelConfig::Activation::gelu : ModelConfig::Activation::relu;
  const std::uint64_t parallel = parse_uint(name, "parallel_residual", kv["parallel_residual"]);
  MINITX_CHECK(parallel <= 1, "{}: metadata parallel_residual must be 0 or 1", name);
  m.parallel_residual = parallel == 1;
  try {
    std::size_t used = 0;
    m.rotary_fraction = std::stod(kv["rotary_fraction"], &used);
    MINITX_CHECK(used == kv["rotary_fraction"].size(), "");
  } catch (const std::exception&) {
    fail("{}: metadata rotary_fraction: expected a number, got '{}'", name, kv["rotary_fraction"]);
  }
  m.validate(name);
  info.tokenizer_sha256 = kv["tokenizer_sha256"];
  MINITX_CHECK(info.tokenizer_sha256.size() == 64 &&
                   std::all_of(info.tokenizer_sha256.begin(), info.tokenizer_sha256.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
               "{}: metadata tokenizer_sha256 is not 64 lowercase hex digits", name);
  info.checkpoint_step = parse_uint(name, "checkpoint_step", kv["checkpoint_step"]);
  info.recipe = kv["recipe"];
}

void check_shape(const std::string& name, const quant::QTensor& t, const std::vector<std::size_t>& shape) {
  if (t.shape != shape)
    fail("{}: tensor {} has shape ({}), the model's config needs ({})", name, t.name, fmt::join(t.shape, ", "),
         fmt::join(shape, ", "));
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
  const std::size_t C = m.n_embd;
  std::size_t expected_count = 0;
  const auto matrix = [&](const std::string& tensor, std::size_t rows, std::size_t cols) {
    ++expected_count;
    const quant::QTensor* t = qm->file.find(tensor);
    MINITX_CHECK(t != nullptr, "{}: the tensor {} is missing", name, tensor);
    check_shape(name, *t, {rows, cols});
    return t->matrix();
  };
  const auto vector = [&](const std::string& tensor, std::size_t n) {
    ++expected_count;
    const quant::QTensor* t = qm->file.find(tensor);
    MINITX_CHECK(t != nullptr, "{}: the tensor {} is missing", name, tensor);
    check_shape(name, *t, {n});
    MINITX_CHECK(t->format == quant::Format::f32, "{}: the vector {} is {}; vectors must be f32", name, tensor,
                 quant::format_name(t->format));
    return reinterpret_cast<const float*>(t->data.data());
  };
  GptWeights& w = qm->weights;
  w.config = m;
  w.wte = matrix("wte", m.vocab_size, C);
  w.wpe = matrix("wpe", m.context, C);
  w.layers.resize(m.n_layer);
  for (std::size_t l = 0; l < m.n_layer; ++l) {
    GptLayerWeights& y = w.layers[l];
    y.ln1w = vector(layer_name(l, "ln1w"), C);
    y.ln1b = vector(layer_name(l, "ln1b"), C);
    y.qkvw = matrix(layer_name(l, "qkvw"), 3 * C, C);
    y.qkvb = vector(layer_name(l, "qkvb"), 3 * C);
    y.attprojw = matrix(layer_name(l, "attprojw"), C, C);
    y.attprojb = vector(layer_name(l, "attprojb"), C);
    y.ln2w = vector(layer_name(l, "ln2w"), C);
    y.ln2b = vector(layer_name(l, "ln2b"), C);
    y.fcw = matrix(layer_name(l, "fcw"), 4 * C, C);
    y.fcb = vector(layer_name(l, "fcb"), 4 * C);
    y.fcprojw = matrix(layer_name(l, "fcprojw"), C, 4 * C);
    y.fcprojb = vector(layer_name(l, "fcprojb"), C);
  }
  w.lnfw = vector("lnfw", C);
  w.lnfb = vector("lnfb", C);
  MINITX_CHECK(qm->file.tensors.size() == expected_count, "{}: holds {} tensors, a GPT of this shape has {}", name,
               qm->file.tensors.size(), expected_count);
  return qm;
}

bool is_quant_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(quant::qfile::kMagic)] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == static_cast<std::streamsize>(sizeof magic) &&
         std::memcmp(magic, quant::qfile::kMagic, sizeof magic) == 0;
}

InferenceModel load_inference_model(const std::filesystem::path& path, const ModelConfig& config,
                                    const std::string& config_name) {
  InferenceModel out;
  if (!is_quant_file(path)) {
    Checkpoint header;
    out.fp32 = load_model(path, config, config_name, &header);
    out.weights = weights_of(*out.fp32);
    out.config = out.fp32->config;
    out.tokenizer_sha256 = header.tokenizer_sha256;
    out.step = header.step;
    out.format = "fp32 checkpoint";
    return out;
  }
  out.quant = make_quant_model(quant::read_quant_file(path), path.string());
  const ModelConfig& c = out.quant->config;
  if (c.n_layer != config.n_layer || c.n_embd != config.n_embd || c.n_head != config.n_head ||
      c.context != config.context)
    fail("{}: the quantized model (n_layer {}, n_embd {}, n_head {}, context {}) does not fit [model] in {} "
         "(n_layer {}, n_embd {}, n_head {}, context {})",
         path.string(), c.n_layer, c.n_embd, c.n_head, c.context, config_name, config.n_layer, config.n_embd,
         config.n_head, config.context);
  out.weights = out.quant->weights;
  out.config = c;
  out.tokenizer_sha256 = out.quant->info.tokenizer_sha256;
  out.step = out.quant->info.checkpoint_step;
  out.format = out.quant->info.recipe;
  return out;
}

void check_tokenizer_fits(const InferenceModel& model, const std::filesystem::path& path, std::uint32_t vocab_size,
                          const std::string& tokenizer_sha256, const std::string& source) {
  if (model.config.vocab_size != vocab_size)
    fail("{}: the model has a vocabulary of {} tokens, but {} has {}", path.string(), model.config.vocab_size, source,
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
    const std::size_t l = std::stoul(p.name.substr(2));
    GptLayerWeights& y = w.layers[l];
    const std::string kind = p.name.substr(p.name.rfind('.') + 1);
    Linear* target = kind == "qkvw" ? &y.qkvw : kind == "attprojw" ? &y.attprojw : kind == "fcw" ? &y.fcw : &y.fcprojw;
    *target = q.matrix();
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
