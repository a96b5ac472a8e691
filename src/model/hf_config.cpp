#include "minitx/model/hf_config.h"

#include <cmath>
#include <initializer_list>
#include <vector>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "strict_json.h"

namespace minitx {
namespace {

using nlohmann::json;

// Far above any model this project can hold, low enough that products of two stay in 64 bits.
constexpr std::uint64_t kMaxDimension = std::uint64_t{1} << 31;

// Typed access to the keys of one JSON object; every message names the source and the key.
class Fields {
 public:
  Fields(const json& object, std::string source) : object_(object), source_(std::move(source)) {}

  // The value of the first present key among `spellings` (null counts as absent), and which key
  // it was; when several spellings are present they must agree, since a file that says two
  // things means neither.
  const json* find(std::initializer_list<std::string_view> spellings, std::string_view* key_found = nullptr) const {
    const json* found = nullptr;
    std::string_view found_key = *spellings.begin();
    for (const std::string_view key : spellings) {
      const auto it = object_.find(key);
      if (it == object_.end() || it->is_null()) continue;
      MINITX_CHECK(found == nullptr || *found == *it, "{}: \"{}\" ({}) and \"{}\" ({}) disagree", source_, found_key,
                   found->dump(), key, it->dump());
      if (found == nullptr) {
        found = &*it;
        found_key = key;
      }
    }
    if (key_found != nullptr) *key_found = found_key;
    return found;
  }
  const json* find(std::string_view key) const { return find({key}); }

  // A positive count spelt one of several ways (OPT's hidden_size was once d_model).
  std::size_t count(std::initializer_list<std::string_view> spellings,
                    std::optional<std::size_t> fallback = std::nullopt) const {
    std::string_view key;
    const json* value = find(spellings, &key);
    if (value == nullptr) {
      MINITX_CHECK(fallback.has_value(), "{}: \"{}\" is missing (expected a positive integer)", source_, key);
      return *fallback;
    }
    MINITX_CHECK(value->is_number_unsigned() && value->get<std::uint64_t>() > 0 &&
                     value->get<std::uint64_t>() <= kMaxDimension,
                 "{}: \"{}\" is {}, expected a positive integer up to {}", source_, key, detail::json_kind(*value),
                 kMaxDimension);
    return static_cast<std::size_t>(value->get<std::uint64_t>());
  }
  std::size_t count(std::string_view key, std::optional<std::size_t> fallback = std::nullopt) const {
    return count({key}, fallback);
  }

  double number(const json* value, std::string_view key, double fallback) const {
    if (value == nullptr) return fallback;
    MINITX_CHECK(value->is_number(), "{}: \"{}\" is {}, expected a number", source_, key, detail::json_kind(*value));
    return value->get<double>();
  }
  double number(std::string_view key, double fallback) const { return number(find(key), key, fallback); }

  bool flag(std::string_view key, bool fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    MINITX_CHECK(value->is_boolean(), "{}: \"{}\" is {}, expected true or false", source_, key, detail::json_kind(*value));
    return value->get<bool>();
  }

  std::string text(std::string_view key, std::string_view fallback) const {
    const json* value = find(key);
    if (value == nullptr) return std::string(fallback);
    MINITX_CHECK(value->is_string(), "{}: \"{}\" is {}, expected a string", source_, key, detail::json_kind(*value));
    return value->get<std::string>();
  }

  std::optional<std::int64_t> token_id(std::string_view key, std::optional<std::int64_t> fallback) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return fallback;
    if (it->is_null()) return std::nullopt;
    MINITX_CHECK(it->is_number_integer(), "{}: \"{}\" is {}, expected an integer token id or null", source_, key,
                 detail::json_kind(*it));
    return it->get<std::int64_t>();
  }

  const std::string& source() const { return source_; }

