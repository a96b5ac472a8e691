#include <doctest/doctest.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/model/hf_config.h"

using namespace minitx;

namespace {

// The fields of the public checkpoints' own config.json files (gpt2, facebook/opt-125m,
// EleutherAI/pythia-70m), trimmed of what the importer does not read.
const char* kGpt2 = R"({
  "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
  "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
  "n_inner": null, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "vocab_size": 50257
})";
const char* kOpt = R"({
  "_remove_final_layer_norm": false, "activation_dropout": 0.0, "activation_function": "relu",
  "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2,
  "do_layer_norm_before": true, "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 3072, "hidden_size": 768,
  "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048, "model_type": "opt",
  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "torch_dtype": "float16",
  "use_cache": true, "vocab_size": 50272, "word_embed_proj_dim": 768
})";
const char* kPythia = R"({
  "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu",
  "hidden_size": 512, "initializer_range": 0.02, "intermediate_size": 2048, "layer_norm_eps": 1e-05,
  "max_position_embeddings": 2048, "model_type": "gpt_neox", "num_attention_heads": 8,
  "num_hidden_layers": 6, "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": false,
  "torch_dtype": "float16", "use_cache": true, "use_parallel_residual": true, "vocab_size": 50304
})";

// `base` with keys replaced (a JSON value) or removed (an empty string).
std::string edit(const char* base, std::initializer_list<std::pair<const char*, const char*>> changes) {
  nlohmann::json j = nlohmann::json::parse(base);
  for (const auto& [key, value] : changes) {
    if (std::string(value).empty()) j.erase(key);
    else j[key] = nlohmann::json::parse(value);
  }
  return j.dump();
}

HfConfig parse(const std::string& text) { return parse_hf_config(text, "config.json"); }

}  // namespace

TEST_CASE("hf config: GPT-2 reads as learned positions, gelu-tanh, tied, FFN 4x by default") {
  const HfConfig c = parse(kGpt2);
  CHECK(c.model_type == HfModelType::gpt2);
  CHECK(c.n_layer == 12);
  CHECK(c.hidden_size == 768);
  CHECK(c.n_head == 12);
  CHECK(c.head_dim() == 64);
  CHECK(c.ffn_size == 3072);
  CHECK(c.vocab_size == 50257);
  CHECK(c.max_positions == 1024);
  CHECK(c.layer_norm_eps == 1e-5);
  CHECK(c.activation == HfActivation::gelu_tanh);
  CHECK_FALSE(c.rotary);
  CHECK(c.rotary_dims() == 0);
  CHECK(c.position_offset == 0);
  CHECK_FALSE(c.parallel_residual);
  CHECK(c.tie_word_embeddings);
  CHECK(c.attention_bias);
  CHECK(c.mlp_bias);
  CHECK(c.final_layer_norm);
  CHECK(c.bos_token_id == 50256);
  CHECK(c.eos_token_id == 50256);
  CHECK_FALSE(c.pad_token_id.has_value());

  const HfConfig d = parse(edit(kGpt2, {{"n_inner", "1000"}, {"activation_function", "\"gelu_pytorch_tanh\""},
                                        {"layer_norm_epsilon", "1e-6"}, {"tie_word_embeddings", "false"},
                                        {"bos_token_id", "null"}, {"eos_token_id", ""}}));
  CHECK(d.ffn_size == 1000);
  CHECK(d.activation == HfActivation::gelu_tanh);
  CHECK(d.layer_norm_eps == 1e-6);
  CHECK_FALSE(d.tie_word_embeddings);
  CHECK_FALSE(d.bos_token_id.has_value());
  CHECK(d.eos_token_id == 50256);  // GPT2Config's default when the key is absent
  CHECK(parse(edit(kGpt2, {{"activation_function", "\"gelu\""}})).activation == HfActivation::gelu_erf);
  CHECK(parse(edit(kGpt2, {{"activation_function", "\"relu\""}})).activation == HfActivation::relu);
  CHECK(parse(edit(kGpt2, {{"activation_function", ""}})).activation == HfActivation::gelu_tanh);
}

