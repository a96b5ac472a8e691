// Hugging Face files. The first byte picks the mode: even, the rest is a model.safetensors opened
// with SafetensorsCheckpoint::open_file (bit 1: allow gaps) and every tensor read with read_f32;
// odd, the rest is a config.json for parse_hf_config, and a config that parses and that
// write_hf_config can express must parse again to the same text.
#include "fuzz_common.h"
#include "minitx/model/hf_config.h"
#include "minitx/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest = fuzz::as_view(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    fuzz::InputFile file("model.safetensors", rest);
    minitx::SafetensorsOptions options;
    options.allow_gaps = (data[0] & 2) != 0;
    fuzz::expect_errors([&] {
      const auto ck = minitx::SafetensorsCheckpoint::open_file(file.path(), options);
      for (const std::string& name : ck.names()) {
        const minitx::SafeTensorInfo& info = ck.tensor(name);
        const std::vector<float> values = ck.read_f32(name);
        FUZZ_ASSERT(values.size() == info.numel(), "tensor " + name + ": read_f32 size");
      }
    });
    return 0;
  }
  minitx::HfConfig config;
  if (!fuzz::expect_errors([&] { config = minitx::parse_hf_config(rest, "config.json"); })) return 0;
  std::string written;
  if (!fuzz::expect_errors([&] { written = minitx::write_hf_config(config); })) return 0;
  fuzz::expect_success("write_hf_config gave a config.json that does not parse the same", [&] {
    const minitx::HfConfig again = minitx::parse_hf_config(written, "written config.json");
    FUZZ_ASSERT(minitx::write_hf_config(again) == written, "config.json differs after a write and a parse");
  });
  return 0;
}
