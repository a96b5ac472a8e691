// Matrix products through cuBLASLt, and the deterministic bias gradient.
// N = rows, C = input channels, OC = output channels; tensors are row-major, so each product is
// written for cuBLAS's column-major view of the same memory (a row-major (R, K) matrix is a
// column-major (K, R) one).
#include <algorithm>
#include <sstream>
#include <utility>
#include <type_traits>

#include "common.cuh"
#include "minitx/backend/cuda/ops.h"

namespace minitx::cuda {

struct LtMatmul::Chosen {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_bias = false;
  std::string record;
  ~Chosen() {
    // Destructors must not throw; a failure to free a descriptor leaks a few bytes at worst.
    if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

namespace {

// The largest power of two (≤ 256, cuBLASLt's default requirement) dividing the address: the
// heuristic may only pick kernels that work at this alignment, and it is part of the cache key.
std::uint32_t alignment(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t a = 256;
  while (a > 1 && addr % a != 0) a /= 2;
  return a;
}

template <class V>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const V& value) {
  MINITX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}
template <class V>
void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const V& value) {
  MINITX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
}
template <class V>
V algo_config(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  V value{};
  std::size_t written = 0;
  MINITX_CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &value, sizeof(value), &written));
  return value;
}

const char* reduction_name(std::uint32_t scheme) {
  switch (scheme) {
    case CUBLASLT_REDUCTION_SCHEME_NONE: return "none";
    case CUBLASLT_REDUCTION_SCHEME_INPLACE: return "inplace";
    case CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE: return "compute-type";
    case CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE: return "output-type";
    default: return "unknown";
  }
}

template <class T>
constexpr cudaDataType_t data_type() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

template <class T>
struct DoutAt {
  const T* dout;
  std::size_t OC;
  __device__ float operator()(std::size_t n, std::size_t o) const { return detail::to_float(dout[n * OC + o]); }
};

}  // namespace

LtMatmul::LtMatmul() {
  cublasLtHandle_t handle = nullptr;
  MINITX_CUBLAS_CHECK(cublasLtCreate(&handle));
  handle_ = handle;
  const cudaError_t err = cudaMalloc(&workspace_, kLtWorkspaceBytes);
  if (err != cudaSuccess) {
    cublasLtDestroy(handle);
    fail_cuda(err, "cudaMalloc(&workspace_, kLtWorkspaceBytes)", __FILE__, __LINE__);
  }
}