TEST_CASE("hf config: OPT reads as relu, positions offset by 2, epsilon 1e-5, tied") {
  const HfConfig c = parse(kOpt);
  CHECK(c.model_type == HfModelType::opt);
  CHECK(c.n_layer == 12);
  CHECK(c.hidden_size == 768);
  CHECK(c.n_head == 12);
  CHECK(c.ffn_size == 3072);
  CHECK(c.vocab_size == 50272);
  CHECK(c.max_positions == 2048);
  CHECK(c.position_offset == 2);
  CHECK(c.layer_norm_eps == 1e-5);
  CHECK(c.activation == HfActivation::relu);
  CHECK(c.tie_word_embeddings);
  CHECK(c.attention_bias);
  CHECK(c.mlp_bias);
  CHECK(c.final_layer_norm);
  CHECK(c.pad_token_id == 1);
  CHECK(c.bos_token_id == 2);

  const HfConfig d = parse(edit(kOpt, {{"_remove_final_layer_norm", "true"}, {"enable_bias", "false"},
                                       {"word_embed_proj_dim", ""}, {"tie_word_embeddings", "false"}}));
  CHECK_FALSE(d.final_layer_norm);
  CHECK_FALSE(d.attention_bias);
  CHECK_FALSE(d.mlp_bias);
  CHECK_FALSE(d.tie_word_embeddings);
  // The old spelling of the width.
  CHECK(parse(edit(kOpt, {{"hidden_size", ""}, {"d_model", "768"}})).hidden_size == 768);
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"d_model", "512"}})), "\"hidden_size\" (768) and \"d_model\" (512) disagree");
}

TEST_CASE("hf config: Pythia reads as partial rotary, parallel residual, gelu-erf, untied") {
  const HfConfig c = parse(kPythia);
  CHECK(c.model_type == HfModelType::gpt_neox);
  CHECK(c.n_layer == 6);
  CHECK(c.hidden_size == 512);
  CHECK(c.n_head == 8);
  CHECK(c.ffn_size == 2048);
  CHECK(c.vocab_size == 50304);
  CHECK(c.max_positions == 2048);
  CHECK(c.activation == HfActivation::gelu_erf);
  CHECK(c.rotary);
  CHECK(c.rotary_fraction == 0.25);
  CHECK(c.rotary_base == 10000.0);
  CHECK(c.rotary_dims() == 16);
  CHECK(c.position_offset == 0);
  CHECK(c.parallel_residual);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.attention_bias);
  CHECK(c.bos_token_id == 0);
  CHECK(c.eos_token_id == 0);

  // GPTNeoXConfig's defaults differ from GPT-2's: untied, parallel, rotary 0.25 of base 10000.
  const HfConfig d = parse(edit(kPythia, {{"tie_word_embeddings", ""}, {"use_parallel_residual", ""},
                                          {"rotary_pct", ""}, {"rotary_emb_base", ""}, {"attention_bias", "false"}}));
  CHECK_FALSE(d.tie_word_embeddings);
  CHECK(d.parallel_residual);
  CHECK(d.rotary_fraction == 0.25);
  CHECK(d.rotary_base == 10000.0);
  CHECK_FALSE(d.attention_bias);
  CHECK(d.mlp_bias);
  const HfConfig full = parse(edit(kPythia, {{"rotary_pct", "1.0"}, {"use_parallel_residual", "false"}}));
  CHECK(full.rotary_dims() == 64);
  CHECK_FALSE(full.parallel_residual);
}

