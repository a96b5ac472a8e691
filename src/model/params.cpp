#include "minitx/model/params.h"

#include <fmt/format.h>

#include <cmath>

#include "minitx/core/rng.h"
#include "minitx/core/threads.h"

namespace minitx {

std::vector<ParamTensor> param_tensors(const ModelConfig& m) {
  using I = ParamTensor::Init;
  using P = Param;
  const std::size_t C = m.n_embd, V = m.vocab_size, F = m.ffn_width();
  std::vector<ParamTensor> all = {
      {P::wte, "wte", false, V, C, I::normal, true},
      {P::wpe, "wpe", false, m.position_rows(), C, I::normal, true},
      {P::ln1w, "ln1w", true, C, 0, I::ones, false},
      {P::ln1b, "ln1b", true, C, 0, I::zeros, false},
      {P::qkvw, "qkvw", true, 3 * C, C, I::normal, true},
      {P::qkvb, "qkvb", true, 3 * C, 0, I::zeros, false},
      {P::attprojw, "attprojw", true, C, C, I::residual_normal, true},
      {P::attprojb, "attprojb", true, C, 0, I::zeros, false},
      {P::ln2w, "ln2w", true, C, 0, I::ones, false},
      {P::ln2b, "ln2b", true, C, 0, I::zeros, false},
      {P::fcw, "fcw", true, F, C, I::normal, true},
      {P::fcb, "fcb", true, F, 0, I::zeros, false},
      {P::fcprojw, "fcprojw", true, C, F, I::residual_normal, true},
      {P::fcprojb, "fcprojb", true, C, 0, I::zeros, false},
      {P::lnfw, "lnfw", false, C, 0, I::ones, false},
      {P::lnfb, "lnfb", false, C, 0, I::zeros, false},
      {P::head, "head", false, V, C, I::normal, true},
  };
  const auto present = [&](Param kind) {
    switch (kind) {
      case P::wpe: return m.position == ModelConfig::Position::learned;
      case P::qkvb:
      case P::attprojb:
      case P::fcb:
      case P::fcprojb: return m.bias;
      case P::head: return !m.tied_head;
      default: return true;
    }
  };
  std::vector<ParamTensor> out;
  for (const ParamTensor& t : all)
    if (present(t.kind)) out.push_back(t);
  return out;
}

ParamLayout param_layout(const ModelConfig& config) {
  ParamLayout layout;
  for (const ParamTensor& t : param_tensors(config)) {
    const auto k = static_cast<std::size_t>(t.kind);
    layout.offset[k] = layout.total;
    layout.present[k] = true;
    layout.total += t.size(config.n_layer);
  }
  return layout;
}

std::size_t param_count(const ModelConfig& config) { return param_layout(config).total; }

std::string tensor_name(const ParamTensor& t, std::size_t layer) {
  return t.per_layer ? fmt::format("h.{}.{}", layer, t.name) : std::string(t.name);
}

float* GptParams::at(Param kind) const {
  float* const fields[kParamKinds] = {wte,  wpe, ln1w, ln1b,    qkvw,    qkvb, attprojw, attprojb, ln2w,
                                      ln2b, fcw, fcb,  fcprojw, fcprojb, lnfw, lnfb,     head};
  return fields[static_cast<std::size_t>(kind)];
}

GptParams bind_params(float* base, const ModelConfig& config) {
  const ParamLayout layout = param_layout(config);
  GptParams p{};
  float** const fields[kParamKinds] = {&p.wte,  &p.wpe, &p.ln1w, &p.ln1b,    &p.qkvw,    &p.qkvb, &p.attprojw, &p.attprojb, &p.ln2w,
                                       &p.ln2b, &p.fcw, &p.fcb,  &p.fcprojw, &p.fcprojb, &p.lnfw, &p.lnfb,     &p.head};
  for (std::size_t k = 0; k < kParamKinds; ++k) *fields[k] = layout.present[k] ? base + layout.offset[k] : nullptr;
  return p;
}

void init_params(float* base, const ModelConfig& config, std::uint64_t seed) {
  const float std_dev = static_cast<float>(config.init_std);
  const float residual_std = static_cast<float>(config.init_std / std::sqrt(2.0 * static_cast<double>(config.n_layer)));
  for (const ParamTensor& t : param_tensors(config)) {
    const CounterRng rng(seed, static_cast<std::uint64_t>(t.kind));
    const std::size_t n = t.size(config.n_layer);
    parallel_for(
        n,
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
    base += n;
  }
}

}  // namespace minitx
