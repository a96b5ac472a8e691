#include "minitx/experiment.h"

#include "minitx/core/config.h"
#include "minitx/core/error.h"

namespace minitx {

const std::vector<std::string>& experiment_sections() {
  static const std::vector<std::string> kSections = {"corpus", "tokenizer", "data", "model", "train", "bench"};
  return kSections;
}

Experiment load_experiment(const std::filesystem::path& config_path) {
  const ConfigFile file = ConfigFile::load(config_path);
  const ConfigSection root = file.root();
  Experiment experiment;
  experiment.config_path = config_path;
  experiment.name = config_path.stem().string();
  experiment.out_dir = experiment.name == "default" ? std::filesystem::path("out") : std::filesystem::path("out") / experiment.name;
  experiment.corpus = parse_corpus_config(root.table("corpus"));
  if (const auto section = root.optional_table("tokenizer")) experiment.tokenizer = parse_tokenizer_config(*section);
  if (const auto section = root.optional_table("data")) experiment.data = parse_data_config(*section);
  if (const auto section = root.optional_table("model")) experiment.model = parse_model_config(*section);
  if (const auto section = root.optional_table("train")) experiment.train = parse_train_config(*section);
  if (const auto section = root.optional_table("bench")) experiment.bench = parse_bench_config(*section);
  root.finish();
  return experiment;
}

}  // namespace minitx
