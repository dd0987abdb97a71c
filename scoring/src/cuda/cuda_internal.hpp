// Host-side plumbing of the CUDA backend: error checks, device buffers, the per-object device
// context (stream, cuBLAS handle and its math mode), the network workspace, and CudaOps, the
// device implementation of the operations that network_passes.hpp, train_step.hpp and
// sampler_plan.hpp are written over.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels.cuh"
#include "network_passes.hpp"
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

// Device buffers for PassBuffers (network_passes.hpp): a training workspace keeps every layer's
// activations (and tangents for the sliced losses), an inference workspace one hidden buffer. The
// constant rows (ones for the bias, zeros for the padding and for tangents) are set at allocation.
struct DeviceWorkspace {
  int cols = 0;
  bool tangent = false;
  bool inference = false;
  std::vector<DeviceBuffer<float>> a, z, a_dot, z_dot;
  DeviceBuffer<float> output, output_dot, g_a, g_a_dot, g_z, g_z_dot;

  // (Re)allocates for n columns unless the current allocation already fits.
  void Prepare(const NetworkLayout& net, int n, bool with_tangent, bool for_inference,
               cudaStream_t stream);
  PassBuffers<float> View();
};

// The operations of network_passes.hpp, train_step.hpp and sampler_plan.hpp on the device:
// cuBLAS SGEMM and the kernels of kernels.cu, all on the context's stream.
class CudaOps {
 public:
  explicit CudaOps(const DeviceContext& ctx) : ctx_(ctx) {}

  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) const;
  void SiluForward(int rows, int n, int ld, const float* z, const float* a_in,
                   float* a_out) const {
    LaunchSiluForward(rows, n, ld, z, a_in, a_out, s());
  }
  void SiluTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                   const float* a_dot_in, float* a_dot_out) const {
    LaunchSiluTangent(rows, n, ld, z, z_dot, a_dot_in, a_dot_out, s());
  }
  void SiluBackward(int rows, int n, int ld, const float* z, const float* g_a, float* g_z) const {
    LaunchSiluBackward(rows, n, ld, z, g_a, g_z, s());
  }
  void SiluBackwardTangent(int rows, int n, int ld, const float* z, const float* z_dot,
                           const float* g_a, const float* g_a_dot, float* g_z,
                           float* g_z_dot) const {
    LaunchSiluBackwardTangent(rows, n, ld, z, z_dot, g_a, g_a_dot, g_z, g_z_dot, s());
  }
  // Training.
  void DrawSamples(const SdeParams& sde, const ModelParams& model, const LossParams& loss,
                   NoiseKey key, const TrainCounters* counters, int n, PerSample* draws) const {
    LaunchDrawSamples(sde, model, loss, key, counters, n, draws, s());
  }
  void PrepareTraining(NoiseKey key, const TrainCounters* counters, int d, int half, int n,
                       const PerSample* draws, const float* fourier, const double* x0, double* x,
                       double* z, float* a0, int ld0, int sliced, int rademacher, double* v,
                       float* a0_dot) const {
    LaunchPrepareTraining(key, counters, d, half, n, draws, fourier, x0, x, z, a0, ld0, sliced,
                          rademacher, v, a0_dot, s());
  }
  void DenoisingLoss(int d, int n, double inv_batch, const PerSample* draws, const double* x,
                     const double* z, const float* output, double* loss, float* g) const {
    LaunchDenoisingLoss(d, n, inv_batch, draws, x, z, output, loss, g, s());
  }
  void SlicedLoss(int d, int n, int variance_reduced, double inv_batch, const PerSample* draws,
                  const double* x, const double* v, const float* output, const float* output_dot,
                  double* loss, float* g, float* g_dot) const {
    LaunchSlicedLoss(d, n, variance_reduced, inv_batch, draws, x, v, output, output_dot, loss, g,
                     g_dot, s());
  }
  void Sum(const double* values, int64_t n, double scale, double* partial, double* out,
           const TrainCounters* counters, int capacity) const {
    LaunchSum(values, n, scale, partial, out, counters, capacity, s());
  }
  void Norm(const float* values, int64_t n, double* partial, double* out,
            const TrainCounters* counters, int capacity) const {
    LaunchNorm(values, n, partial, out, counters, capacity, s());
  }
  void PrepareUpdate(const AdamParams& adam, const double* norms, int capacity,
                     TrainCounters* counters, UpdateScalars<float>* scalars) const {
    LaunchPrepareUpdate(adam, norms, capacity, counters, scalars, s());
  }
  void AdamEma(const AdamParams& adam, const UpdateScalars<float>* scalars, int64_t count,
               float* params, float* grad, float* m, float* v, float* ema) const {
    LaunchAdamEma(adam, scalars, count, params, grad, m, v, ema, s());
  }
  // Sampling.
  void ResetFailures(int n, FailureSink sink) const { LaunchResetFailures(n, sink, s()); }
  void Prior(NoiseKey key, int d, int n, const int64_t* first_sample, double prior_std,
             double* x) const {
    LaunchPrior(key, d, n, first_sample, prior_std, x, s());
  }
  void AffineTransform(int d, int n, const double* m, const double* factor, const double* z,
                       double* x) const {
    LaunchAffineTransform(d, n, m, factor, z, x, s());
  }
  void InferenceInput(int d, int embed, int n, double c_in, const double* x,
                      const float* embedding, float* a0, int ld0) const {
    LaunchInferenceInput(d, embed, n, c_in, x, embedding, a0, ld0, s());
  }
  void ScoreFromOutput(int d, int n, double a, double b, const double* x, const float* output,
                       double* out) const {
    LaunchScoreFromOutput(d, n, a, b, x, output, out, s());
  }
  void GaussianScore(int d, int n, double alpha, double sigma2, const double* q,
                     const double* lambda, const double* mean, const double* x, double* w,
                     double* out) const {
    LaunchGaussianScore(d, n, alpha, sigma2, q, lambda, mean, x, w, out, s());
  }
  void Update(const UpdateArgs& args, int d, int n, const int64_t* first_sample,
              const double* score, double* x, FailureSink sink) const {
    LaunchUpdate(args, d, n, first_sample, score, x, sink, s());
  }
  void Axpby(int d, int n, double p, const double* x, double q, const double* score,
             double* out) const {
    LaunchAxpby(d, n, p, x, q, score, out, s());
  }
  void StageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                const double* k2, double c3, const double* k3, double c4, const double* k4,
                double* out, int64_t step, FailureSink sink) const {
    LaunchStageSum(d, n, x, c1, k1, c2, k2, c3, k3, c4, k4, out, step, sink, s());
  }
  void MeanSquaredNorm(int d, int n, const double* score, double* partial, double* out) const {
    LaunchMeanSquaredNorm(d, n, score, partial, out, s());
  }
  void Denoise(int d, int n, double sigma2, double alpha, const double* score, double* x,
               int64_t step, FailureSink sink) const {
    LaunchDenoise(d, n, sigma2, alpha, score, x, step, sink, s());
  }

 private:
  cudaStream_t s() const { return ctx_.stream(); }
  const DeviceContext& ctx_;
};

}  // namespace scoresde::internal::cuda