LtMatmul::~LtMatmul() {
  cache_.clear();
  cudaFree(workspace_);
  cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

std::vector<std::string> LtMatmul::algorithms() const {
  std::vector<std::string> lines;
  for (const auto& [key, chosen] : cache_) lines.push_back(key + " " + chosen->record);
  return lines;
}

void LtMatmul::gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const void* A,
                    std::size_t lda, const void* B, std::size_t ldb, void* D, std::size_t ldd, float beta,
                    const void* bias, int a_type_int, int d_type_int, cudaStream_t stream, const GemmBatch& batch) {
  if (m == 0 || n == 0) return;
  if (k == 0) fail_op("matmul: the inner dimension is 0");
  const auto a_type = static_cast<cudaDataType_t>(a_type_int), d_type = static_cast<cudaDataType_t>(d_type_int);
  const auto handle = static_cast<cublasLtHandle_t>(handle_);
  std::ostringstream key_stream;
  key_stream << (trans_a ? 'T' : 'N') << (trans_b ? 'T' : 'N') << " m=" << m << " n=" << n << " k=" << k
             << " ld=" << lda << ',' << ldb << ',' << ldd << " types=" << a_type_int << ',' << d_type_int
             << " bias=" << (bias != nullptr) << " align=" << alignment(A) << ',' << alignment(B) << ','
             << alignment(D) << ',' << (bias != nullptr ? alignment(bias) : 0);
  if (batch.count > 1)
    key_stream << " batch=" << batch.count << '/' << batch.stride_a << ',' << batch.stride_b << ',' << batch.stride_d;
  const std::string key = key_stream.str();

  auto found = cache_.find(key);
  if (found == cache_.end()) {
    auto c = std::make_unique<Chosen>();
    // CUBLAS_COMPUTE_32F: true fp32 for float (never TF32) and fp32 accumulation for bf16.
    MINITX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&c->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_desc(c->op, CUBLASLT_MATMUL_DESC_TRANSA, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_desc(c->op, CUBLASLT_MATMUL_DESC_TRANSB, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
    c->has_bias = bias != nullptr;
    // No GELU epilogue: cuBLASLt does not document its GELU formula, and ours must match the CPU's.
    set_desc(c->op, CUBLASLT_MATMUL_DESC_EPILOGUE, c->has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    if (c->has_bias) set_desc(c->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<std::int32_t>(d_type));
    MINITX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c->a, a_type, trans_a ? k : m, trans_a ? m : k,
                                                   static_cast<std::int64_t>(lda)));
    MINITX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c->b, a_type, trans_b ? n : k, trans_b ? k : n,
                                                   static_cast<std::int64_t>(ldb)));
    MINITX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c->d, d_type, m, n, static_cast<std::int64_t>(ldd)));
    if (batch.count > 1) {
      const std::pair<cublasLtMatrixLayout_t, std::int64_t> layouts[] = {
          {c->a, batch.stride_a}, {c->b, batch.stride_b}, {c->d, batch.stride_d}};
      for (const auto& [layout, stride] : layouts) {
        const std::int32_t count = batch.count;
        MINITX_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                             sizeof(count)));
        MINITX_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                             &stride, sizeof(stride)));
      }
    }

    cublasLtMatmulPreference_t pref = nullptr;
    MINITX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    try {
      set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<std::uint64_t>(kLtWorkspaceBytes));
      // No split-K: on the H200 a bf16 product at K = 77 split 16 ways (partials reduced in fp32 in
      // the workspace, bias in the epilogue) came out up to 14 ulp off, and an in-place reduction
      // would make the bits depend on timing. Our shapes fill the chip without splitting K.
      set_pref(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
               static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE));
      set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(A));
      set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(B));
      set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(D));
      set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(D));
      MINITX_CUBLAS_CHECK(
          cublasLtMatmulAlgoGetHeuristic(handle, c->op, c->a, c->b, c->d, c->d, pref, 1, &result, &returned));
    } catch (...) {
      cublasLtMatmulPreferenceDestroy(pref);
      throw;
    }
    MINITX_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    if (returned == 0 || result.state != CUBLAS_STATUS_SUCCESS)
      fail_op("matmul: cuBLASLt has no algorithm for ", key);
    if (result.workspaceSize > kLtWorkspaceBytes)
      fail_op("matmul: cuBLASLt chose an algorithm needing ", result.workspaceSize, " bytes of workspace for ", key);
    c->algo = result.algo;
    const auto scheme = algo_config<std::uint32_t>(c->algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME);
    const auto splitk = algo_config<std::int32_t>(c->algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM);
    if (splitk > 1 || scheme != CUBLASLT_REDUCTION_SCHEME_NONE)
      fail_op("matmul: cuBLASLt chose a split-K algorithm despite the preference, for ", key);
    std::ostringstream record;
    record << "algo=" << algo_config<std::int32_t>(c->algo, CUBLASLT_ALGO_CONFIG_ID)
           << " tile=" << algo_config<std::uint32_t>(c->algo, CUBLASLT_ALGO_CONFIG_TILE_ID) << " splitk=" << splitk
           << " reduction=" << reduction_name(scheme) << " workspace=" << result.workspaceSize;
    c->record = record.str();
    found = cache_.emplace(key, std::move(c)).first;
  }

  Chosen& c = *found->second;
  if (c.has_bias) set_desc(c.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  const float alpha = 1.0f;
  MINITX_CUBLAS_CHECK(cublasLtMatmul(handle, c.op, &alpha, A, c.a, B, c.b, &beta, D, c.d, D, c.d, &c.algo, workspace_,
                                     kLtWorkspaceBytes, stream));
}

