#include "minitx/model/hf_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>

#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/model/params.h"
#include "minitx/model/safetensors.h"
#include "minitx/tokenizer/tokenizer.h"

namespace minitx {
namespace fs = std::filesystem;

namespace {

// How one slice of the tensor table is stored in a Hugging Face checkpoint.
enum class How {
  copy,       // the same (rows, cols)
  transpose,  // GPT-2's Conv1D: (cols, rows)
  stack3,     // OPT: three (C, …) tensors q, k, v stacked by rows
  neox_qkv,   // GPT-NeoX: rows ordered (head, q|k|v, d) instead of (q|k|v, head, d)
};
struct HfSource {
  How how = How::copy;
  std::vector<std::string> names;
};

// The one mapping from table entries to Hugging Face names, for import and export alike.
HfSource hf_source(HfModelType family, const std::string& prefix, Param kind, std::size_t l) {
  const auto one = [](How how, std::string name) { return HfSource{how, {std::move(name)}}; };
  using P = Param;
  switch (family) {
    case HfModelType::gpt2: {
      const std::string h = fmt::format("{}h.{}.", prefix, l);
      switch (kind) {
        case P::wte: return one(How::copy, prefix + "wte.weight");
        case P::wpe: return one(How::copy, prefix + "wpe.weight");
        case P::ln1w: return one(How::copy, h + "ln_1.weight");
        case P::ln1b: return one(How::copy, h + "ln_1.bias");
        case P::qkvw: return one(How::transpose, h + "attn.c_attn.weight");
        case P::qkvb: return one(How::copy, h + "attn.c_attn.bias");
        case P::attprojw: return one(How::transpose, h + "attn.c_proj.weight");
        case P::attprojb: return one(How::copy, h + "attn.c_proj.bias");
        case P::ln2w: return one(How::copy, h + "ln_2.weight");
        case P::ln2b: return one(How::copy, h + "ln_2.bias");
        case P::fcw: return one(How::transpose, h + "mlp.c_fc.weight");
        case P::fcb: return one(How::copy, h + "mlp.c_fc.bias");
        case P::fcprojw: return one(How::transpose, h + "mlp.c_proj.weight");
        case P::fcprojb: return one(How::copy, h + "mlp.c_proj.bias");
        case P::lnfw: return one(How::copy, prefix + "ln_f.weight");
        case P::lnfb: return one(How::copy, prefix + "ln_f.bias");
        case P::head: return one(How::copy, "lm_head.weight");
      }
      break;
    }
    case HfModelType::opt: {
      const std::string h = fmt::format("{}layers.{}.", prefix, l);
      const auto qkv = [&](const char* what) {
        return HfSource{How::stack3, {h + "self_attn.q_proj." + what, h + "self_attn.k_proj." + what,
                                      h + "self_attn.v_proj." + what}};
      };
      switch (kind) {
        case P::wte: return one(How::copy, prefix + "embed_tokens.weight");
        case P::wpe: return one(How::copy, prefix + "embed_positions.weight");
        case P::ln1w: return one(How::copy, h + "self_attn_layer_norm.weight");
        case P::ln1b: return one(How::copy, h + "self_attn_layer_norm.bias");
        case P::qkvw: return qkv("weight");
        case P::qkvb: return qkv("bias");
        case P::attprojw: return one(How::copy, h + "self_attn.out_proj.weight");
        case P::attprojb: return one(How::copy, h + "self_attn.out_proj.bias");
        case P::ln2w: return one(How::copy, h + "final_layer_norm.weight");
        case P::ln2b: return one(How::copy, h + "final_layer_norm.bias");
        case P::fcw: return one(How::copy, h + "fc1.weight");
        case P::fcb: return one(How::copy, h + "fc1.bias");
        case P::fcprojw: return one(How::copy, h + "fc2.weight");
        case P::fcprojb: return one(How::copy, h + "fc2.bias");
        case P::lnfw: return one(How::copy, prefix + "final_layer_norm.weight");
        case P::lnfb: return one(How::copy, prefix + "final_layer_norm.bias");
        case P::head: return one(How::copy, "lm_head.weight");
      }
      break;
    }
    case HfModelType::gpt_neox: {
      const std::string h = fmt::format("{}layers.{}.", prefix, l);
      switch (kind) {
        case P::wte: return one(How::copy, prefix + "embed_in.weight");
        case P::wpe: break;  // rotary: no table
        case P::ln1w: return one(How::copy, h + "input_layernorm.weight");
        case P::ln1b: return one(How::copy, h + "input_layernorm.bias");
        case P::qkvw: return one(How::neox_qkv, h + "attention.query_key_value.weight");
        case P::qkvb: return one(How::neox_qkv, h + "attention.query_key_value.bias");
        case P::attprojw: return one(How::copy, h + "attention.dense.weight");
        case P::attprojb: return one(How::copy, h + "attention.dense.bias");
        case P::ln2w: return one(How::copy, h + "post_attention_layernorm.weight");
        case P::ln2b: return one(How::copy, h + "post_attention_layernorm.bias");
        case P::fcw: return one(How::copy, h + "mlp.dense_h_to_4h.weight");
        case P::fcb: return one(How::copy, h + "mlp.dense_h_to_4h.bias");
        case P::fcprojw: return one(How::copy, h + "mlp.dense_4h_to_h.weight");
        case P::fcprojb: return one(How::copy, h + "mlp.dense_4h_to_h.bias");
        case P::lnfw: return one(How::copy, prefix + "final_layer_norm.weight");
        case P::lnfb: return one(How::copy, prefix + "final_layer_norm.bias");
        case P::head: return one(How::copy, "embed_out.weight");
      }
      break;
    }
  }
  fail("hf: the {} family has no tensor for parameter kind {}", to_string(family), static_cast<int>(kind));
}

// The prefix under which a checkpoint keeps its layers: models saved with or without their
// language-model wrapper differ only in it.
std::string detect_prefix(HfModelType family, const SafetensorsCheckpoint& ck, const std::string& where) {
  std::vector<std::pair<std::string, std::string>> candidates;  // prefix, a tensor that proves it
  switch (family) {
    case HfModelType::gpt2: candidates = {{"transformer.", "transformer.wte.weight"}, {"", "wte.weight"}}; break;
    case HfModelType::opt:
      candidates = {{"model.decoder.", "model.decoder.embed_tokens.weight"}, {"decoder.", "decoder.embed_tokens.weight"}};
      break;
    case HfModelType::gpt_neox: candidates = {{"gpt_neox.", "gpt_neox.embed_in.weight"}, {"", "embed_in.weight"}}; break;
  }
  for (const auto& [prefix, probe] : candidates)
    if (ck.contains(probe)) return prefix;
  fail("{}: no token embedding found (looked for {}): not a {} checkpoint?", where, candidates.front().second,
       to_string(family));
}

// Buffers transformers keeps in some checkpoints and recomputes: never parameters.
bool is_recomputed_buffer(const std::string& name) {
  for (const char* suffix : {".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias",
                             ".rotary_emb.inv_freq"})
    if (name.size() > std::strlen(suffix) && name.ends_with(suffix)) return true;
  return false;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) { return fmt::format("({})", fmt::join(shape, ", ")); }

std::vector<std::uint64_t> slice_shape(const ParamTensor& t) {
  return t.matrix() ? std::vector<std::uint64_t>{t.rows, t.cols} : std::vector<std::uint64_t>{t.rows};
}

void check_tensor(const SafetensorsCheckpoint& ck, const std::string& name, const std::vector<std::uint64_t>& shape,
                  const std::string& where) {
  MINITX_CHECK(ck.contains(name), "{}: the tensor {} is missing", where, name);
  const SafeTensorInfo& info = ck.tensor(name);
  MINITX_CHECK(info.shape == shape, "{}: tensor {} has shape {}, the config needs {}", where, name,
               shape_text(info.shape), shape_text(shape));
}

// Reads `name` after checking its shape.
std::vector<float> read_tensor(const SafetensorsCheckpoint& ck, const std::string& name,
                               const std::vector<std::uint64_t>& shape, const std::string& where,
                               std::set<std::string>& used) {
  check_tensor(ck, name, shape, where);
  used.insert(name);
  return ck.read_f32(name);
}

// The tensors (name, shape) one slice reads.
std::vector<std::pair<std::string, std::vector<std::uint64_t>>> sources_of(const ParamTensor& t, const HfSource& src) {
  switch (src.how) {
    case How::copy:
    case How::neox_qkv: return {{src.names[0], slice_shape(t)}};
    case How::transpose: return {{src.names[0], {t.cols, t.rows}}};
    case How::stack3: {
      const std::uint64_t rows = t.rows / 3;
      const auto shape = t.matrix() ? std::vector<std::uint64_t>{rows, t.cols} : std::vector<std::uint64_t>{rows};
      return {{src.names[0], shape}, {src.names[1], shape}, {src.names[2], shape}};
    }
  }
  return {};
}

// Row r of q|k|v in NeoX's order (head, part, d) for our row (part, head, d).
std::size_t neox_row(std::size_t r, std::size_t C, std::size_t D) {
  const std::size_t part = r / C, head = r % C / D, d = r % D;
  return head * 3 * D + part * D + d;
}

void fill_slice(float* out, const ParamTensor& t, const HfSource& src, const SafetensorsCheckpoint& ck,
                std::size_t C, std::size_t D, const std::string& where, std::set<std::string>& used) {
  const std::size_t width = t.matrix() ? t.cols : 1;
  const auto sources = sources_of(t, src);
  switch (src.how) {
    case How::copy: {
      const auto v = read_tensor(ck, src.names[0], slice_shape(t), where, used);
      std::copy(v.begin(), v.end(), out);
      return;
    }
    case How::transpose: {
      const auto v = read_tensor(ck, src.names[0], {t.cols, t.rows}, where, used);
      for (std::size_t r = 0; r < t.rows; ++r)
        for (std::size_t c = 0; c < t.cols; ++c) out[r * t.cols + c] = v[c * t.rows + r];
      return;
    }
    case How::stack3: {
      const std::size_t rows = t.rows / 3;
      for (std::size_t part = 0; part < 3; ++part) {
        const auto v = read_tensor(ck, sources[part].first, sources[part].second, where, used);
        std::copy(v.begin(), v.end(), out + part * rows * width);
      }
      return;
    }
    case How::neox_qkv: {
      const auto v = read_tensor(ck, src.names[0], slice_shape(t), where, used);
      for (std::size_t r = 0; r < t.rows; ++r)
        std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(neox_row(r, C, D) * width), width, out + r * width);
      return;
    }
  }
}

std::size_t tokenizer_size(const std::string& json, const std::string& where) {
  return Tokenizer::from_json(json, where).vocab_size();
}

}  // namespace

