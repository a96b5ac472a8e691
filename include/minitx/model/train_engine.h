// Where the training loop's arithmetic runs: the loop (train.cpp) draws batches, schedules the
// learning rate, logs and checkpoints; an engine owns the parameters, gradients and AdamW moments
// on its device and does a step's forward, backward, clipping and update. Chosen once per run.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "minitx/model/config.h"

namespace minitx {

struct StepStats {
  double loss = 0.0;  // mean cross-entropy of the batch
  double norm = 0.0;  // global L2 norm of the gradients, before clipping
};

// The training state as the checkpoint holds it: fp32 parameters and both AdamW moments.
struct TrainState {
  std::vector<float> params, m, v;
};

class TrainEngine {
 public:
  virtual ~TrainEngine() = default;
  // ids, targets: B·T host token ids (checked against the vocabulary here).
  virtual StepStats forward_backward(const std::uint32_t* ids, const std::uint32_t* targets) = 0;
  // Clip the gradients to tc.grad_clip given their norm, then AdamW step `step` (1-based) at `lr`.
  virtual void update(const TrainConfig& tc, double lr, const StepStats& stats, std::size_t step) = 0;
  // Mean validation loss, windows as evaluate_loss cuts them.
  virtual double evaluate(const std::vector<std::uint32_t>& val, std::size_t T, std::size_t B,
                          std::size_t max_windows) = 0;
  virtual TrainState state() const = 0;
  // Wait until the work queued so far has finished (for timing; the CPU's is always done).
  virtual void synchronize() {}
  // Per-op device time of the steps taken while profiling is on, summed: where a step's time goes.
  // Only the GPU engine measures (with events between its kernels); the CPU's list is empty.
  struct OpTime {
    std::string op;
    double ms = 0.0;
    std::size_t calls = 0;
  };
  virtual void set_profiling(bool /*on*/) {}
  virtual std::vector<OpTime> op_times() const { return {}; }
  // What ran the step, for provenance: the GPU's name, and one line per matrix-product shape
  // naming the cuBLASLt algorithm chosen for it (the same on every run on one GPU model).
  virtual std::string hardware() const { return ""; }
  virtual std::vector<std::string> kernels() const { return {}; }
  virtual std::string device() const = 0;     // "cpu" or "cuda"
  virtual std::string precision() const = 0;  // "fp32" or "bf16"
};

// Bytes the CPU engine holds at its peak, by what they are for; in doubles, so that a config far
// too big for any machine gets a figure rather than an overflow. What make_cpu_engine allocates,
// plus what the loop adds on the way (train.cpp).
struct TrainingMemory {
  double state = 0;       // parameters, gradients and both AdamW moments
  double step = 0;        // a step's activations (every layer's, for the backward), backward buffers, logits
  double occasional = 0;  // the larger of a checkpoint's copy of the state and evaluation's buffers
  double total() const { return state + step + occasional; }
};
TrainingMemory cpu_training_memory(const ModelConfig& config, std::size_t B, std::size_t T);

// Device bytes the GPU engine allocates (precision "bf16" or "fp32"), as make_cuda_engine lays
// them out, without the 256-byte rounding of each activation buffer: `state` the fp32
// parameters, gradients and both AdamW moments (and in bf16 their bf16 copy), `step` every
// layer's activations, the backward's buffers, the logits and the batch's ids, plus `scratch`:
// what the op table's kernels and cuBLASLt take, which only a CUDA build can size (it passes
// them). `occasional` is 0: evaluation reuses the training buffers, checkpoints are on the host.
TrainingMemory cuda_training_memory(const ModelConfig& config, const std::string& precision, std::size_t B,
                                    std::size_t T, double scratch);
// Refuses, before anything is allocated on it, a GPU run whose buffers (`need`, from
// cuda_training_memory) do not fit in the `free` bytes of `gpu` ("GPU 0 (NVIDIA H200)"),
// naming what is needed, for what, and what is free of `total`.
void check_gpu_memory(const TrainingMemory& need, std::uint64_t free, std::uint64_t total, const std::string& gpu,
                      const ModelConfig& config, const std::string& precision, std::size_t B, std::size_t T);
// The `scratch` above for the GPU engine: its op table's scratch, cuBLASLt's workspace, the
// norm's partial sums and an allowance for cudaMalloc's rounding of each buffer (0 without CUDA).
double cuda_engine_scratch(const ModelConfig& config, std::size_t B, std::size_t T);
// How the GPU engine spreads a step (data_parallel.h): B/M sequences a micro-batch, M of them summed
// by the midpoint tree, on N ranks that each hold a replica and a shard of the AdamW moments. The
// ranks share the current GPU as threads (simulated), or take GPUs 0..N-1, one each, over NCCL.
// The checkpoint's bits depend on M, never on N or the transport.
struct GpuParallel {
  std::size_t micro_batches = 1, ranks = 1;
  bool nccl = false;
};
// The GPU's side of it: asks CUDA (cudaMemGetInfo) what the device has free (each of NCCL's GPUs)
// and calls check_gpu_memory with the engine's estimate for a rank (times the ranks sharing one
// GPU). Refuses first, naming the numbers, a layout data_parallel.h cannot keep the bits of, more
// GPUs than are visible, and several GPUs in a build without NCCL. make_cuda_engine calls it
// first; train calls it before it allocates the training state on the host. Nothing in a build
// without CUDA, where make_cuda_engine says so.
void check_cuda_memory(const ModelConfig& config, const std::string& precision, std::size_t B, std::size_t T,
                       const GpuParallel& parallel = {});

// The CPU: fp32 throughout, the bits of every earlier release.
std::unique_ptr<TrainEngine> make_cpu_engine(const ModelConfig& config, std::size_t B, std::size_t T,
                                             TrainState state);
// The GPU (precision "bf16" or "fp32"); an error naming what is missing in a build or on a
// machine without CUDA.
std::unique_ptr<TrainEngine> make_cuda_engine(const ModelConfig& config, const std::string& precision, std::size_t B,
                                              std::size_t T, TrainState state, const GpuParallel& parallel = {});

// Whether the GPU's bf16 attention kernel takes this model's head size (64 or 128).
bool bf16_attention_fits(const ModelConfig& config);
// The precision a run gets when none is asked for: fp32 on the CPU; bf16 on the GPU when
// bf16_attention_fits, fp32 otherwise.
std::string default_precision(const ModelConfig& config, const std::string& device);
// Model FLOPs per trained token at sequence length T, as PaLM's appendix counts them: 6 per
// parameter (forward and backward) plus the attention's 6·L·T·C (half of 12·L·T·C: causal).
double model_flops_per_token(const ModelConfig& config, std::size_t T);

// One AdamW call per tensor of the table, in storage order, with the step's settings (weight
// decay only where the table says): the same list on every device.
struct AdamWSlice {
  std::size_t offset, count;
  float lr, beta1, beta2, eps, weight_decay;
  std::uint64_t t;  // 1-based step
};
std::vector<AdamWSlice> adamw_slices(const ModelConfig& config, const TrainConfig& tc, double lr, std::size_t step);

}  // namespace minitx
