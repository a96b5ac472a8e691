#include "minitx/model/config.h"

#include <charconv>
#include <cmath>
#include <numbers>

#include "minitx/core/config.h"
#include "minitx/core/error.h"

namespace minitx {

const char* to_string(ModelConfig::Position position) {
  return position == ModelConfig::Position::learned ? "learned" : "rotary";
}
const char* to_string(ModelConfig::Activation activation) {
  switch (activation) {
    case ModelConfig::Activation::gelu_tanh: return "gelu_tanh";
    case ModelConfig::Activation::gelu_erf: return "gelu_erf";
    case ModelConfig::Activation::relu: return "relu";
  }
  return "?";
}

std::size_t ModelConfig::rotary_dims() const {
  if (position != Position::rotary) return 0;
  // As transformers computes it: int(head_size * rotary_pct).
  return static_cast<std::size_t>(static_cast<double>(head_size()) * rotary_fraction);
}

void ModelConfig::validate(const std::string& where) const {
  MINITX_CHECK(n_layer >= 1 && n_embd >= 1 && n_head >= 1 && context >= 1, "{}: the model needs at least one layer, channel, head and position", where);
  MINITX_CHECK(n_layer <= 4096 && n_embd <= 65536 && n_head <= 4096 && context <= (1u << 20) && ffn <= (1u << 20),
               "{}: the model's shape (n_layer {}, n_embd {}, n_head {}, context {}, ffn {}) is beyond the sizes minitx accepts", where,
               n_layer, n_embd, n_head, context, ffn);
  MINITX_CHECK(n_embd % n_head == 0, "{}: n_embd = {} is not a multiple of n_head = {}", where, n_embd, n_head);
  MINITX_CHECK(vocab_size >= 2 && vocab_size <= (1u << 24), "{}: vocab size {} out of range 2..16777216", where, vocab_size);
  MINITX_CHECK(vocab_tokens <= vocab_size, "{}: {} tokens do not fit an embedding of {} rows", where, vocab_tokens, vocab_size);
  MINITX_CHECK(position == Position::learned || position_offset == 0, "{}: position_offset = {} needs learned positions", where,
               position_offset);
  MINITX_CHECK(position_offset <= 65536, "{}: position_offset = {} is out of range 0..65536", where, position_offset);
  if (position == Position::rotary) {
    MINITX_CHECK(rotary_fraction > 0.0 && rotary_fraction <= 1.0, "{}: rotary_fraction = {} is outside (0, 1]", where, rotary_fraction);
    MINITX_CHECK(rotary_dims() >= 2 && rotary_dims() % 2 == 0,
                 "{}: rotary_fraction = {} of a head of {} rotates {} dimensions; an even number of at least 2 is needed", where,
                 rotary_fraction, head_size(), rotary_dims());
    MINITX_CHECK(rotary_base > 1.0 && rotary_base < 1e12, "{}: rotary_base = {} is outside (1, 1e12)", where, rotary_base);
  }
  MINITX_CHECK(ln_eps > 0.0 && ln_eps < 1.0, "{}: ln_eps = {} is outside (0, 1)", where, ln_eps);
  MINITX_CHECK(dropout == 0.0, "{}: dropout = {} is not supported: training is deterministic, use 0", where, dropout);
}

bool same_architecture(const ModelConfig& a, const ModelConfig& b) {
  return describe_architecture(a) == describe_architecture(b);
}

std::string describe_architecture(const ModelConfig& m) {
  // {:.17g} prints a double that reads back to the same bits.
  return fmt::format(
      "n_layer {}\nn_embd {}\nn_head {}\ncontext {}\nvocab_size {}\nvocab_tokens {}\nffn {}\nposition {}\n"
      "position_offset {}\nrotary_fraction {:.17g}\nrotary_base {:.17g}\nparallel_residual {}\nactivation {}\n"
      "ln_eps {:.17g}\ntied_head {}\nbias {}\n",
      m.n_layer, m.n_embd, m.n_head, m.context, m.vocab_size, m.tokens(), m.ffn_width(), to_string(m.position),
      m.position_offset, m.rotary_fraction, m.rotary_base, m.parallel_residual ? 1 : 0, to_string(m.activation),
      m.ln_eps, m.tied_head ? 1 : 0, m.bias ? 1 : 0) +
         sparse::describe_pattern(m.attention);
}

std::string summarize_architecture(const ModelConfig& m) {
  std::string text = describe_architecture(m);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  std::string out;
  for (char ch : text) out += ch == '\n' ? std::string(", ") : std::string(1, ch);
  return out;
}

namespace {

std::string take(std::map<std::string, std::string>& keys, const std::string& key, const std::string& where) {
  const auto it = keys.find(key);
  MINITX_CHECK(it != keys.end(), "{}: the model description lacks '{}'", where, key);
  std::string value = std::move(it->second);
  keys.erase(it);
  return value;
}

std::size_t take_size(std::map<std::string, std::string>& keys, const std::string& key, const std::string& where) {
  const std::string value = take(keys, key, where);
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  MINITX_CHECK(ec == std::errc() && end == value.data() + value.size() && !value.empty() && out <= (1u << 30),
               "{}: {} = '{}': expected a whole number up to 2^30", where, key, value.substr(0, 40));
  return static_cast<std::size_t>(out);
}

double take_number(std::map<std::string, std::string>& keys, const std::string& key, const std::string& where) {
  const std::string value = take(keys, key, where);
  double out = 0.0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  MINITX_CHECK(ec == std::errc() && end == value.data() + value.size() && !value.empty() && std::isfinite(out),
               "{}: {} = '{}': expected a finite number", where, key, value.substr(0, 40));
  return out;
}

bool take_flag(std::map<std::string, std::string>& keys, const std::string& key, const std::string& where) {
  const std::string value = take(keys, key, where);
  MINITX_CHECK(value == "0" || value == "1", "{}: {} = '{}': expected 0 or 1", where, key, value.substr(0, 40));
  return value == "1";
}

}  // namespace

ModelConfig parse_architecture(std::map<std::string, std::string>& keys, const std::string& where) {
  ModelConfig m;
  m.n_layer = take_size(keys, "n_layer", where);
  m.n_embd = take_size(keys, "n_embd", where);
  m.n_head = take_size(keys, "n_head", where);
  m.context = take_size(keys, "context", where);
  m.vocab_size = take_size(keys, "vocab_size", where);
  m.vocab_tokens = take_size(keys, "vocab_tokens", where);
  m.ffn = take_size(keys, "ffn", where);
  const std::string position = take(keys, "position", where);
  MINITX_CHECK(position == "learned" || position == "rotary", "{}: position = '{}': expected learned or rotary", where,
               position.substr(0, 40));
  m.position = position == "learned" ? ModelConfig::Position::learned : ModelConfig::Position::rotary;
  m.position_offset = take_size(keys, "position_offset", where);
  m.rotary_fraction = take_number(keys, "rotary_fraction", where);
  m.rotary_base = take_number(keys, "rotary_base", where);
  m.parallel_residual = take_flag(keys, "parallel_residual", where);
  const std::string activation = take(keys, "activation", where);
  if (activation == "gelu_tanh") m.activation = ModelConfig::Activation::gelu_tanh;
  else if (activation == "gelu_erf") m.activation = ModelConfig::Activation::gelu_erf;
  else if (activation == "relu") m.activation = ModelConfig::Activation::relu;
  else fail("{}: activation = '{}': expected gelu_tanh, gelu_erf or relu", where, activation.substr(0, 40));
  m.ln_eps = take_number(keys, "ln_eps", where);
  m.tied_head = take_flag(keys, "tied_head", where);
  m.bias = take_flag(keys, "bias", where);
  m.attention = sparse::parse_pattern(keys, where);
  if (m.ffn == 0) m.ffn = 4 * m.n_embd;
  m.validate(where);
  return m;
}

std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& where) {
  std::map<std::string, std::string> kv;
  std::size_t at = 0, line_no = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    const std::size_t space = line.find(' ');
    MINITX_CHECK(space != std::string::npos && space > 0, "{}: metadata line {} '{}' is not 'key value'", where, line_no,
                 line.substr(0, 60));
    MINITX_CHECK(kv.emplace(line.substr(0, space), line.substr(space + 1)).second, "{}: metadata key '{}' repeats", where,
                 line.substr(0, std::min<std::size_t>(space, 60)));
  }
  return kv;
}

