// The subcommands of build/minitx. Each lives in its own cmd_*.cpp: it parses its options,
// calls the library and reports; the table in commands.cpp lists them for dispatch and help.
#pragma once
#include <string_view>
#include <vector>

#include "args.h"

namespace minitx::cli {

struct Command {
  std::string_view name;     // one or two words: "fetch", "tokenizer train"
  std::string_view summary;  // one line for `minitx --help`
  std::string_view usage;    // the text of `minitx <name> --help`
  int (*run)(Args& args);
};

const std::vector<Command>& commands();

// One declaration per command file.
int run_fetch(Args& args);
int run_verify_corpus(Args& args);
int run_config_vars(Args& args);
int run_pack(Args& args);
int run_verify(Args& args);
int run_provenance(Args& args);
int run_info(Args& args);
int run_train(Args& args);
int run_eval(Args& args);
int run_generate(Args& args);
int run_bench_gemm(Args& args);
int run_bench_train(Args& args);
int run_bench_generate(Args& args);
int run_bench_decode(Args& args);
int run_tokenizer_train(Args& args);
int run_tokenizer_encode(Args& args);
int run_tokenizer_decode(Args& args);
int run_tokenizer_info(Args& args);
int run_bench_tokenizer(Args& args);
int run_bench_quant_kernels(Args& args);
int run_quantize(Args& args);
int run_bench_quant(Args& args);
int run_import(Args& args);
int run_export(Args& args);
int run_logits(Args& args);
int run_attention_map(Args& args);
int run_bench_attention(Args& args);
int run_report(Args& args);

}  // namespace minitx::cli
