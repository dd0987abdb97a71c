// Host-side plumbing of the CUDA backend: error checks, device buffers, the per-object device
// context (stream, cuBLAS handle and its math mode), and the device copy of the MLP with its
// forward, tangent and reverse passes (cuBLAS GEMMs + the kernels of kernels.cuh).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels.cuh"
#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::internal::cuda {

// Throw scoresde::Error naming the call site and CUDA's message.
void CheckCuda(cudaError_t status, const char* where);
void CheckCublas(cublasStatus_t status, const char* where);
// After kernel launches: the launch error, if any.
inline void CheckLaunch(const char* where) { CheckCuda(cudaGetLastError(), where); }

// Throws Error("…: no CUDA device …") unless device `device` can be used.
void RequireDevice(int device, const char* where);

// Device memory of T, grown on demand (contents are not preserved by Resize).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t count) { Resize(count); }
  ~DeviceBuffer() { Free(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Free();
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }

  // Makes room for count elements (reallocates only when growing).
  void Resize(int64_t count) {
    if (count <= size_) return;
    Free();
    void* p = nullptr;
    CheckCuda(cudaMalloc(&p, static_cast<size_t>(count) * sizeof(T)), "cudaMalloc");
    data_ = static_cast<T*>(p);
    size_ = count;
  }
  void Zero(cudaStream_t stream) {
    if (size_ > 0) {
      CheckCuda(cudaMemsetAsync(data_, 0, static_cast<size_t>(size_) * sizeof(T), stream),
                "cudaMemsetAsync");
    }
  }
  void Upload(const T* host, int64_t count, cudaStream_t stream) {
    Resize(count);
    CheckCuda(cudaMemcpyAsync(data_, host, static_cast<size_t>(count) * sizeof(T),
                              cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync(host to device)");
  }
  // Synchronous copy of the first count elements to host.
  void Download(T* host, int64_t count, cudaStream_t stream) const {
    CheckCuda(cudaMemcpyAsync(host, data_, static_cast<size_t>(count) * sizeof(T),
                              cudaMemcpyDeviceToHost, stream),
              "cudaMemcpyAsync(device to host)");
    CheckCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  void Free() {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// Page-locked host memory (for asynchronous copies).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (data_ != nullptr) cudaFreeHost(data_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void Resize(int64_t count) {
    if (count <= size_) return;
    if (data_ != nullptr) cudaFreeHost(data_);
    void* p = nullptr;
    CheckCuda(cudaMallocHost(&p, static_cast<size_t>(count) * sizeof(T)), "cudaMallocHost");
    data_ = static_cast<T*>(p);
    size_ = count;
  }
  T* data() { return data_; }
  int64_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// A stream and a cuBLAS handle bound to it, on one device, with the requested math mode. The
// cuBLAS workspace is set explicitly so that GEMMs can be captured into CUDA graphs.
class DeviceContext {
 public:
  explicit DeviceContext(const CudaOptions& options);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  const CudaOptions& options() const { return options_; }
  // Makes this context's device current for the calling thread.
  void Activate() const;
  void Synchronize() const;

 private:
  CudaOptions options_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* blas_workspace_ = nullptr;
};

// Rounds up to a multiple of 4 (16-byte columns for float4 access).
inline int RoundUp4(int n) { return (n + 3) / 4 * 4; }

// The device copy of an MLP (layout in kernels.cuh): layer l is S_l, (in_pad_l × out_l)
// column-major, in_pad_l = RoundUp4(in_l + 1), all layers in one contiguous "store" so that the
// optimizer runs over one array.
class DeviceNetwork {
 public:
  struct Layer {
    int in = 0, out = 0, in_pad = 0;
    int64_t store_offset = 0;     // S_l in the store
    int64_t weight = 0, bias = 0; // offsets in the canonical (MlpNetwork) vector
  };

  // Activations of n columns. a[0] is ld_input() × n with rows d..d+E−1 the embedding, row d+E
  // ones; a[l ≥ 1], z, g_a, g_z are ld_hidden() × n with row H of a[l] ones; output d × n.
  // Tangent buffers have zeros in the ones rows. Inference workspaces keep one hidden buffer.
  struct Workspace {
    int cols = 0;
    bool tangent = false;
    bool inference = false;
    std::vector<DeviceBuffer<float>> a, z, a_dot, z_dot;
    DeviceBuffer<float> output, output_dot, g_a, g_a_dot, g_z, g_z_dot;
  };

  explicit DeviceNetwork(const MlpConfig& config);

  const MlpConfig& config() const { return config_; }
  const std::vector<Layer>& layers() const { return layers_; }
  int64_t store_size() const { return store_size_; }
  int64_t num_parameters() const { return num_parameters_; }
  int ld_input() const { return layers_.front().in_pad; }
  int ld_hidden() const { return RoundUp4(config_.width + 1); }

  // Canonical vector (MlpNetwork layout) ↔ store layout, on the host.
  std::vector<float> ToStore(const float* canonical) const;
  void FromStore(const float* store, float* canonical) const;

  // Allocates (and initializes the constant rows of) a workspace for n columns.
  void Prepare(int n, bool tangent, bool inference, Workspace* ws, cudaStream_t stream) const;

  // F = network(a[0]) into ws->output; keeps a[l] and z[l] (training workspaces).
  void Forward(const DeviceContext& ctx, const float* store, Workspace* ws) const;
  // Ḟ into ws->output_dot from ws->a_dot[0] (after Forward).
  void Tangent(const DeviceContext& ctx, const float* store, Workspace* ws) const;
  // grad_store = ∂/∂θ Σ_j g_jᵀ F_j (overwritten, store layout); g is d × n (ld d).
  void Backward(const DeviceContext& ctx, const float* store, const float* g, Workspace* ws,
                float* grad_store) const;
  // grad_store = ∂/∂θ Σ_j [g_jᵀ F_j + ġ_jᵀ Ḟ_j] (after Forward and Tangent).
  void BackwardWithTangent(const DeviceContext& ctx, const float* store, const float* g,
                           const float* g_dot, Workspace* ws, float* grad_store) const;
  // Forward of an inference workspace (two hidden buffers, nothing kept).
  void Infer(const DeviceContext& ctx, const float* store, Workspace* ws) const;

 private:
  void Gemm(const DeviceContext& ctx, cublasOperation_t op_a, cublasOperation_t op_b, int m,
            int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c,
            int ldc) const;

  MlpConfig config_;
  std::vector<Layer> layers_;
  int64_t store_size_ = 0;
  int64_t num_parameters_ = 0;
};

// The SDE and model parameters of kernels.cuh for a scalar-affine SDE and an MLP config.
SdeParams MakeSdeParams(const ScalarAffineSde& sde);
ModelParams MakeModelParams(const MlpConfig& config);

}  // namespace scoresde::internal::cuda