TEST_CASE("hf config: the files transformers 5 writes (rope_parameters, dtype) read the same") {
  // As save_pretrained wrote them with transformers 5.17 for scripts/make_arch_fixtures.py.
  const HfConfig neox = parse(R"({
    "architectures": ["GPTNeoXForCausalLM"], "attention_bias": true, "attention_dropout": 0.0, "bos_token_id": 0,
    "classifier_dropout": 0.1, "dtype": "float32", "eos_token_id": 0, "hidden_act": "gelu", "hidden_dropout": 0.0,
    "hidden_size": 64, "initializer_range": 0.2, "intermediate_size": 128, "is_decoder": false,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 64, "model_type": "gpt_neox", "num_attention_heads": 4,
    "num_hidden_layers": 2, "pad_token_id": null,
    "rope_parameters": {"partial_rotary_factor": 0.25, "rope_theta": 10000, "rope_type": "default"},
    "tie_word_embeddings": false, "transformers_version": "5.17.0", "use_cache": true,
    "use_parallel_residual": true, "vocab_size": 384})");
  CHECK(neox.rotary_dims() == 4);
  CHECK(neox.rotary_base == 10000.0);
  CHECK(neox.parallel_residual);
  CHECK_FALSE(neox.tie_word_embeddings);
  CHECK(neox.vocab_size == 384);
  CHECK(neox.ffn_size == 128);
  CHECK_FALSE(neox.pad_token_id.has_value());
  const HfConfig gpt2 = parse(R"({
    "activation_function": "gelu_new", "add_cross_attention": false, "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.0, "bos_token_id": 0, "dtype": "float32", "embd_pdrop": 0.0, "eos_token_id": 0,
    "initializer_range": 0.2, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_embd": 64, "n_head": 4,
    "n_inner": 128, "n_layer": 2, "n_positions": 64, "pad_token_id": null, "reorder_and_upcast_attn": false,
    "resid_pdrop": 0.0, "scale_attn_by_inverse_layer_idx": false, "scale_attn_weights": true,
    "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
    "summary_type": "cls_index", "summary_use_proj": true, "tie_word_embeddings": true,
    "transformers_version": "5.17.0", "use_cache": true, "vocab_size": 383})");
  CHECK(gpt2.ffn_size == 128);
  CHECK(gpt2.vocab_size == 383);
  CHECK(gpt2.tie_word_embeddings);
  CHECK(gpt2.bos_token_id == 0);
}