ModelConfig model_config_from_hf(const HfConfig& hf, std::size_t tokens, const std::string& where) {
  MINITX_CHECK(hf.final_layer_norm, "{}: a model without a final LayerNorm (OPT's _remove_final_layer_norm) is not supported",
               where);
  MINITX_CHECK(hf.attention_bias == hf.mlp_bias,
               "{}: attention biases ({}) and MLP biases ({}) differ; minitx models have both or neither", where,
               hf.attention_bias, hf.mlp_bias);
  ModelConfig m;
  m.n_layer = hf.n_layer;
  m.n_embd = hf.hidden_size;
  m.n_head = hf.n_head;
  m.context = hf.max_positions;
  m.vocab_size = hf.vocab_size;
  MINITX_CHECK(tokens <= hf.vocab_size, "{}: the tokenizer has {} tokens, more than the embedding's {} rows", where,
               tokens, hf.vocab_size);
  m.vocab_tokens = tokens;
  m.ffn = hf.ffn_size;
  m.ln_eps = hf.layer_norm_eps;
  switch (hf.activation) {
    case HfActivation::gelu_tanh: m.activation = ModelConfig::Activation::gelu_tanh; break;
    case HfActivation::gelu_erf: m.activation = ModelConfig::Activation::gelu_erf; break;
    case HfActivation::relu: m.activation = ModelConfig::Activation::relu; break;
  }
  if (hf.rotary) {
    m.position = ModelConfig::Position::rotary;
    m.rotary_fraction = hf.rotary_fraction;
    m.rotary_base = hf.rotary_base;
  } else {
    m.position = ModelConfig::Position::learned;
    m.position_offset = hf.position_offset;
  }
  m.parallel_residual = hf.parallel_residual;
  m.tied_head = hf.tie_word_embeddings;
  m.bias = hf.attention_bias;
  m.validate(where);
  return m;
}

