// The layers of a transformer on the GPU, as free functions on raw device pointers (llm.c style):
// outputs first, gradients named with a leading d, shapes as arguments, the stream last. Each op
// exists for activations stored as T = float (the fp32 checking mode) or T = __nv_bfloat16 (mixed
// precision); the arithmetic inside is fp32 either way. Parameters' gradients, the AdamW state and
// the master weights are fp32 whatever T is.
//
// Conventions, as in minitx/backend/cpu/ops.h: backward passes *accumulate* (+=) into the
// gradients they write, unless a flag says otherwise; callers zero gradients once per step.
// Shape letters: N = rows (B·T), B = batch, T_ = time (T itself is the storage type),
// C = channels, NH = heads, V = vocab (Vp its padded row length), OC = output channels.
//
// Determinism: no op uses atomics; every reduction has an order fixed by the shapes alone (grids
// are sized from the shapes, never from the device), so two runs give the same bits. Scratch
// buffers that a reduction needs are the caller's, sized by the *_scratch_floats helpers.
//
// The bf16 type is CUDA's own __nv_bfloat16: its header is plain C++ (g++ compiles it with our
// warnings clean), so host code and kernels share one type with no casts at every call, and a
// wrong storage type is a compile error rather than a silent reinterpretation. This header is only
// meant for builds with MINITX_CUDA, where the toolkit's include directory is on the path.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace minitx::cuda {

using bf16 = __nv_bfloat16;

// ---- embedding (encoder.cu) -------------------------------------------------------------------
// out[b,t] = wte[ids[b,t]] + wpe[t + pos_offset]; wpe == nullptr for rotary models (no learned
// positions). ids: (B·T), wte: (V, C), wpe: (≥ T + pos_offset, C), out: (B·T, C).
template <class T>
void encoder_forward(T* out, const std::uint32_t* ids, const T* wte, const T* wpe, std::size_t B, std::size_t T_,
                     std::size_t C, std::size_t pos_offset, cudaStream_t stream);

// The rows of dout grouped by token id, built on the host (which has the ids) with a counting
// sort: token rows[u] owns positions[offsets[u] .. offsets[u+1]) in increasing order. Uploaded by
// the caller; the backward then gives each used vocabulary row to one block, so no two blocks
// write the same row and each row sums its positions in a fixed order.
struct TokenRows {
  std::vector<std::int32_t> rows;       // used token ids, increasing
  std::vector<std::int32_t> offsets;    // rows.size() + 1
  std::vector<std::int32_t> positions;  // N row indices
};
TokenRows token_rows(const std::uint32_t* ids_host, std::size_t N, std::size_t V);

// dwte[rows[u]] += Σ dout[positions of u] (in increasing order); dwpe[t + pos_offset] += Σ_b dout[b,t]
// (b increasing) unless dwpe == nullptr. rows, offsets, positions: device copies of a TokenRows.
template <class T>
void encoder_backward(float* dwte, float* dwpe, const T* dout, const std::int32_t* rows, const std::int32_t* offsets,
                      const std::int32_t* positions, std::size_t num_rows, std::size_t B, std::size_t T_, std::size_t C,
                      std::size_t pos_offset, cudaStream_t stream);

// ---- LayerNorm (layernorm.cu) -----------------------------------------------------------------
// out = (inp - mean)·rstd·weight + bias per row of C; mean, rstd: (N), saved for the backward
// (either may be null). weight, bias: (C) in T, the forward copy of the parameters.
template <class T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, std::size_t N,
                       std::size_t C, float eps, cudaStream_t stream);
// dinp += ..., dweight += Σ_n dout·xhat, dbias += Σ_n dout. scratch: layernorm_backward_scratch_floats.
template <class T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, float* scratch, const T* dout, const T* inp,
                        const T* weight, const float* mean, const float* rstd, std::size_t N, std::size_t C,
                        cudaStream_t stream);
std::size_t layernorm_backward_scratch_floats(std::size_t N, std::size_t C);

