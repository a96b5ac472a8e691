// The [model] and [train] sections of an experiment.
//
// ModelConfig is the architecture descriptor: one struct carries GPT-2, OPT and GPT-NeoX
// (Pythia). The tensor table (params.h), the forward, decode step and backward (block.h), the
// checkpoint and quantized-file headers and the Hugging Face importer all read it, so a new
// variant is a new value here, never a new copy of the layer.
//
//   GPT-2     learned positions, gelu-tanh, sequential residual, tied head
//   OPT       learned positions with an offset of 2, relu, sequential residual, tied head
//   GPT-NeoX  rotary on a fraction of each head (rotate-half layout), gelu-erf, parallel residual
//             (Pythia) or sequential, untied head
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "minitx/sparse/pattern.h"

namespace minitx {

class ConfigSection;

struct ModelConfig {
  enum class Position { learned, rotary };
  enum class Activation { gelu_tanh, gelu_erf, relu };

  std::size_t n_layer = 4, n_embd = 256, n_head = 4;
  std::size_t context = 256;   // positions the model can see (block size)
  std::size_t vocab_size = 0;  // rows of the embedding (and the head): from the tokenizer, or the checkpoint
  std::size_t vocab_tokens = 0;  // tokens that exist (≤ vocab_size; 0 = all); rows past it are padding, never sampled
  std::size_t ffn = 0;           // hidden width of the MLP; 0 = 4·n_embd
  Position position = Position::learned;
  std::size_t position_offset = 0;  // learned: position t reads row t + offset (OPT: 2)
  double rotary_fraction = 1.0;     // rotary: share of each head's dimensions rotated
  double rotary_base = 10000.0;
  bool parallel_residual = false;  // x + attn(ln1(x)) + mlp(ln2(x)) instead of two steps
  Activation activation = Activation::gelu_tanh;
  double ln_eps = 1e-5;
  bool tied_head = true;  // the output head is the token embedding
  bool bias = true;       // the four linear layers of a block have biases
  double dropout = 0.0;   // only 0 is supported: training is deterministic
  double init_std = 0.02;
  sparse::AttentionPattern attention;  // [model.attention]: dense causal, or a block-sparse pattern

  std::size_t head_size() const { return n_embd / n_head; }
  std::size_t ffn_width() const { return ffn == 0 ? 4 * n_embd : ffn; }
  std::size_t tokens() const { return vocab_tokens == 0 ? vocab_size : vocab_tokens; }
  // Rows of the learned position table (context + offset); 0 with rotary positions.
  std::size_t position_rows() const { return position == Position::learned ? context + position_offset : 0; }
  // Dimensions of each head that rotary positions rotate (even; 0 with learned positions).
  std::size_t rotary_dims() const;
  // Throws unless the shape is usable (heads divide the width, vocab known, ...).
  void validate(const std::string& where) const;
};

// The architecture as "key value" lines, in a fixed order: what checkpoints and quantized files
// store, so that a model file describes itself. parse_architecture reads them back from a
// key→value map (keys it uses are erased, so the caller can reject leftovers); `where` names
// the file in messages. Format version 2 (version 1 files knew GPT-2 only). A sparse attention
// pattern adds attention_* lines; a dense model has none, so its description is as before.
std::string describe_architecture(const ModelConfig& config);
ModelConfig parse_architecture(std::map<std::string, std::string>& keys, const std::string& where);
// The description on one line ("n_layer 4, n_embd 256, …"), for messages.
std::string summarize_architecture(const ModelConfig& config);
// Parses "key value" lines (text after a first line that the caller checks) into a map;
// a malformed or repeated line is an error naming `where`.
std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& where);

struct TrainConfig {
  std::size_t batch_size = 8;
  // A step's batch_size sequences in this many micro-batches of batch_size / micro_batches, whose
  // gradients are summed by a fixed tree (data_parallel.h): the bits depend on it, not on the
  // number of ranks that share the micro-batches. 1: the whole batch at once, as before.
  std::size_t micro_batches = 1;
  std::size_t seq_len = 0;  // 0: the model's context
  std::size_t steps = 1000;
  double learning_rate = 1e-3, min_lr_fraction = 0.1;
  std::size_t warmup_steps = 100;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // global-norm clip; 0 disables
  std::size_t eval_every = 100, eval_batches = 8;
  std::size_t checkpoint_every = 500;
  std::uint64_t seed = 1337;
};

ModelConfig parse_model_config(const ConfigSection& section);
TrainConfig parse_train_config(const ConfigSection& section);

// Learning rate at 0-based step `step`: linear warmup to learning_rate over warmup_steps, then
// cosine decay to min_lr_fraction·learning_rate at the last step.
double learning_rate_at(const TrainConfig& train, std::size_t step);

const char* to_string(ModelConfig::Position position);
const char* to_string(ModelConfig::Activation activation);
// Do two models have the same architecture and shape (what a resume or a load must match)?
bool same_architecture(const ModelConfig& a, const ModelConfig& b);

}  // namespace minitx