HfConfig hf_config_from_model(const ModelConfig& m) {
  // transformers' GPT-2, OPT and GPT-NeoX attend densely: a sparse model would load there and
  // silently compute something else.
  MINITX_CHECK(m.attention.dense(),
               "export: the model attends with the {} pattern, which Hugging Face's GPT-2, OPT and GPT-NeoX models "
               "cannot express (they attend densely); only dense models can be exported",
               sparse::summarize_pattern(m.attention));
  HfConfig hf;
  if (m.position == ModelConfig::Position::rotary) {
    hf.model_type = HfModelType::gpt_neox;
    hf.rotary = true;
    hf.rotary_fraction = m.rotary_fraction;
    hf.rotary_base = m.rotary_base;
  } else {
    const bool opt = m.position_offset == 2;
    MINITX_CHECK(opt || m.position_offset == 0,
                 "export: learned positions with an offset of {} fit neither GPT-2 (0) nor OPT (2)", m.position_offset);
    hf.model_type = opt ? HfModelType::opt : HfModelType::gpt2;
    hf.position_offset = m.position_offset;
    MINITX_CHECK(!m.parallel_residual, "export: a parallel residual with learned positions fits no Hugging Face family here");
  }
  hf.n_layer = m.n_layer;
  hf.hidden_size = m.n_embd;
  hf.n_head = m.n_head;
  hf.ffn_size = m.ffn_width();
  hf.vocab_size = m.vocab_size;
  hf.max_positions = m.context;
  hf.layer_norm_eps = m.ln_eps;
  switch (m.activation) {
    case ModelConfig::Activation::gelu_tanh: hf.activation = HfActivation::gelu_tanh; break;
    case ModelConfig::Activation::gelu_erf: hf.activation = HfActivation::gelu_erf; break;
    case ModelConfig::Activation::relu: hf.activation = HfActivation::relu; break;
  }
  hf.parallel_residual = m.parallel_residual;
  hf.tie_word_embeddings = m.tied_head;
  hf.attention_bias = hf.mlp_bias = m.bias;
  return hf;
}

