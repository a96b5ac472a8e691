// Hugging Face config.json for the three families the importer takes: GPT-2 (model_type
// "gpt2"), OPT ("opt") and GPT-NeoX / Pythia ("gpt_neox"), read into one neutral description.
//
// A key that transformers would fill from its config class's default may be absent and gets
// that default here too, so that a file means what it means to transformers; the shape keys
// (layers, width, heads, FFN width, vocabulary, positions) are required. Every field is
// type-checked, and anything the models here cannot reproduce (post-norm OPT, a projected OPT
// embedding, scaled rotary, another activation or model type) is refused by name rather than
// imported approximately.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace minitx {

enum class HfModelType { gpt2, opt, gpt_neox };
enum class HfActivation { gelu_tanh, gelu_erf, relu };

std::string_view to_string(HfModelType type);        // "gpt2", "opt", "gpt_neox"
std::string_view to_string(HfActivation activation);  // "gelu-tanh", "gelu-erf", "relu"

struct HfConfig {
  HfModelType model_type = HfModelType::gpt2;
  std::size_t n_layer = 0, hidden_size = 0, n_head = 0;
  std::size_t ffn_size = 0;       // GPT-2 n_inner (default 4·n_embd), OPT ffn_dim, NeoX intermediate_size
  std::size_t vocab_size = 0;     // rows of the embedding (NeoX pads it past the tokenizer's size)
  std::size_t max_positions = 0;  // context length the model was built for
  double layer_norm_eps = 1e-5;
  HfActivation activation = HfActivation::gelu_tanh;

  // Positions: learned (GPT-2, OPT), looked up at position + position_offset (OPT: 2, so its
  // table has max_positions + 2 rows), or rotary (GPT-NeoX) on the first rotary_fraction of each
  // head's dimensions, with frequencies base^(-2i/rotary_dims).
  bool rotary = false;
  std::size_t position_offset = 0;
  double rotary_fraction = 0;
  double rotary_base = 10000;

  bool parallel_residual = false;  // NeoX: x + attn(ln1(x)) + mlp(ln2(x))
  bool tie_word_embeddings = true;
  bool attention_bias = true;    // q, k, v and output projections
  bool mlp_bias = true;          // both FFN matrices
  bool final_layer_norm = true;  // false for OPT with _remove_final_layer_norm

  std::optional<std::int64_t> bos_token_id, eos_token_id, pad_token_id;

  std::size_t head_dim() const { return hidden_size / n_head; }
  // int(head_dim · rotary_fraction), as transformers computes it; 0 without rotary.
  std::size_t rotary_dims() const;
};

// `source` names the text in errors (usually the file's path).
HfConfig parse_hf_config(std::string_view json_text, const std::string& source);
HfConfig read_hf_config(const std::filesystem::path& path);

// config.json text that transformers loads back into the same model (architectures,
// model_type, torch_dtype float32 and the family's own spelling of every field).
std::string write_hf_config(const HfConfig& config);

}  // namespace minitx