 private:
  const json& object_;
  std::string source_;
};

HfActivation parse_activation(const Fields& f, std::string_view key, std::string_view fallback) {
  const std::string name = f.text(key, fallback);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return HfActivation::gelu_tanh;
  if (name == "gelu") return HfActivation::gelu_erf;
  if (name == "relu") return HfActivation::relu;
  fail("{}: {} \"{}\" is not supported (expected gelu_new, gelu_pytorch_tanh, gelu or relu)", f.source(), key, name);
}

void parse_gpt2(const Fields& f, HfConfig& c) {
  c.n_layer = f.count("n_layer");
  c.hidden_size = f.count("n_embd");
  c.n_head = f.count("n_head");
  c.vocab_size = f.count("vocab_size");
  c.max_positions = f.count("n_positions");
  c.ffn_size = f.count("n_inner", 4 * c.hidden_size);
  c.activation = parse_activation(f, "activation_function", "gelu_new");
  c.layer_norm_eps = f.number("layer_norm_epsilon", 1e-5);
  MINITX_CHECK(f.flag("scale_attn_weights", true), "{}: scale_attn_weights false (unscaled attention) is not supported",
               f.source());
  MINITX_CHECK(!f.flag("scale_attn_by_inverse_layer_idx", false),
               "{}: scale_attn_by_inverse_layer_idx true is not supported", f.source());
  MINITX_CHECK(!f.flag("add_cross_attention", false), "{}: add_cross_attention true (an encoder-decoder) is not supported",
               f.source());
  c.tie_word_embeddings = f.flag("tie_word_embeddings", true);
  c.bos_token_id = f.token_id("bos_token_id", 50256);
  c.eos_token_id = f.token_id("eos_token_id", 50256);
  c.pad_token_id = f.token_id("pad_token_id", std::nullopt);
}

void parse_opt(const Fields& f, HfConfig& c) {
  c.n_layer = f.count("num_hidden_layers");
  c.hidden_size = f.count({"hidden_size", "d_model"});
  c.n_head = f.count("num_attention_heads");
  c.vocab_size = f.count("vocab_size");
  c.max_positions = f.count("max_position_embeddings");
  c.ffn_size = f.count("ffn_dim");
  c.activation = parse_activation(f, "activation_function", "relu");
  // OPT's LayerNorms are built with PyTorch's default epsilon; its config has no key for it.
  c.layer_norm_eps = 1e-5;
  MINITX_CHECK(f.flag("do_layer_norm_before", true),
               "{}: do_layer_norm_before false (post-norm OPT, as opt-350m) is not supported", f.source());
  const std::size_t projected = f.count("word_embed_proj_dim", c.hidden_size);
  MINITX_CHECK(projected == c.hidden_size,
               "{}: word_embed_proj_dim {} differs from hidden_size {} (projected embeddings, as opt-350m) is not "
               "supported",
               f.source(), projected, c.hidden_size);
  MINITX_CHECK(f.flag("layer_norm_elementwise_affine", true),
               "{}: layer_norm_elementwise_affine false (LayerNorm without weights) is not supported", f.source());
  c.final_layer_norm = !f.flag("_remove_final_layer_norm", false);
  c.attention_bias = c.mlp_bias = f.flag("enable_bias", true);
  c.position_offset = 2;  // OPT's learned positions skip two rows, a fairseq inheritance
  c.tie_word_embeddings = f.flag("tie_word_embeddings", true);
  c.bos_token_id = f.token_id("bos_token_id", 2);
  c.eos_token_id = f.token_id("eos_token_id", 2);
  c.pad_token_id = f.token_id("pad_token_id", 1);
}

// Rotary settings have been spelt three ways over transformers' history: rotary_pct and
// rotary_emb_base (Pythia's files), partial_rotary_factor and rope_theta, and the same two
// inside rope_parameters (transformers 5; rope_scaling is its older name).
void parse_neox_rotary(const json& root, const Fields& f, HfConfig& c) {
  std::vector<std::pair<std::string, double>> thetas, fractions;
  const auto collect = [&](const Fields& from, const std::string& prefix) {
    if (const json* v = from.find("rope_theta")) thetas.emplace_back(prefix + "rope_theta", from.number(v, "rope_theta", 0));
    if (const json* v = from.find("partial_rotary_factor"))
      fractions.emplace_back(prefix + "partial_rotary_factor", from.number(v, "partial_rotary_factor", 0));
  };
  collect(f, "");
  if (const json* v = f.find("rotary_emb_base")) thetas.emplace_back("rotary_emb_base", f.number(v, "rotary_emb_base", 0));
  if (const json* v = f.find("rotary_pct")) fractions.emplace_back("rotary_pct", f.number(v, "rotary_pct", 0));
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const auto it = root.find(key);
    if (it == root.end() || it->is_null()) continue;
    MINITX_CHECK(it->is_object(), "{}: \"{}\" is {}, expected an object or null", f.source(), key, detail::json_kind(*it));
    const Fields inner(*it, fmt::format("{}: {}", f.source(), key));
    const std::string type = inner.text("rope_type", inner.text("type", "default"));
    MINITX_CHECK(type == "default", "{}: {} rope_type \"{}\" is not supported (expected \"default\")", f.source(), key,
                 type);
    collect(inner, std::string(key) + ".");
  }
  const auto agreed = [&](const std::vector<std::pair<std::string, double>>& values, double fallback) {
    for (const auto& [key, value] : values)
      MINITX_CHECK(value == values.front().second, "{}: \"{}\" ({}) and \"{}\" ({}) disagree", f.source(),
                   values.front().first, values.front().second, key, value);
    return values.empty() ? fallback : values.front().second;
  };
  c.rotary = true;
  c.rotary_base = agreed(thetas, 10000.0);
  c.rotary_fraction = agreed(fractions, 0.25);
  MINITX_CHECK(std::isfinite(c.rotary_base) && c.rotary_base > 1, "{}: rotary base {} is not a number above 1",
               f.source(), c.rotary_base);
  MINITX_CHECK(c.rotary_fraction > 0 && c.rotary_fraction <= 1, "{}: rotary fraction {} is not in (0, 1]", f.source(),
               c.rotary_fraction);
}