ModelConfig parse_model_config(const ConfigSection& s) {
  ModelConfig m;
  m.n_layer = static_cast<std::size_t>(s.integer("n_layer", 1, 256));
  m.n_embd = static_cast<std::size_t>(s.integer("n_embd", 8, 16384));
  m.n_head = static_cast<std::size_t>(s.integer("n_head", 1, 256));
  m.context = static_cast<std::size_t>(s.integer("context", 2, 65536));
  if (m.n_embd % m.n_head != 0)
    s.error("n_head", fmt::format("must divide n_embd = {}, got {}", m.n_embd, m.n_head));
  m.ffn = static_cast<std::size_t>(s.integer("ffn", 1, 262144, static_cast<std::int64_t>(4 * m.n_embd)));
  m.position = s.choice("position", {"learned", "rotary"}, "learned") == "learned" ? ModelConfig::Position::learned
                                                                                   : ModelConfig::Position::rotary;
  m.position_offset = static_cast<std::size_t>(s.integer("position_offset", 0, 65536, 0));
  if (m.position == ModelConfig::Position::rotary && m.position_offset != 0)
    s.error("position_offset", "applies to learned positions only");
  m.rotary_fraction = s.number("rotary_fraction", 0.0, 1.0, 1.0);
  m.rotary_base = s.number("rotary_base", 2.0, 1e12, 10000.0);
  if (m.position == ModelConfig::Position::rotary) {
    const std::size_t dims = m.rotary_dims();
    if (dims < 2 || dims % 2 != 0)
      s.error("rotary_fraction", fmt::format("{} of a head of {} dimensions rotates {}; an even number of at least 2 is needed",
                                             m.rotary_fraction, m.head_size(), dims));
  }
  m.parallel_residual = s.boolean("parallel_residual", false);
  if (s.has("activation") && s.string("activation") == "gelu")
    s.error("activation", "\"gelu\" is ambiguous: GPT-2's tanh approximation is now \"gelu_tanh\" (what \"gelu\" meant "
                          "here before), the exact form (Hugging Face's \"gelu\", GPT-NeoX) is \"gelu_erf\"");
  const std::string activation = s.choice("activation", {"gelu_tanh", "gelu_erf", "relu"}, "gelu_tanh");
  m.activation = activation == "gelu_tanh"  ? ModelConfig::Activation::gelu_tanh
                 : activation == "gelu_erf" ? ModelConfig::Activation::gelu_erf
                                            : ModelConfig::Activation::relu;
  m.ln_eps = s.number("ln_eps", 1e-12, 0.1, 1e-5);
  m.tied_head = s.boolean("tied_head", true);
  m.bias = s.boolean("bias", true);
  m.dropout = s.number("dropout", 0.0, 1.0, 0.0);
  m.init_std = s.number("init_std", 1e-6, 1.0, 0.02);
  if (m.dropout != 0.0) s.error("dropout", "only 0 is supported: training is deterministic");
  if (const auto attention = s.optional_table("attention")) m.attention = sparse::parse_attention_pattern(*attention);
  s.finish();
  return m;
}

