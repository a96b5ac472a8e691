// The descriptor's activation, dispatched once for the forward, the decode step and the backward.
#pragma once
#include "minitx/backend/cpu/ops.h"
#include "minitx/model/config.h"

namespace minitx::detail {

inline void activation_forward(ModelConfig::Activation kind, float* out, const float* inp, std::size_t n) {
  switch (kind) {
    case ModelConfig::Activation::gelu_tanh: cpu::gelu_forward(out, inp, n); return;
    case ModelConfig::Activation::gelu_erf: cpu::gelu_erf_forward(out, inp, n); return;
    case ModelConfig::Activation::relu: cpu::relu_forward(out, inp, n); return;
  }
}

inline void activation_backward(ModelConfig::Activation kind, float* dinp, const float* inp, const float* dout,
                                std::size_t n) {
  switch (kind) {
    case ModelConfig::Activation::gelu_tanh: cpu::gelu_backward(dinp, inp, dout, n); return;
    case ModelConfig::Activation::gelu_erf: cpu::gelu_erf_backward(dinp, inp, dout, n); return;
    case ModelConfig::Activation::relu: cpu::relu_backward(dinp, inp, dout, n); return;
  }
}

}  // namespace minitx::detail
