// Generation on the GPU: the Decoder's contract (infer/decoder.h) with the model, its KV cache
// and the sampler on the device.
//
//   prefill   the prompt through block.h's forward with the CUDA op table (cuBLASLt products on
//             tensor cores), which also fills the cache
//   a step    one token through the persistent decode kernel (backend/cuda/decode.h), then the
//             sampler; captured once as a CUDA graph and replayed per token, with the token and
//             its position read from device memory
//
// Precision: bf16 (the default) keeps fp32 matrices of the model as bf16 and the KV cache in
// bf16; fp32 keeps both in fp32, for checking against the CPU. Quantized matrices (q8_0, q4_0
// from an .mtq file) stay packed in either: the step's kernels read the blocks, with fp32
// arithmetic. Norms, biases, the residual stream and the logits are fp32 in every mode. The
// prefill multiplies dense matrices, so it reads a dense copy of the model in the activations'
// type (for a quantized model: dequantized, which costs that copy's memory too).
//
// Sampling runs on the device with the CPU's definition (infer/sampling.h), so the same logits
// give the same token.
//
// Attention patterns (sparse/pattern.h) decode as the CPU's Decoder does: the prefill runs the
// pattern's block-sparse kernels, and a step reads only the key blocks its layout row keeps. For
// local and sinks the cache is a ring of the sink blocks and the window (model/kv_slots.h, the
// CPU cache's slots), so its memory is the same whatever the context; other patterns keep a cache
// of the whole context.
//
// Batches (dense attention): a decoder of batch B (1..kMaxDecodeSequences) holds B sequences,
// each with its own cache, position and draw index; a step feeds one token to each and reads
// every weight once for all of them. Each sequence's logits and tokens are bit for bit those it
// gets in a decoder of batch 1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "minitx/infer/sampling.h"
#include "minitx/model/config.h"
#include "minitx/model/weights.h"

namespace minitx {

enum class GpuPrecision { bf16, fp32 };
GpuPrecision parse_gpu_precision(const std::string& text, const std::string& what);
const char* to_string(GpuPrecision precision);

class CudaDecoder {
 public:
  // Uploads the weights (the view need not outlive the decoder) and preallocates the caches of
  // `batch` sequences (1..kMaxDecodeSequences) for the model's whole context (or its pattern's
  // ring). Errors, before allocating, when the device lacks the memory, for a batch outside that
  // range (checked first, with or without CUDA), and for a batch above 1 of a block-sparse pattern.
  CudaDecoder(const GptWeights& weights, GpuPrecision precision, std::size_t batch = 1);
  ~CudaDecoder();
  CudaDecoder(const CudaDecoder&) = delete;
  CudaDecoder& operator=(const CudaDecoder&) = delete;

  // As Decoder's, with the logits copied to the host: for tests, eval and comparisons.
  // prefill(ids, n) is sequence 0's; step(id) is for a decoder of batch 1.
  const std::vector<float>& prefill(const std::uint32_t* ids, std::size_t n);
  const std::vector<float>& step(std::uint32_t id);
  // Batches: fills sequence `seq`'s cache with `ids` and returns its logits (vocab_size); the
  // others' are untouched. step feeds ids[s] to sequence s, every sequence prefilled, and returns
  // batch × vocab_size logits, sequence by sequence.
  const std::vector<float>& prefill(std::size_t seq, const std::uint32_t* ids, std::size_t n);
  const std::vector<float>& step(const std::uint32_t* ids);

  // Generation with nothing but tokens leaving the device. prefill_sample fills the cache with
  // `ids` and samples token number `draw` (the sampler's index) from the last logits;
  // step_sample then feeds the last sampled token and samples the next, `count` times back to
  // back (no wait between tokens), and returns the `count` new tokens.
  // Batches: prefill_sample(seq, ...) prefills and samples sequence `seq` (the sampling config is
  // the decoder's: the last one given serves every sequence); step_sample steps all sequences
  // `count` times and returns batch × count tokens, sequence by sequence (sequence s's at
  // [s·count, (s + 1)·count)).
  std::uint32_t prefill_sample(const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                               std::uint64_t draw);
  std::uint32_t prefill_sample(std::size_t seq, const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                               std::uint64_t draw);
  std::vector<std::uint32_t> step_sample(std::size_t count);

  // Steps replay a captured CUDA graph (the default) or launch their kernels one by one.
  void use_graphs(bool on);

  // Where a step's time goes: `count` sampling steps, each phase of the step kernel timed by the
  // device's clock where it starts, the sampler's kernels by events; per phase or kernel,
  // microseconds and calls per token and the weight bytes it read.
  struct KernelTime {
    std::string name;
    double us;
    std::size_t calls, bytes;
  };
  std::vector<KernelTime> profile(std::size_t count);

  std::size_t batch() const;           // sequences
  std::size_t length() const;          // positions in sequence 0's cache
  std::size_t length(std::size_t seq) const;
  std::size_t kv_cache_bytes() const;  // the preallocated caches, all sequences' (a ring's for local and sinks)
  std::size_t step_weight_bytes() const;  // weight bytes one step reads: the decode's memory floor
  std::string weight_format() const;   // "bf16", "fp32", "q8_0", "q4_0" or "q4_mix"
  const ModelConfig& config() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when this build has CUDA and a device is visible.
bool cuda_decode_available();
// Sequences one decoder holds at most: the decode kernel's limit (cuda::kMaxDecodeBatch, checked
// equal where both are seen), stated here too because builds without CUDA check batches as well.
inline constexpr std::size_t kMaxDecodeSequences = 16;
// Checks a decode batch: 1..kMaxDecodeSequences, else an error naming it (`what`: where it came from).
void check_decode_batch(std::size_t batch, const std::string& what);
// Device-to-device copy bandwidth in bytes/s (read + write of 1 GiB, 20 times): the measured
// ceiling that a decode step's weight bytes are set against.
double cuda_copy_bandwidth();

}  // namespace minitx
