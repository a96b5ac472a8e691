#include <fmt/format.h>

#include "commands.h"
#include "minitx/backend/cpu/gemm.h"
#include "minitx/core/build_info.h"
#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"

namespace minitx::cli {

int run_info(Args& args) {
  args.done();
  for (const auto& [key, value] : build_info()) fmt::print("{:<14} {}\n", key, value);
  fmt::print("{:<14} {}\n", "threads", thread_count());
  // Run-time choice, not a build setting: either kernel gives the same bits.
  fmt::print("{:<14} {}\n", "gemm kernel", cpu::gemm_isa_name(cpu::gemm_isa()));
  fmt::print("{:<14} {}\n", "quant kernel", quant::dot_kernels().name);
  const auto gpus = cuda_devices();
  if (gpus.empty()) fmt::print("{:<14} none visible\n", "gpu");
  for (const auto& g : gpus)
    fmt::print("{:<14} {} (sm_{}{}, {} SMs, {:.1f} GiB)\n", "gpu", g.name, g.compute_major, g.compute_minor, g.sm_count,
               static_cast<double>(g.memory_bytes) / (1 << 30));
  return 0;
}

}  // namespace minitx::cli