TEST_CASE("hf config: every spelling of the rotary settings, and disagreements between them") {
  const auto strip = [](std::initializer_list<std::pair<const char*, const char*>> more) {
    std::string base = edit(kPythia, {{"rotary_pct", ""}, {"rotary_emb_base", ""}});
    nlohmann::json j = nlohmann::json::parse(base);
    for (const auto& [k, v] : more) j[k] = nlohmann::json::parse(v);
    return j.dump();
  };
  HfConfig c = parse(strip({{"rope_theta", "500"}, {"partial_rotary_factor", "0.5"}}));
  CHECK(c.rotary_base == 500.0);
  CHECK(c.rotary_fraction == 0.5);
  c = parse(strip({{"rope_parameters", R"({"rope_type":"default","rope_theta":20000.0,"partial_rotary_factor":1.0})"}}));
  CHECK(c.rotary_base == 20000.0);
  CHECK(c.rotary_fraction == 1.0);
  c = parse(strip({{"rope_parameters", R"({"rope_theta":1000})"}, {"rotary_pct", "0.5"}, {"rope_scaling", "null"}}));
  CHECK(c.rotary_base == 1000.0);
  CHECK(c.rotary_fraction == 0.5);
  // Agreeing spellings are fine, whichever way they are written.
  c = parse(strip({{"rope_parameters", R"({"rope_theta":10000,"partial_rotary_factor":0.25})"},
                   {"rotary_emb_base", "10000.0"}, {"rotary_pct", "0.25"}}));
  CHECK(c.rotary_dims() == 16);

  CHECK_ERROR_CONTAINS(parse(strip({{"rope_theta", "500"}, {"rotary_emb_base", "10000"}})),
                       "\"rope_theta\" (500) and \"rotary_emb_base\" (10000) disagree");
  CHECK_ERROR_CONTAINS(parse(strip({{"rope_parameters", R"({"partial_rotary_factor":0.5})"}, {"rotary_pct", "0.25"}})),
                       "\"rotary_pct\" (0.25) and \"rope_parameters.partial_rotary_factor\" (0.5) disagree");
  CHECK_ERROR_CONTAINS(parse(strip({{"rope_parameters", R"({"rope_type":"linear","factor":2.0})"}})),
                       "rope_parameters rope_type \"linear\" is not supported (expected \"default\")");
  CHECK_ERROR_CONTAINS(parse(strip({{"rope_scaling", R"({"type":"dynamic","factor":2.0})"}})),
                       "rope_scaling rope_type \"dynamic\" is not supported");
  CHECK_ERROR_CONTAINS(parse(strip({{"rope_parameters", "[1]"}})), "\"rope_parameters\" is an array, expected an object or null");
  CHECK_ERROR_CONTAINS(parse(strip({{"rope_parameters", R"({"rope_theta":"big"})"}})),
                       "config.json: rope_parameters: \"rope_theta\" is the string \"big\", expected a number");
  CHECK_ERROR_CONTAINS(parse(strip({{"rotary_pct", "0"}})), "rotary fraction 0 is not in (0, 1]");
  CHECK_ERROR_CONTAINS(parse(strip({{"rotary_pct", "1.5"}})), "rotary fraction 1.5 is not in (0, 1]");
  CHECK_ERROR_CONTAINS(parse(strip({{"rotary_emb_base", "-1"}})), "rotary base -1 is not a number above 1");
  // int(64 · 0.1) = 6 is fine; int(64 · 0.05) = 3 is odd, int(64 · 0.01) = 0 is nothing.
  CHECK(parse(strip({{"rotary_pct", "0.1"}})).rotary_dims() == 6);
  CHECK_ERROR_CONTAINS(parse(strip({{"rotary_pct", "0.05"}})),
                       "rotary fraction 0.05 of head size 64 gives 3 rotary dimensions (expected a positive even number)");
  CHECK_ERROR_CONTAINS(parse(strip({{"rotary_pct", "0.01"}})), "gives 0 rotary dimensions");
}

TEST_CASE("hf config: what the models here cannot reproduce is refused by name") {
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"model_type", "\"llama\""}})),
                       "config.json: model_type \"llama\" is not supported (expected gpt2, opt or gpt_neox)");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"model_type", ""}})), "config.json: \"model_type\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"model_type", "2"}})), "\"model_type\" is the number 2, expected a string");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"activation_function", "\"silu\""}})),
                       "activation_function \"silu\" is not supported (expected gelu_new, gelu_pytorch_tanh, gelu or relu)");
  CHECK_ERROR_CONTAINS(parse(edit(kPythia, {{"hidden_act", "\"gelu_fast\""}})), "hidden_act \"gelu_fast\" is not supported");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"word_embed_proj_dim", "512"}})),
                       "word_embed_proj_dim 512 differs from hidden_size 768 (projected embeddings, as opt-350m) is not "
                       "supported");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"do_layer_norm_before", "false"}})),
                       "do_layer_norm_before false (post-norm OPT, as opt-350m) is not supported");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"layer_norm_elementwise_affine", "false"}})),
                       "layer_norm_elementwise_affine false");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"scale_attn_by_inverse_layer_idx", "true"}})),
                       "scale_attn_by_inverse_layer_idx true is not supported");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"scale_attn_weights", "false"}})), "scale_attn_weights false");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"add_cross_attention", "true"}})), "add_cross_attention true");
  CHECK_ERROR_CONTAINS(parse(edit(kPythia, {{"num_attention_heads", "7"}})), "7 heads do not divide the hidden size 512");
}