// ---- activations and residual (activation.cu) -------------------------------------------------
enum class Activation {
  gelu_tanh,  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — GPT-2, the CPU's gelu
  gelu_erf,   // 0.5·x·(1 + erf(x/√2)) — GPT-NeoX/Pythia
  relu,       // max(x, 0) — OPT
};
template <class T>
void activation_forward(T* out, const T* inp, std::size_t n, Activation act, cudaStream_t stream);
// dinp += act'(inp)·dout, or dinp = act'(inp)·dout when not accumulating (no read of dinp).
template <class T>
void activation_backward(T* dinp, const T* inp, const T* dout, std::size_t n, Activation act, cudaStream_t stream,
                         bool accumulate = true);

// out = a + b; out may alias a or b.
template <class T>
void residual_forward(T* out, const T* a, const T* b, std::size_t n, cudaStream_t stream);
// da += dout, db += dout.
template <class T>
void residual_backward(T* da, T* db, const T* dout, std::size_t n, cudaStream_t stream);

// out = inp rounded to T (round to nearest even for bf16): the forward copy of fp32 parameters.
template <class T>
void convert_from_fp32(T* out, const float* inp, std::size_t n, cudaStream_t stream);

// ---- rotary position embedding (rotary.cu) ----------------------------------------------------
// GPT-NeoX rotate-half on q and k of a (B, T, 3C) qkv buffer: in each head (D = C/NH dims), the
// first rotary_dim dims (even, ≤ D) hold pairs (i, i + rotary_dim/2) rotated by the angle
// (t + pos_offset)·base^(-2i/rotary_dim); the other dims of q and k, and all of v, are copied.
// out may equal inp (in place). Angles are computed in double, then rounded once to fp32
// cos/sin, so large positions lose nothing to an fp32 product.
template <class T>
void rotary_forward(T* out, const T* inp, std::size_t B, std::size_t T_, std::size_t C, std::size_t NH,
                    std::size_t rotary_dim, float base, std::size_t pos_offset, cudaStream_t stream);
// The transposed rotation: dinp = Rᵀ·dout on q and k, dout copied elsewhere. Overwrites dinp
// (it is the gradient of a pure rotation, usually applied in place on the dqkv buffer).
template <class T>
void rotary_backward(T* dinp, const T* dout, std::size_t B, std::size_t T_, std::size_t C, std::size_t NH,
                     std::size_t rotary_dim, float base, std::size_t pos_offset, cudaStream_t stream);

// ---- softmax cross-entropy (crossentropy.cu) --------------------------------------------------
// logits: (N, Vp) rows of which the first V columns are the vocabulary (V ≤ Vp; the padding is
// ignored). losses[n] = logsumexp(logits[n][:V]) - logits[n][targets[n]]; targets[n] < V.
// If dlogits is not null it is *overwritten* with (softmax - onehot)·scale on [0, V) and 0 on the
// padding [V, Vp); dlogits may equal logits (one read and one write of the row).
template <class T>
void crossentropy_forward_backward(float* losses, T* dlogits, const T* logits, const std::uint32_t* targets,
                                   std::size_t N, std::size_t V, std::size_t Vp, float scale, cudaStream_t stream);

// ---- optimizer and gradient norm (adamw.cu) ---------------------------------------------------
struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;  // weight_decay = 0 for a tensor that is not decayed
  std::uint64_t t;                            // 1-based step, for the bias correction
};
// The CPU's adamw_update (same operations, same order, no FMA contraction, correctly rounded
// division and sqrt) on fp32 params, grads, m, v of n elements; the fp32 results are bit-identical
// to the CPU's. params_bf16, if not null, receives the updated params rounded to bf16.
void adamw_update(float* params, bf16* params_bf16, const float* grads, float* m, float* v, std::size_t n,
                  const AdamWStep& step, cudaStream_t stream);

