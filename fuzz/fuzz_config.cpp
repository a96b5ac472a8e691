// Experiment configs: load_experiment on the input as a file, and ConfigFile::parse on the same
// text with the canonical text of every section (what the stages hash).
#include "fuzz_common.h"
#include "minitx/core/config.h"
#include "minitx/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  fuzz::expect_errors([&] {
    const minitx::ConfigFile config = minitx::ConfigFile::parse(text, "fuzz.toml");
    for (const std::string& section : minitx::experiment_sections()) (void)config.canonical_section(section);
    (void)config.canonical_section("");
    (void)config.root().has("corpus");
  });
  fuzz::InputFile file("fuzz.toml", text);
  fuzz::expect_errors([&] { (void)minitx::load_experiment(file.path()); });
  return 0;
}