HfModel import_hf(const fs::path& dir) {
  const std::string where = dir.string();
  MINITX_CHECK(fs::is_directory(dir), "import: {} is not a directory (expected config.json and model.safetensors in it)",
               where);
  const HfConfig hf = read_hf_config(dir / "config.json");
  HfModel out;
  if (fs::exists(dir / "tokenizer.json")) out.tokenizer_json = read_file(dir / "tokenizer.json");
  const std::size_t tokens =
      out.tokenizer_json.empty() ? 0 : tokenizer_size(out.tokenizer_json, (dir / "tokenizer.json").string());
  out.config = model_config_from_hf(hf, tokens, (dir / "config.json").string());
  const ModelConfig& m = out.config;

  const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir);
  const std::string prefix = detect_prefix(hf.model_type, ck, where);
  // Every source tensor's presence and shape first: the allocation below is sized by config.json,
  // which must not be trusted until the file's tensors agree with it.
  for (const ParamTensor& t : param_tensors(m))
    for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l)
      for (const auto& [name, shape] : sources_of(t, hf_source(hf.model_type, prefix, t.kind, l)))
        check_tensor(ck, name, shape, where);
  out.params.assign(param_count(m), 0.0f);
  std::set<std::string> used;
  float* at = out.params.data();
  for (const ParamTensor& t : param_tensors(m))
    for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l, at += t.slice())
      fill_slice(at, t, hf_source(hf.model_type, prefix, t.kind, l), ck, m.n_embd, m.head_size(), where, used);
  // A tied head is the embedding; a file that also stores it must store the same values.
  if (m.tied_head) {
    const std::string head = hf_source(hf.model_type, prefix, Param::head, 0).names[0];
    if (ck.contains(head)) {
      const ParamTensor wte = param_tensors(m).front();  // the table's first entry, at offset 0
      const auto v = read_tensor(ck, head, slice_shape(wte), where, used);
      MINITX_CHECK(std::equal(v.begin(), v.end(), out.params.begin() + static_cast<std::ptrdiff_t>(
                                                                             param_layout(m).offset[0])),
                   "{}: {} differs from the token embedding, but config.json ties them (tie_word_embeddings)", where, head);
    }
  }
  for (const std::string& name : ck.names())
    MINITX_CHECK(used.count(name) == 1 || is_recomputed_buffer(name),
                 "{}: the tensor {} is not part of a {} model of this config", where, name, to_string(hf.model_type));
  return out;
}