TrainConfig parse_train_config(const ConfigSection& s) {
  TrainConfig t;
  t.batch_size = static_cast<std::size_t>(s.integer("batch_size", 1, 4096));
  t.seq_len = static_cast<std::size_t>(s.integer("seq_len", 0, 65536, 0));
  t.steps = static_cast<std::size_t>(s.integer("steps", 1, 100000000));
  t.learning_rate = s.number("learning_rate", 0.0, 10.0);
  t.min_lr_fraction = s.number("min_lr_fraction", 0.0, 1.0, 0.1);
  t.warmup_steps = static_cast<std::size_t>(s.integer("warmup_steps", 0, 100000000, 0));
  t.weight_decay = s.number("weight_decay", 0.0, 10.0, 0.1);
  t.beta1 = s.number("beta1", 0.0, 0.999999, 0.9);
  t.beta2 = s.number("beta2", 0.0, 0.999999, 0.95);
  t.eps = s.number("eps", 0.0, 1.0, 1e-8);
  t.grad_clip = s.number("grad_clip", 0.0, 1e6, 1.0);
  t.eval_every = static_cast<std::size_t>(s.integer("eval_every", 1, 100000000, 100));
  t.eval_batches = static_cast<std::size_t>(s.integer("eval_batches", 1, 1000000, 8));
  t.checkpoint_every = static_cast<std::size_t>(s.integer("checkpoint_every", 1, 100000000, 500));
  t.seed = static_cast<std::uint64_t>(s.integer("seed", 0, INT64_MAX, 1337));
  t.micro_batches = static_cast<std::size_t>(s.integer("micro_batches", 1, 4096, 1));
  if (t.batch_size % t.micro_batches != 0)
    s.error("micro_batches", fmt::format("must divide batch_size = {}, got {}: each micro-batch takes batch_size / "
                                         "micro_batches whole sequences",
                                         t.batch_size, t.micro_batches));
  s.finish();
  return t;
}

double learning_rate_at(const TrainConfig& t, std::size_t step) {
  if (step < t.warmup_steps) return t.learning_rate * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  const double min_lr = t.learning_rate * t.min_lr_fraction;
  const std::size_t decay_steps = t.steps > t.warmup_steps + 1 ? t.steps - t.warmup_steps - 1 : 1;
  const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / static_cast<double>(decay_steps));
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (t.learning_rate - min_lr);
}

}  // namespace minitx