void parse_neox(const json& root, const Fields& f, HfConfig& c) {
  c.n_layer = f.count("num_hidden_layers");
  c.hidden_size = f.count("hidden_size");
  c.n_head = f.count("num_attention_heads");
  c.vocab_size = f.count("vocab_size");
  c.max_positions = f.count("max_position_embeddings");
  c.ffn_size = f.count("intermediate_size");
  c.activation = parse_activation(f, "hidden_act", "gelu");
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-5);
  c.parallel_residual = f.flag("use_parallel_residual", true);
  c.attention_bias = f.flag("attention_bias", true);
  c.mlp_bias = true;
  c.tie_word_embeddings = f.flag("tie_word_embeddings", false);
  c.bos_token_id = f.token_id("bos_token_id", 0);
  c.eos_token_id = f.token_id("eos_token_id", 2);
  c.pad_token_id = f.token_id("pad_token_id", std::nullopt);
  parse_neox_rotary(root, f, c);
}

}  // namespace

std::string_view to_string(HfModelType type) {
  switch (type) {
    case HfModelType::gpt2: return "gpt2";
    case HfModelType::opt: return "opt";
    case HfModelType::gpt_neox: return "gpt_neox";
  }
  return "?";
}

std::string_view to_string(HfActivation activation) {
  switch (activation) {
    case HfActivation::gelu_tanh: return "gelu-tanh";
    case HfActivation::gelu_erf: return "gelu-erf";
    case HfActivation::relu: return "relu";
  }
  return "?";
}

std::size_t HfConfig::rotary_dims() const {
  // Python's int(head_size * rotary_pct): the same double product, truncated.
  return rotary ? static_cast<std::size_t>(static_cast<double>(head_dim()) * rotary_fraction) : 0;
}

HfConfig parse_hf_config(std::string_view json_text, const std::string& source) {
  const json root = detail::parse_json_strict(json_text, source);
  MINITX_CHECK(root.is_object(), "{}: is {}, expected a JSON object", source, detail::json_kind(root));
  const Fields f(root, source);
  const json* type = f.find("model_type");
  MINITX_CHECK(type != nullptr, "{}: \"model_type\" is missing (expected gpt2, opt or gpt_neox)", source);
  MINITX_CHECK(type->is_string(), "{}: \"model_type\" is {}, expected a string", source, detail::json_kind(*type));
  const auto& name = type->get_ref<const std::string&>();
  HfConfig c;
  if (name == "gpt2") {
    c.model_type = HfModelType::gpt2;
    parse_gpt2(f, c);
  } else if (name == "opt") {
    c.model_type = HfModelType::opt;
    parse_opt(f, c);
  } else if (name == "gpt_neox") {
    c.model_type = HfModelType::gpt_neox;
    parse_neox(root, f, c);
  } else {
    fail("{}: model_type \"{}\" is not supported (expected gpt2, opt or gpt_neox)", source, name);
  }
  MINITX_CHECK(c.hidden_size % c.n_head == 0, "{}: {} heads do not divide the hidden size {}", source, c.n_head,
               c.hidden_size);
  MINITX_CHECK(std::isfinite(c.layer_norm_eps) && c.layer_norm_eps > 0 && c.layer_norm_eps < 1,
               "{}: layer-norm epsilon {} is not a small positive number", source, c.layer_norm_eps);
  if (c.rotary) {
    const std::size_t dims = c.rotary_dims();
    MINITX_CHECK(dims > 0 && dims % 2 == 0,
                 "{}: rotary fraction {} of head size {} gives {} rotary dimensions (expected a positive even number)",
                 source, c.rotary_fraction, c.head_dim(), dims);
  }
  return c;
}

