#include "minitx/model/params.h"

#include <cmath>

#include "minitx/core/rng.h"
#include "minitx/core/threads.h"

namespace minitx {

std::array<ParamTensor, kParamTensors> param_tensors(const ModelConfig& m) {
  using I = ParamTensor::Init;
  const std::size_t L = m.n_layer, C = m.n_embd, V = m.vocab_size, T = m.context;
  return {{
      {"wte", V * C, I::normal, true},
      {"wpe", T * C, I::normal, true},
      {"ln1w", L * C, I::ones, false},
      {"ln1b", L * C, I::zeros, false},
      {"qkvw", L * 3 * C * C, I::normal, true},
      {"qkvb", L * 3 * C, I::zeros, false},
      {"attprojw", L * C * C, I::residual_normal, true},
      {"attprojb", L * C, I::zeros, false},
      {"ln2w", L * C, I::ones, false},
      {"ln2b", L * C, I::zeros, false},
      {"fcw", L * 4 * C * C, I::normal, true},
      {"fcb", L * 4 * C, I::zeros, false},
      {"fcprojw", L * 4 * C * C, I::residual_normal, true},
      {"fcprojb", L * C, I::zeros, false},
      {"lnfw", C, I::ones, false},
      {"lnfb", C, I::zeros, false},
  }};
}

std::size_t param_count(const ModelConfig& config) {
  std::size_t total = 0;
  for (const auto& t : param_tensors(config)) total += t.size;
  return total;
}

GptParams bind_params(float* base, const ModelConfig& config) {
  GptParams p{};
  float** fields[kParamTensors] = {&p.wte,  &p.wpe, &p.ln1w, &p.ln1b, &p.qkvw, &p.qkvb, &p.attprojw, &p.attprojb,
                                   &p.ln2w, &p.ln2b, &p.fcw, &p.fcb,  &p.fcprojw, &p.fcprojb, &p.lnfw, &p.lnfb};
  const auto tensors = param_tensors(config);
  for (std::size_t i = 0; i < kParamTensors; ++i) {
    *fields[i] = base;
    base += tensors[i].size;
  }
  return p;
}

void init_params(float* base, const ModelConfig& config, std::uint64_t seed) {
  const auto tensors = param_tensors(config);
  const float std_dev = static_cast<float>(config.init_std);
  const float residual_std = static_cast<float>(config.init_std / std::sqrt(2.0 * static_cast<double>(config.n_layer)));
  for (std::size_t k = 0; k < kParamTensors; ++k) {
    const ParamTensor& t = tensors[k];
    const CounterRng rng(seed, k);
    parallel_for(
        t.size,
        [&](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) {
            switch (t.init) {
              case ParamTensor::Init::normal: base[i] = std_dev * rng.normal(i); break;
              case ParamTensor::Init::residual_normal: base[i] = residual_std * rng.normal(i); break;
              case ParamTensor::Init::zeros: base[i] = 0.0f; break;
              case ParamTensor::Init::ones: base[i] = 1.0f; break;
            }
          }
        },
        4096);
    base += t.size;
  }
}

}  // namespace minitx
