// Error checks, the device context, the network workspace and the device operations
// (cuda_internal.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "cuda_internal.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde::internal::cuda {

void CheckCuda(cudaError_t status, const char* where) {
  if (status == cudaSuccess) return;
  throw Error(std::string("CUDA error in ") + where + ": " + cudaGetErrorName(status) + " (" +
              cudaGetErrorString(status) + ")");
}

void CheckCublas(cublasStatus_t status, const char* where) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string("cuBLAS error in ") + where + ": " + cublasGetStatusName(status) +
              " (" + cublasGetStatusString(status) + ")");
}

void RequireDevice(int device, const char* where) {
  const CudaDeviceInfo info = QueryCudaDevice(device);
  if (!info.available) throw Error(std::string(where) + ": " + info.reason);
}

// ---- DeviceContext -----------------------------------------------------------------------------

namespace {
constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;
}  // namespace

DeviceContext::DeviceContext(const CudaOptions& options) : options_(options) {
  options_.Validate();
  RequireDevice(options_.device, "CUDA backend");
  Activate();
  PreloadKernels();
  CheckCuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  CheckCublas(cublasCreate(&blas_), "cublasCreate");
  CheckCublas(cublasSetStream(blas_, stream_), "cublasSetStream");
  CheckCuda(cudaMalloc(&blas_workspace_, kBlasWorkspaceBytes), "cudaMalloc(cuBLAS workspace)");
  CheckCublas(cublasSetWorkspace(blas_, blas_workspace_, kBlasWorkspaceBytes),
              "cublasSetWorkspace");
  cublasMath_t math = CUBLAS_PEDANTIC_MATH;
  if (options_.math == CudaMath::kFp32) math = CUBLAS_DEFAULT_MATH;
  if (options_.math == CudaMath::kTf32) math = CUBLAS_TF32_TENSOR_OP_MATH;
  CheckCublas(cublasSetMathMode(blas_, math), "cublasSetMathMode");
}

DeviceContext::~DeviceContext() {
  cudaSetDevice(options_.device);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (blas_ != nullptr) cublasDestroy(blas_);
  if (blas_workspace_ != nullptr) cudaFree(blas_workspace_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void DeviceContext::Activate() const {
  CheckCuda(cudaSetDevice(options_.device), "cudaSetDevice");
}

void DeviceContext::Synchronize() const {
  CheckCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

// ---- Workspace and operations ------------------------------------------------------------------

void DeviceWorkspace::Prepare(const NetworkLayout& net, int n, bool with_tangent,
                              bool for_inference, cudaStream_t stream) {
  if (cols == n && inference == for_inference && (tangent || !with_tangent)) return;
  const MlpConfig& c = net.config;
  const int depth = c.depth;
  const int ld0 = net.ld_input();
  const int ldh = net.ld_hidden();
  const int hidden_buffers = for_inference ? 1 : depth;
  cols = n;
  tangent = with_tangent;
  inference = for_inference;
  a.clear();
  z.clear();
  a_dot.clear();
  z_dot.clear();
  a.resize(hidden_buffers + 1);
  z.resize(for_inference ? 1 : depth);
  // Zeros everywhere, then the ones rows that carry the biases.
  a[0].Resize(int64_t{ld0} * n);
  a[0].Zero(stream);
  LaunchSetRows(a[0].data(), ld0, n, c.input_dim(), c.input_dim() + 1, 1.0f, stream);
  for (int l = 1; l <= hidden_buffers; ++l) {
    a[l].Resize(int64_t{ldh} * n);
    a[l].Zero(stream);
    LaunchSetRows(a[l].data(), ldh, n, c.width, c.width + 1, 1.0f, stream);
  }
  for (auto& buffer : z) {
    buffer.Resize(int64_t{ldh} * n);
    buffer.Zero(stream);
  }
  output.Resize(int64_t{c.dim} * n);
  output.Zero(stream);
  if (!for_inference) {
    for (auto* buffer : {&g_a, &g_z}) {
      buffer->Resize(int64_t{ldh} * n);
      buffer->Zero(stream);
    }
  }
  if (with_tangent) {
    a_dot.resize(depth + 1);
    z_dot.resize(depth);
    a_dot[0].Resize(int64_t{ld0} * n);
    a_dot[0].Zero(stream);
    for (int l = 1; l <= depth; ++l) {
      a_dot[l].Resize(int64_t{ldh} * n);
      a_dot[l].Zero(stream);
    }
    for (auto& buffer : z_dot) {
      buffer.Resize(int64_t{ldh} * n);
      buffer.Zero(stream);
    }
    output_dot.Resize(int64_t{c.dim} * n);
    output_dot.Zero(stream);
    for (auto* buffer : {&g_a_dot, &g_z_dot}) {
      buffer->Resize(int64_t{ldh} * n);
      buffer->Zero(stream);
    }
  }
  CheckLaunch("DeviceWorkspace::Prepare");
}

PassBuffers<float> DeviceWorkspace::View() {
  PassBuffers<float> b;
  b.cols = cols;
  for (auto& buffer : a) b.a.push_back(buffer.data());
  for (auto& buffer : z) b.z.push_back(buffer.data());
  for (auto& buffer : a_dot) b.a_dot.push_back(buffer.data());
  for (auto& buffer : z_dot) b.z_dot.push_back(buffer.data());
  b.output = output.data();
  b.output_dot = output_dot.data();
  b.g_a = g_a.data();
  b.g_a_dot = g_a_dot.data();
  b.g_z = g_z.data();
  b.g_z_dot = g_z_dot.data();
  return b;
}

void CudaOps::Gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda,
                   const float* b, int ldb, float beta, float* c, int ldc) const {
  const float one = 1.0f;
  CheckCublas(cublasSgemm(ctx_.blas(), trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                          trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one, a, lda, b, ldb,
                          &beta, c, ldc),
              "cublasSgemm");
}

}  // namespace scoresde::internal::cuda