template <class T>
void matmul_forward(LtMatmul& lt, T* out, const T* inp, const T* weight, const T* bias, std::size_t N, std::size_t C,
                    std::size_t OC, cudaStream_t stream) {
  // outᵀ (OC, N) = W (OC, C) · inpᵀ (C, N): W is column-major (C, OC), so op(A) = Aᵀ.
  lt.gemm(true, false, OC, N, C, weight, C, inp, C, out, OC, 0.0f, bias, data_type<T>(), data_type<T>(), stream);
}

// Tiles of 128 × 128 outputs that two waves of the H200's 132 SMs want; a constant, so the
// split depends on the shapes alone. Chunks stay ≥ 512 rows and divide N.
constexpr std::size_t kTargetTiles = 264, kMinChunkRows = 512;

std::size_t weight_grad_splits(std::size_t N, std::size_t C, std::size_t OC) {
  const std::size_t tiles = ((C + 127) / 128) * ((OC + 127) / 128);
  std::size_t splits = 1;
  while (tiles * splits < kTargetTiles && N % (2 * splits) == 0 && N / (2 * splits) >= kMinChunkRows) splits *= 2;
  return splits;
}

std::size_t matmul_backward_scratch_floats(std::size_t N, std::size_t C, std::size_t OC) {
  const std::size_t splits = weight_grad_splits(N, C, OC);
  return std::max(detail::column_slabs(N) * OC, splits > 1 ? splits * C * OC : 0);
}

template <class T>
void matmul_backward(LtMatmul& lt, T* dinp, float* dweight, float* dbias, float* scratch, const T* dout, const T* inp,
                     const T* weight, std::size_t N, std::size_t C, std::size_t OC, bool accumulate_dweight,
                     cudaStream_t stream) {
  if (N == 0) return;
  // dinpᵀ (C, N) = Wᵀ (C, OC) · doutᵀ (OC, N): W column-major is (C, OC) already.
  if (dinp != nullptr)
    lt.gemm(false, false, C, N, OC, weight, C, dout, OC, dinp, C, 0.0f, nullptr,
            data_type<T>(), data_type<T>(), stream);
  // dWᵀ (C, OC) = inpᵀ (C, N) · dout (N, OC): dout column-major is (OC, N), so op(B) = Bᵀ. fp32 output.
  const std::size_t splits = weight_grad_splits(N, C, OC);
  if (splits == 1) {
    lt.gemm(false, true, C, OC, N, inp, C, dout, OC, dweight, C, accumulate_dweight ? 1.0f : 0.0f, nullptr,
            data_type<T>(), CUDA_R_32F, stream);
  } else {
    // Chunk i of N / splits rows into scratch[i], then dweight (+)= Σ_i scratch[i] in order of i.
    const std::size_t rows = N / splits;
    const GemmBatch batch{static_cast<int>(splits), static_cast<std::int64_t>(rows * C),
                                static_cast<std::int64_t>(rows * OC), static_cast<std::int64_t>(C * OC)};
    lt.gemm(false, true, C, OC, rows, inp, C, dout, OC, scratch, C, 0.0f, nullptr, data_type<T>(), CUDA_R_32F, stream,
            batch);
    detail::column_finish<<<detail::grid_for(C * OC, detail::kColThreads), detail::kColThreads, 0, stream>>>(
        dweight, scratch, splits, C * OC, accumulate_dweight);
    MINITX_CUDA_LAUNCHED();
  }
  if (dbias != nullptr) detail::column_sums(dbias, scratch, N, OC, accumulate_dweight, DoutAt<T>{dout, OC}, stream);
}

#define MINITX_INSTANTIATE(T)                                                                                    \
  template void matmul_forward<T>(LtMatmul&, T*, const T*, const T*, const T*, std::size_t, std::size_t,         \
                                  std::size_t, cudaStream_t);                                                    \
  template void matmul_backward<T>(LtMatmul&, T*, float*, float*, float*, const T*, const T*, const T*,          \
                                   std::size_t, std::size_t, std::size_t, bool, cudaStream_t);
MINITX_INSTANTIATE(float)
MINITX_INSTANTIATE(bf16)
#undef MINITX_INSTANTIATE

}  // namespace minitx::cuda
