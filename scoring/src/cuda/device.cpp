// Error checks, the device context and the device network's passes (cuda_internal.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "cuda_internal.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

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

// ---- DeviceNetwork -----------------------------------------------------------------------------

DeviceNetwork::DeviceNetwork(const MlpConfig& config) : config_(config) {
  config_.Validate();
  const int depth = config_.depth;
  int64_t store = 0, canonical = 0;
  for (int l = 0; l <= depth; ++l) {
    Layer layer;
    layer.in = l == 0 ? config_.input_dim() : config_.width;
    layer.out = l == depth ? config_.dim : config_.width;
    layer.in_pad = RoundUp4(layer.in + 1);
    layer.store_offset = store;
    store += int64_t{layer.in_pad} * layer.out;
    layer.weight = canonical;
    canonical += int64_t{layer.out} * layer.in;
    layer.bias = canonical;
    canonical += layer.out;
    layers_.push_back(layer);
  }
  store_size_ = store;
  num_parameters_ = canonical;
}

std::vector<float> DeviceNetwork::ToStore(const float* canonical) const {
  std::vector<float> store(static_cast<size_t>(store_size_), 0.0f);
  for (const Layer& layer : layers_) {
    for (int o = 0; o < layer.out; ++o) {
      float* column = store.data() + layer.store_offset + int64_t{o} * layer.in_pad;
      const float* row = canonical + layer.weight + int64_t{o} * layer.in;
      for (int i = 0; i < layer.in; ++i) column[i] = row[i];
      column[layer.in] = canonical[layer.bias + o];
    }
  }
  return store;
}

void DeviceNetwork::FromStore(const float* store, float* canonical) const {
  for (const Layer& layer : layers_) {
    for (int o = 0; o < layer.out; ++o) {
      const float* column = store + layer.store_offset + int64_t{o} * layer.in_pad;
      float* row = canonical + layer.weight + int64_t{o} * layer.in;
      for (int i = 0; i < layer.in; ++i) row[i] = column[i];
      canonical[layer.bias + o] = column[layer.in];
    }
  }
}

void DeviceNetwork::Prepare(int n, bool tangent, bool inference, Workspace* ws,
                            cudaStream_t stream) const {
  const bool same = ws->cols == n && ws->inference == inference && (ws->tangent || !tangent);
  if (same) return;
  const int depth = config_.depth;
  const int d = config_.dim;
  const int ld0 = ld_input();
  const int ldh = ld_hidden();
  const int hidden_buffers = inference ? 1 : depth;
  ws->cols = n;
  ws->tangent = tangent;
  ws->inference = inference;
  ws->a.clear();
  ws->z.clear();
  ws->a_dot.clear();
  ws->z_dot.clear();
  ws->a.resize(hidden_buffers + 1);
  ws->z.resize(inference ? 1 : depth);
  ws->a[0].Resize(int64_t{ld0} * n);
  ws->a[0].Zero(stream);
  LaunchSetRows(ws->a[0].data(), ld0, n, config_.input_dim(), config_.input_dim() + 1, 1.0f,
                stream);
  for (int l = 1; l <= hidden_buffers; ++l) {
    ws->a[l].Resize(int64_t{ldh} * n);
    ws->a[l].Zero(stream);
    LaunchSetRows(ws->a[l].data(), ldh, n, config_.width, config_.width + 1, 1.0f, stream);
  }
  for (auto& z : ws->z) {
    z.Resize(int64_t{ldh} * n);
    z.Zero(stream);
  }
  ws->output.Resize(int64_t{d} * n);
  if (!inference) {
    ws->g_a.Resize(int64_t{ldh} * n);
    ws->g_z.Resize(int64_t{ldh} * n);
    ws->g_a.Zero(stream);
    ws->g_z.Zero(stream);
  }
  if (tangent) {
    ws->a_dot.resize(depth + 1);
    ws->z_dot.resize(depth);
    ws->a_dot[0].Resize(int64_t{ld0} * n);
    ws->a_dot[0].Zero(stream);
    for (int l = 1; l <= depth; ++l) {
      ws->a_dot[l].Resize(int64_t{ldh} * n);
      ws->a_dot[l].Zero(stream);
    }
    for (auto& z : ws->z_dot) {
      z.Resize(int64_t{ldh} * n);
      z.Zero(stream);
    }
    ws->output_dot.Resize(int64_t{d} * n);
    ws->g_a_dot.Resize(int64_t{ldh} * n);
    ws->g_z_dot.Resize(int64_t{ldh} * n);
    ws->g_a_dot.Zero(stream);
    ws->g_z_dot.Zero(stream);
  }
  CheckLaunch("DeviceNetwork::Prepare");
}