TEST_CASE("hf config: missing and mistyped fields are errors naming the key and the type expected") {
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_layer", ""}})), "config.json: \"n_layer\" is missing (expected a positive integer)");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_layer", "null"}})), "\"n_layer\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_embd", "\"768\""}})),
                       "config.json: \"n_embd\" is the string \"768\", expected a positive integer");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_embd", "768.0"}})), "\"n_embd\" is the number 768.0, expected a positive integer");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_head", "-12"}})), "\"n_head\" is the number -12, expected a positive integer");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_head", "0"}})), "\"n_head\" is the number 0, expected a positive integer");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"vocab_size", "4294967296"}})), "expected a positive integer up to 2147483648");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"n_positions", ""}})), "\"n_positions\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"layer_norm_epsilon", "\"1e-5\""}})),
                       "\"layer_norm_epsilon\" is the string \"1e-5\", expected a number");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"layer_norm_epsilon", "0"}})), "layer-norm epsilon 0 is not a small positive number");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"tie_word_embeddings", "1"}})),
                       "\"tie_word_embeddings\" is the number 1, expected true or false");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"activation_function", "[]"}})), "\"activation_function\" is an array, expected a string");
  CHECK_ERROR_CONTAINS(parse(edit(kGpt2, {{"eos_token_id", "\"</s>\""}})),
                       "\"eos_token_id\" is the string \"</s>\", expected an integer token id or null");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"ffn_dim", ""}})), "\"ffn_dim\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"hidden_size", ""}})), "\"hidden_size\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kOpt, {{"enable_bias", "\"no\""}})), "\"enable_bias\" is the string \"no\", expected true or false");
  CHECK_ERROR_CONTAINS(parse(edit(kPythia, {{"intermediate_size", ""}})), "\"intermediate_size\" is missing");
  CHECK_ERROR_CONTAINS(parse(edit(kPythia, {{"use_parallel_residual", "\"true\""}})),
                       "\"use_parallel_residual\" is the string \"true\", expected true or false");
  CHECK_ERROR_CONTAINS(parse("[1]"), "config.json: is an array, expected a JSON object");
  CHECK_ERROR_CONTAINS(parse("{\"model_type\": \"gpt2\""), "config.json: not valid JSON");
  CHECK_ERROR_CONTAINS(parse(R"({"model_type":"gpt2","model_type":"opt"})"), "duplicate key \"model_type\"");
}

TEST_CASE("hf config: read from a file names the file") {
  TempDir dir;
  const auto path = dir.path() / "config.json";
  CHECK_ERROR_CONTAINS(read_hf_config(path), path.string() + ": cannot open");
  write_file_atomic(path, edit(kOpt, {{"num_hidden_layers", "true"}}));
  CHECK_ERROR_CONTAINS(read_hf_config(path), path.string() + ": \"num_hidden_layers\" is true, expected a positive integer");
  write_file_atomic(path, kOpt);
  CHECK(read_hf_config(path).n_layer == 12);
}