HfConfig read_hf_config(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail("{}: cannot open: {}", path.string(), ec.message());
  MINITX_CHECK(size <= (1u << 20), "{}: {} bytes is too large for a config.json", path.string(), size);
  return parse_hf_config(read_file(path), path.string());
}

std::string write_hf_config(const HfConfig& c) {
  const std::string_view type = to_string(c.model_type);
  // The three families can express different things; a config another family's features would
  // be silently dropped from is refused instead.
  MINITX_CHECK(c.n_layer > 0 && c.hidden_size > 0 && c.n_head > 0 && c.hidden_size % c.n_head == 0 && c.ffn_size > 0 &&
                   c.vocab_size > 0 && c.max_positions > 0,
               "config.json for {}: the shape is incomplete or the heads do not divide the width", type);
  const bool learned = !c.rotary && !c.parallel_residual;
  std::string_view activation;
  switch (c.activation) {
    case HfActivation::gelu_tanh: activation = "gelu_new"; break;
    case HfActivation::gelu_erf: activation = "gelu"; break;
    case HfActivation::relu: activation = "relu"; break;
  }
  nlohmann::ordered_json j;
  switch (c.model_type) {
    case HfModelType::gpt2:
      MINITX_CHECK(learned && c.position_offset == 0 && c.attention_bias && c.mlp_bias && c.final_layer_norm,
                   "config.json for gpt2: GPT-2 has learned positions at offset 0, sequential residuals, biases and a "
                   "final LayerNorm");
      j["architectures"] = {"GPT2LMHeadModel"};
      j["model_type"] = "gpt2";
      j["n_layer"] = c.n_layer;
      j["n_embd"] = c.hidden_size;
      j["n_head"] = c.n_head;
      j["n_inner"] = c.ffn_size;
      j["n_positions"] = c.max_positions;
      j["vocab_size"] = c.vocab_size;
      j["activation_function"] = activation;
      j["layer_norm_epsilon"] = c.layer_norm_eps;
      break;
    case HfModelType::opt:
      MINITX_CHECK(learned && c.position_offset == 2 && c.attention_bias == c.mlp_bias && c.layer_norm_eps == 1e-5,
                   "config.json for opt: OPT has learned positions at offset 2, sequential residuals, one bias switch "
                   "and LayerNorm epsilon 1e-5");
      j["architectures"] = {"OPTForCausalLM"};
      j["model_type"] = "opt";
      j["num_hidden_layers"] = c.n_layer;
      j["hidden_size"] = c.hidden_size;
      j["word_embed_proj_dim"] = c.hidden_size;
      j["num_attention_heads"] = c.n_head;
      j["ffn_dim"] = c.ffn_size;
      j["max_position_embeddings"] = c.max_positions;
      j["vocab_size"] = c.vocab_size;
      j["activation_function"] = activation;
      j["do_layer_norm_before"] = true;
      j["_remove_final_layer_norm"] = !c.final_layer_norm;
      j["enable_bias"] = c.attention_bias;
      j["layer_norm_elementwise_affine"] = true;
      break;
    case HfModelType::gpt_neox:
      MINITX_CHECK(c.rotary && c.position_offset == 0 && c.mlp_bias && c.final_layer_norm,
                   "config.json for gpt_neox: GPT-NeoX has rotary positions, FFN biases and a final LayerNorm");
      j["architectures"] = {"GPTNeoXForCausalLM"};
      j["model_type"] = "gpt_neox";
      j["num_hidden_layers"] = c.n_layer;
      j["hidden_size"] = c.hidden_size;
      j["num_attention_heads"] = c.n_head;
      j["intermediate_size"] = c.ffn_size;
      j["max_position_embeddings"] = c.max_positions;
      j["vocab_size"] = c.vocab_size;
      j["hidden_act"] = activation;
      j["layer_norm_eps"] = c.layer_norm_eps;
      // The spelling every transformers version reads (version 5 converts it to rope_parameters).
      j["rotary_pct"] = c.rotary_fraction;
      j["rotary_emb_base"] = c.rotary_base;
      j["use_parallel_residual"] = c.parallel_residual;
      j["attention_bias"] = c.attention_bias;
      break;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  const auto id = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(); };
  j["bos_token_id"] = id(c.bos_token_id);
  j["eos_token_id"] = id(c.eos_token_id);
  j["pad_token_id"] = id(c.pad_token_id);
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

}  // namespace minitx