void DeviceNetwork::Gemm(const DeviceContext& ctx, cublasOperation_t op_a,
                         cublasOperation_t op_b, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) const {
  const float one = 1.0f;
  CheckCublas(cublasSgemm(ctx.blas(), op_a, op_b, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc),
              "cublasSgemm");
}

void DeviceNetwork::Forward(const DeviceContext& ctx, const float* store, Workspace* ws) const {
  const int depth = config_.depth;
  const int n = ws->cols;
  const int ldh = ld_hidden();
  cudaStream_t stream = ctx.stream();
  for (int l = 0; l < depth; ++l) {
    const Layer& layer = layers_[l];
    float* z = ws->z[l].data();
    Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, layer.out, n, layer.in_pad, store + layer.store_offset,
         layer.in_pad, ws->a[l].data(), layer.in_pad, 0.0f, z, ldh);
    const float* residual = config_.residual && l >= 1 ? ws->a[l].data() : nullptr;
    LaunchSiluForward(config_.width, n, ldh, z, residual, ws->a[l + 1].data(), stream);
  }
  const Layer& out = layers_[depth];
  Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out.out, n, out.in_pad, store + out.store_offset,
       out.in_pad, ws->a[depth].data(), out.in_pad, 0.0f, ws->output.data(), config_.dim);
  CheckLaunch("DeviceNetwork::Forward");
}

void DeviceNetwork::Tangent(const DeviceContext& ctx, const float* store, Workspace* ws) const {
  const int depth = config_.depth;
  const int n = ws->cols;
  const int ldh = ld_hidden();
  cudaStream_t stream = ctx.stream();
  for (int l = 0; l < depth; ++l) {
    const Layer& layer = layers_[l];
    float* z_dot = ws->z_dot[l].data();
    Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, layer.out, n, layer.in_pad, store + layer.store_offset,
         layer.in_pad, ws->a_dot[l].data(), layer.in_pad, 0.0f, z_dot, ldh);
    const float* residual = config_.residual && l >= 1 ? ws->a_dot[l].data() : nullptr;
    LaunchSiluTangent(config_.width, n, ldh, ws->z[l].data(), z_dot, residual,
                      ws->a_dot[l + 1].data(), stream);
  }
  const Layer& out = layers_[depth];
  Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out.out, n, out.in_pad, store + out.store_offset,
       out.in_pad, ws->a_dot[depth].data(), out.in_pad, 0.0f, ws->output_dot.data(),
       config_.dim);
  CheckLaunch("DeviceNetwork::Tangent");
}

void DeviceNetwork::Backward(const DeviceContext& ctx, const float* store, const float* g,
                             Workspace* ws, float* grad_store) const {
  const int depth = config_.depth;
  const int n = ws->cols;
  const int d = config_.dim;
  const int width = config_.width;
  const int ldh = ld_hidden();
  cudaStream_t stream = ctx.stream();
  // Output layer: dS_L = [a_L; 1] gᵀ (the ones row gives the bias gradient), g_a = W_Lᵀ g.
  const Layer& out = layers_[depth];
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, out.in_pad, d, n, ws->a[depth].data(), out.in_pad, g, d,
       0.0f, grad_store + out.store_offset, out.in_pad);
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, d, store + out.store_offset, out.in_pad, g, d,
       0.0f, ws->g_a.data(), ldh);
  for (int l = depth - 1; l >= 0; --l) {
    const Layer& layer = layers_[l];
    LaunchSiluBackward(width, n, ldh, ws->z[l].data(), ws->g_a.data(), ws->g_z.data(), stream);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, layer.in_pad, width, n, ws->a[l].data(), layer.in_pad,
         ws->g_z.data(), ldh, 0.0f, grad_store + layer.store_offset, layer.in_pad);
    if (l == 0) break;
    // g_a ← [g_a +] W_lᵀ g_z (the residual path carries g_a through unchanged).
    const float beta = config_.residual ? 1.0f : 0.0f;
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, width, store + layer.store_offset,
         layer.in_pad, ws->g_z.data(), ldh, beta, ws->g_a.data(), ldh);
  }
  CheckLaunch("DeviceNetwork::Backward");
}