// sums[c] = Σ x² (in double) over chunk c of 4096 elements (the last may be shorter), in an order
// fixed within the chunk; grad_norm_chunk_count(n) chunks. The squared norm is their sum in chunk
// order (the caller's, on the host): for a shard starting on a chunk boundary the sums are the
// whole vector's, so any split into shards gives the same norm.
void grad_norm_chunks(double* sums, const float* x, std::size_t n, cudaStream_t stream);
std::size_t grad_norm_chunk_count(std::size_t n);
// a += b elementwise (one correctly rounded fp32 add each): the gradient tree's node.
void add_in_place(float* a, const float* b, std::size_t n, cudaStream_t stream);
// x *= factor: clipping, with the factor the host derives from the norm as the CPU trainer does.
void scale_in_place(float* x, std::size_t n, float factor, cudaStream_t stream);

// ---- matrix products through cuBLASLt (matmul.cu) ---------------------------------------------
// One cuBLASLt handle, a fixed 32 MiB workspace, and per shape one algorithm picked by the
// heuristic the first time and reused, so every later call of that shape runs the same kernel
// (same bits). Only reduction schemes that do not accumulate into the output buffer are allowed
// (NONE, COMPUTE_TYPE, OUTPUT_TYPE: split-K partials go to the workspace and are added in a
// separate, ordered pass). fp32 uses CUBLAS_COMPUTE_32F (no TF32); bf16 has bf16 operands with
// fp32 accumulation. cuBLAS promises the same bits run to run on one GPU model and toolkit; the
// workspace is this object's, so use one LtMatmul per stream if there are ever several.
// `count` products at once, operand i at base + i·stride (elements).
struct GemmBatch {
  int count = 1;
  std::int64_t stride_a = 0, stride_b = 0, stride_d = 0;
};

class LtMatmul {
 public:
  LtMatmul();
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // D (m×n, column-major, ldd = m) = alpha·op(A)·op(B) + beta·D (+ bias over m). Types: a_type for
  // A and B, d_type for D, bias of d_type. Exposed for the ops below; callers use those.
  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const void* A, std::size_t lda,
            const void* B, std::size_t ldb, void* D, std::size_t ldd, float beta, const void* bias, int a_type,
            int d_type, cudaStream_t stream, const GemmBatch& batch = GemmBatch{});

  // What was chosen, for provenance: one line per shape, "<shape key> algo=<id> tile=<id>
  // splitk=<n> reduction=<scheme>".
  std::vector<std::string> algorithms() const;

  struct Chosen;  // the cached algorithm of one shape (defined in matmul.cu)

 private:
  void* handle_ = nullptr;     // cublasLtHandle_t
  void* workspace_ = nullptr;  // kLtWorkspaceBytes of device memory
  std::map<std::string, std::unique_ptr<Chosen>> cache_;
};
inline constexpr std::size_t kLtWorkspaceBytes = std::size_t{32} << 20;

// out (N, OC) = inp (N, C) · weightᵀ (OC, C) + bias (OC, may be null).
template <class T>
void matmul_forward(LtMatmul& lt, T* out, const T* inp, const T* weight, const T* bias, std::size_t N, std::size_t C,
                    std::size_t OC, cudaStream_t stream);
// dinp (N, C) = dout · weight (overwritten: cuBLASLt accumulating into a bf16 output was seen
// to lose far more than a rounding on the H200, for N = 4096, C = 72, OC = 40); dweight (OC, C) = (+=, if accumulate_dweight)
// doutᵀ · inp in fp32; dbias (OC, may be null) likewise with the column sums of dout, computed by
// a kernel in a fixed order (scratch: matmul_backward_scratch_floats). dinp may be null.
// When OC × C is too small a product to fill the GPU (a sum over many rows into few tiles),
// dweight is split over the rows: weight_grad_splits(N, C, OC) products over consecutive row
// chunks into the scratch, added in chunk order by one kernel — still one fixed order of sums,
// chosen from the shapes alone.
template <class T>
void matmul_backward(LtMatmul& lt, T* dinp, float* dweight, float* dbias, float* scratch, const T* dout, const T* inp,
                     const T* weight, std::size_t N, std::size_t C, std::size_t OC, bool accumulate_dweight,
                     cudaStream_t stream);
std::size_t matmul_backward_scratch_floats(std::size_t N, std::size_t C, std::size_t OC);
std::size_t weight_grad_splits(std::size_t N, std::size_t C, std::size_t OC);

}  // namespace minitx::cuda
