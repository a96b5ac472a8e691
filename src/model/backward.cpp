// The backward on the CPU: the head's, then block.h's with the CPU's op table.
#include <algorithm>

#include "cpu_block_ops.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/model/gpt.h"

namespace minitx {

void gpt_backward(const GptModel& model, const GptParams& g, const GptActivations& a, const std::uint32_t* ids,
                  const float* dlogits, BackwardBuffers& buf) {
  const ModelConfig& m = model.config;
  const GptParams& p = model.params;
  const std::size_t C = m.n_embd, V = m.vocab_size, BT = a.B * a.T;
  std::fill(buf.dlnf, buf.dlnf + BT * C, 0.0f);
  cpu::matmul_backward(buf.dlnf, m.tied_head ? g.wte : g.head, nullptr, dlogits, a.lnf, m.tied_head ? p.wte : p.head,
                       BT, C, V);
  const GptWeights w = weights_of(model);
  CpuBlockOps ops(w, p, g, buf.datt);
  block_backward(ops, a, buf, ids);
}

}  // namespace minitx