void DeviceNetwork::BackwardWithTangent(const DeviceContext& ctx, const float* store,
                                        const float* g, const float* g_dot, Workspace* ws,
                                        float* grad_store) const {
  const int depth = config_.depth;
  const int n = ws->cols;
  const int d = config_.dim;
  const int width = config_.width;
  const int ldh = ld_hidden();
  cudaStream_t stream = ctx.stream();
  const Layer& out = layers_[depth];
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, out.in_pad, d, n, ws->a[depth].data(), out.in_pad, g, d,
       0.0f, grad_store + out.store_offset, out.in_pad);
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, out.in_pad, d, n, ws->a_dot[depth].data(), out.in_pad,
       g_dot, d, 1.0f, grad_store + out.store_offset, out.in_pad);
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, d, store + out.store_offset, out.in_pad, g, d,
       0.0f, ws->g_a.data(), ldh);
  Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, d, store + out.store_offset, out.in_pad, g_dot, d,
       0.0f, ws->g_a_dot.data(), ldh);
  for (int l = depth - 1; l >= 0; --l) {
    const Layer& layer = layers_[l];
    LaunchSiluBackwardTangent(width, n, ldh, ws->z[l].data(), ws->z_dot[l].data(),
                              ws->g_a.data(), ws->g_a_dot.data(), ws->g_z.data(),
                              ws->g_z_dot.data(), stream);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, layer.in_pad, width, n, ws->a[l].data(), layer.in_pad,
         ws->g_z.data(), ldh, 0.0f, grad_store + layer.store_offset, layer.in_pad);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, layer.in_pad, width, n, ws->a_dot[l].data(),
         layer.in_pad, ws->g_z_dot.data(), ldh, 1.0f, grad_store + layer.store_offset,
         layer.in_pad);
    if (l == 0) break;
    const float beta = config_.residual ? 1.0f : 0.0f;
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, width, store + layer.store_offset,
         layer.in_pad, ws->g_z.data(), ldh, beta, ws->g_a.data(), ldh);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, width, n, width, store + layer.store_offset,
         layer.in_pad, ws->g_z_dot.data(), ldh, beta, ws->g_a_dot.data(), ldh);
  }
  CheckLaunch("DeviceNetwork::BackwardWithTangent");
}

void DeviceNetwork::Infer(const DeviceContext& ctx, const float* store, Workspace* ws) const {
  const int depth = config_.depth;
  const int n = ws->cols;
  const int ldh = ld_hidden();
  cudaStream_t stream = ctx.stream();
  float* hidden = ws->a[1].data();
  float* z = ws->z[0].data();
  for (int l = 0; l < depth; ++l) {
    const Layer& layer = layers_[l];
    const float* input = l == 0 ? ws->a[0].data() : hidden;
    Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, layer.out, n, layer.in_pad, store + layer.store_offset,
         layer.in_pad, input, layer.in_pad, 0.0f, z, ldh);
    // In place: a ← a + SiLU(z) (the GEMM has consumed a already, in stream order).
    const float* residual = config_.residual && l >= 1 ? hidden : nullptr;
    LaunchSiluForward(config_.width, n, ldh, z, residual, hidden, stream);
  }
  const Layer& out = layers_[depth];
  Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out.out, n, out.in_pad, store + out.store_offset,
       out.in_pad, hidden, out.in_pad, 0.0f, ws->output.data(), config_.dim);
  CheckLaunch("DeviceNetwork::Infer");
}

// ---- Parameter blocks --------------------------------------------------------------------------

SdeParams MakeSdeParams(const ScalarAffineSde& sde) {
  SdeParams p;
  p.t_final = sde.t_final();
  switch (sde.family()) {
    case SdeFamily::kVe: {
      const auto& o = static_cast<const VeSde&>(sde).options();
      p.family = kFamilyVe;
      p.ve_exact = o.kernel == VeKernel::kExact ? 1 : 0;
      p.sigma_min = o.sigma_min;
      p.sigma_max = o.sigma_max;
      p.log_ratio = std::log(o.sigma_max / o.sigma_min);
      break;
    }
    case SdeFamily::kVp: {
      const auto& o = static_cast<const VpSde&>(sde).options();
      p.family = kFamilyVp;
      p.beta_min = o.beta_min;
      p.beta_max = o.beta_max;
      break;
    }
    case SdeFamily::kSubVp: {
      const auto& o = static_cast<const SubVpSde&>(sde).options();
      p.family = kFamilySubVp;
      p.beta_min = o.beta_min;
      p.beta_max = o.beta_max;
      break;
    }
  }
  return p;
}

ModelParams MakeModelParams(const MlpConfig& config) {
  ModelParams p;
  switch (config.parameterization) {
    case Parameterization::kScore:
      p.parameterization = kParamScore;
      break;
    case Parameterization::kNoise:
      p.parameterization = kParamNoise;
      break;
    case Parameterization::kDenoiser:
      p.parameterization = kParamDenoiser;
      break;
  }
  p.data_std = config.data_std;
  return p;
}

}  // namespace scoresde::internal::cuda