void export_hf(const ModelConfig& m, const std::vector<float>& params, const std::string& tokenizer_json,
               const fs::path& dir) {
  MINITX_CHECK(params.size() == param_count(m), "export: {} parameters given for a model of {}", params.size(),
               param_count(m));
  const HfConfig hf = hf_config_from_model(m);
  const std::string prefix = hf.model_type == HfModelType::gpt2   ? "transformer."
                             : hf.model_type == HfModelType::opt ? "model.decoder."
                                                                 : "gpt_neox.";
  const std::size_t C = m.n_embd, D = m.head_size();
  std::deque<std::vector<float>> storage;  // rearranged copies the tensors point to (stable addresses)
  std::vector<SafeTensorOut> tensors;
  const float* at = params.data();
  for (const ParamTensor& t : param_tensors(m))
    for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l, at += t.slice()) {
      const HfSource src = hf_source(hf.model_type, prefix, t.kind, l);
      const std::size_t width = t.matrix() ? t.cols : 1;
      switch (src.how) {
        case How::copy: tensors.push_back({src.names[0], slice_shape(t), at}); break;
        case How::transpose: {
          std::vector<float>& v = storage.emplace_back(t.slice());
          for (std::size_t r = 0; r < t.rows; ++r)
            for (std::size_t c = 0; c < t.cols; ++c) v[c * t.rows + r] = at[r * t.cols + c];
          tensors.push_back({src.names[0], {t.cols, t.rows}, v.data()});
          break;
        }
        case How::stack3: {
          const std::size_t rows = t.rows / 3;
          for (std::size_t part = 0; part < 3; ++part)
            tensors.push_back({src.names[part],
                               t.matrix() ? std::vector<std::uint64_t>{rows, t.cols} : std::vector<std::uint64_t>{rows},
                               at + part * rows * width});
          break;
        }
        case How::neox_qkv: {
          std::vector<float>& v = storage.emplace_back(t.slice());
          for (std::size_t r = 0; r < t.rows; ++r)
            std::copy_n(at + r * width, width, v.begin() + static_cast<std::ptrdiff_t>(neox_row(r, C, D) * width));
          tensors.push_back({src.names[0], slice_shape(t), v.data()});
          break;
        }
      }
    }
  fs::create_directories(dir);
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir / "config.json", write_hf_config(hf));
  if (!tokenizer_json.empty()) write_file_atomic(dir / "tokenizer.json", tokenizer_json);
}

}  // namespace minitx