TEST_CASE("hf config: written configs read back the same, in each family's own spelling") {
  HfConfig gpt2;
  gpt2.model_type = HfModelType::gpt2;
  gpt2.n_layer = 2;
  gpt2.hidden_size = 64;
  gpt2.n_head = 4;
  gpt2.ffn_size = 200;
  gpt2.vocab_size = 1000;
  gpt2.max_positions = 64;
  gpt2.layer_norm_eps = 1e-6;
  gpt2.activation = HfActivation::gelu_erf;
  gpt2.tie_word_embeddings = false;
  gpt2.bos_token_id = 5;
  gpt2.eos_token_id = 6;

  HfConfig opt = gpt2;
  opt.model_type = HfModelType::opt;
  opt.position_offset = 2;
  opt.layer_norm_eps = 1e-5;
  opt.activation = HfActivation::relu;
  opt.final_layer_norm = false;
  opt.attention_bias = opt.mlp_bias = false;
  opt.pad_token_id = 1;

  HfConfig neox = gpt2;
  neox.model_type = HfModelType::gpt_neox;
  neox.rotary = true;
  neox.rotary_fraction = 0.25;
  neox.rotary_base = 5000;
  neox.parallel_residual = true;
  neox.attention_bias = false;
  neox.activation = HfActivation::gelu_tanh;

  for (const HfConfig& c : {gpt2, opt, neox}) {
    CAPTURE(to_string(c.model_type));
    const std::string text = write_hf_config(c);
    const nlohmann::json j = nlohmann::json::parse(text);
    CHECK(j["model_type"] == std::string(to_string(c.model_type)));
    CHECK(j["torch_dtype"] == "float32");
    REQUIRE(j["architectures"].is_array());
    const HfConfig r = parse(text);
    CHECK(r.model_type == c.model_type);
    CHECK(r.n_layer == c.n_layer);
    CHECK(r.hidden_size == c.hidden_size);
    CHECK(r.n_head == c.n_head);
    CHECK(r.ffn_size == c.ffn_size);
    CHECK(r.vocab_size == c.vocab_size);
    CHECK(r.max_positions == c.max_positions);
    CHECK(r.layer_norm_eps == c.layer_norm_eps);
    CHECK(r.activation == c.activation);
    CHECK(r.rotary == c.rotary);
    CHECK(r.position_offset == c.position_offset);
    CHECK(r.rotary_fraction == c.rotary_fraction);
    CHECK(r.rotary_base == (c.rotary ? c.rotary_base : 10000.0));
    CHECK(r.parallel_residual == c.parallel_residual);
    CHECK(r.tie_word_embeddings == c.tie_word_embeddings);
    CHECK(r.attention_bias == c.attention_bias);
    CHECK(r.mlp_bias == c.mlp_bias);
    CHECK(r.final_layer_norm == c.final_layer_norm);
    CHECK(r.bos_token_id == c.bos_token_id);
    CHECK(r.eos_token_id == c.eos_token_id);
    CHECK(r.pad_token_id == c.pad_token_id);
    CHECK(write_hf_config(r) == text);
  }
  const nlohmann::json g = nlohmann::json::parse(write_hf_config(gpt2));
  CHECK(g["architectures"] == nlohmann::json{"GPT2LMHeadModel"});
  CHECK(g["n_embd"] == 64);
  CHECK(g["activation_function"] == "gelu");
  const nlohmann::json o = nlohmann::json::parse(write_hf_config(opt));
  CHECK(o["architectures"] == nlohmann::json{"OPTForCausalLM"});
  CHECK(o["_remove_final_layer_norm"] == true);
  CHECK(o["enable_bias"] == false);
  CHECK(o["word_embed_proj_dim"] == 64);
  const nlohmann::json n = nlohmann::json::parse(write_hf_config(neox));
  CHECK(n["architectures"] == nlohmann::json{"GPTNeoXForCausalLM"});
  CHECK(n["rotary_pct"] == 0.25);
  CHECK(n["rotary_emb_base"] == 5000.0);
  CHECK(n["hidden_act"] == "gelu_new");

  // What a family cannot express is refused rather than dropped.
  HfConfig bad = gpt2;
  bad.rotary = true;
  CHECK_ERROR_CONTAINS(write_hf_config(bad), "config.json for gpt2: GPT-2 has learned positions at offset 0");
  bad = opt;
  bad.position_offset = 0;
  CHECK_ERROR_CONTAINS(write_hf_config(bad), "config.json for opt: OPT has learned positions at offset 2");
  bad = neox;
  bad.rotary = false;
  CHECK_ERROR_CONTAINS(write_hf_config(bad), "config.json for gpt_neox: GPT-NeoX has rotary positions");
  bad = neox;
  bad.n_head = 5;
  CHECK_ERROR_CONTAINS(write_hf_config(bad), "the heads do not divide the width");
}
