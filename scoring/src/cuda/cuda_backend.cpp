// Device query, device random streams, CudaMlp and the device ceilings (cuda_backend.hpp).
#include "scoresde/scoring/cuda_backend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda_internal.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {

using internal::cuda::CheckCublas;
using internal::cuda::CheckCuda;
using internal::cuda::CheckLaunch;
using internal::cuda::DeviceBuffer;
using internal::cuda::CudaOps;
using internal::cuda::DeviceContext;
using internal::cuda::DeviceWorkspace;
using internal::cuda::NetworkLayout;
using internal::cuda::NoiseKey;

// ---- Device query ------------------------------------------------------------------------------

CudaDeviceInfo QueryCudaDevice(int device) {
  CudaDeviceInfo info;
  info.built_with_cuda = true;
  info.device = device;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    info.reason = std::string("no CUDA device could be used (") + cudaGetErrorName(status) +
                  ": " + cudaGetErrorString(status) + ")";
    return info;
  }
  if (device < 0 || device >= count) {
    info.reason = "CUDA device " + std::to_string(device) + " does not exist (" +
                  std::to_string(count) + " found)";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    info.reason = "cudaGetDeviceProperties failed for device " + std::to_string(device);
    return info;
  }
  info.available = true;
  info.name = prop.name;
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.global_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.l2_cache_bytes = prop.l2CacheSize;
  cudaDriverGetVersion(&info.driver_version);
  cudaRuntimeGetVersion(&info.runtime_version);
  int major = 0, minor = 0, patch = 0;
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  info.cublas_version = major * 10000 + minor * 100 + patch;
  return info;
}

bool CudaAvailable(int device) { return QueryCudaDevice(device).available; }

// ---- Random numbers ----------------------------------------------------------------------------

namespace {

constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

void CheckFillArguments(const char* where, uint64_t step, uint32_t substep, int64_t first_sample,
                        int rows, int64_t cols) {
  Require(rows >= 1, where, "rows", rows, ">= 1");
  Require(cols >= 1, where, "cols", cols, ">= 1");
  Require(first_sample >= 0, where, "first_sample", first_sample, ">= 0");
  Require(static_cast<uint64_t>(first_sample) + static_cast<uint64_t>(cols) <= kMax32 + 1, where,
          "last sample index", first_sample + cols - 1, "< 2^32");
  Require(step <= kMax32, where, "step", static_cast<int64_t>(step), "< 2^32");
  Require(substep <= 0xffffu, where, "substep", static_cast<int64_t>(substep), "< 65536");
}

NoiseKey KeyOf(const NoiseStream& noise) {
  return {noise.seed(), static_cast<uint32_t>(noise.stream())};
}

Matrix Fill(const char* where, int kind, const NoiseStream& noise, uint64_t step,
            uint32_t substep, int64_t first_sample, int rows, int64_t cols,
            const CudaOptions& options) {
  CheckFillArguments(where, step, substep, first_sample, rows, cols);
  DeviceContext ctx(options);
  DeviceBuffer<double> out(int64_t{rows} * cols);
  internal::cuda::LaunchFill(kind, KeyOf(noise), step, substep,
                             static_cast<uint64_t>(first_sample), rows, cols, out.data(),
                             ctx.stream());
  CheckLaunch(where);
  Matrix result(rows, cols);
  out.Download(result.data(), int64_t{rows} * cols, ctx.stream());
  return result;
}

}  // namespace

Matrix CudaFillNormal(const NoiseStream& noise, uint64_t step, uint32_t substep,
                      int64_t first_sample, int rows, int64_t cols, const CudaOptions& options) {
  return Fill("CudaFillNormal", 0, noise, step, substep, first_sample, rows, cols, options);
}

Matrix CudaFillUniform(const NoiseStream& noise, uint64_t step, uint32_t substep,
                       int64_t first_sample, int rows, int64_t cols, const CudaOptions& options) {
  return Fill("CudaFillUniform", 1, noise, step, substep, first_sample, rows, cols, options);
}

Matrix CudaFillRademacher(const NoiseStream& noise, uint64_t step, uint32_t substep,
                          int64_t first_sample, int rows, int64_t cols,
                          const CudaOptions& options) {
  return Fill("CudaFillRademacher", 2, noise, step, substep, first_sample, rows, cols,
              options);
}

std::vector<std::array<uint32_t, 4>> CudaPhiloxWords(const NoiseStream& noise, uint64_t step,
                                                     uint32_t substep, int64_t first_sample,
                                                     int64_t count, int blocks,
                                                     const CudaOptions& options) {
  constexpr const char* kWhere = "CudaPhiloxWords";
  CheckFillArguments(kWhere, step, substep, first_sample, 1, count);
  Require(blocks >= 1, kWhere, "blocks", blocks, ">= 1");
  DeviceContext ctx(options);
  DeviceBuffer<uint32_t> out(4 * count * blocks);
  internal::cuda::LaunchPhiloxWords(KeyOf(noise), step, substep,
                                    static_cast<uint64_t>(first_sample), count, blocks,
                                    out.data(), ctx.stream());
  CheckLaunch(kWhere);
  std::vector<uint32_t> flat(static_cast<size_t>(4 * count * blocks));
  out.Download(flat.data(), 4 * count * blocks, ctx.stream());
  std::vector<std::array<uint32_t, 4>> words(static_cast<size_t>(count * blocks));
  for (size_t k = 0; k < words.size(); ++k) {
    for (int w = 0; w < 4; ++w) words[k][w] = flat[4 * k + w];
  }
  return words;
}

// ---- CudaMlp -------------------------------------------------------------------------------------

namespace internal {

class CudaMlpImpl {
 public:
  CudaMlpImpl(const MlpNetwork<float>& network, const CudaOptions& options)
      : ctx(options), net(network.config()), config(network.config()) {
    fourier.Upload(network.fourier_weights().data(), network.fourier_weights().size(),
                   ctx.stream());
    SetParameters(network.parameters());
  }

  void SetParameters(const Eigen::VectorXf& parameters) {
    const std::vector<float> s = net.ToStore<float>(parameters.data());
    store.Upload(s.data(), static_cast<int64_t>(s.size()), ctx.stream());
    ctx.Synchronize();
  }

  Eigen::VectorXf Parameters() {
    std::vector<float> s(static_cast<size_t>(net.store_size));
    store.Download(s.data(), net.store_size, ctx.stream());
    Eigen::VectorXf p(net.num_parameters);
    net.FromStore<float>(s.data(), p.data());
    return p;
  }

  void CheckInputs(const char* where, const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                   const Eigen::MatrixXf* u_dot) const {
    Require(u.rows() == config.dim, where, "u.rows()", static_cast<int64_t>(u.rows()),
            "the network's dim " + std::to_string(config.dim));
    Require(u.cols() >= 1 && u.cols() <= (1 << 30), where, "u.cols()",
            static_cast<int64_t>(u.cols()), "in [1, 2^30]");
    Require(tau.cols() == u.cols(), where, "tau.cols()", static_cast<int64_t>(tau.cols()),
            std::to_string(u.cols()) + " (one per column of u)");
    Require(u.allFinite(), where, "u", std::string("non-finite"), "finite");
    Require(tau.allFinite(), where, "tau", std::string("non-finite"), "finite");
    if (u_dot != nullptr) {
      Require(u_dot->rows() == u.rows() && u_dot->cols() == u.cols(), where, "u_dot.cols()",
              static_cast<int64_t>(u_dot->cols()), "the shape of u");
      Require(u_dot->allFinite(), where, "u_dot", std::string("non-finite"), "finite");
    }
  }

  // Fills a[0] (and a_dot[0]) and runs the forward (and tangent) pass.
  void Run(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau, const Eigen::MatrixXf* u_dot) {
    const int n = static_cast<int>(u.cols());
    const int d = config.dim;
    cudaStream_t stream = ctx.stream();
    ws.Prepare(net, n, u_dot != nullptr, false, stream);
    u_dev.Upload(u.data(), int64_t{d} * n, stream);
    tau_dev.Upload(tau.data(), n, stream);
    internal::cuda::LaunchNetworkInput(d, config.embed_dim / 2, n, u_dev.data(), tau_dev.data(),
                                       fourier.data(), ws.a[0].data(), net.ld_input(), stream);
    const CudaOps ops(ctx);
    internal::cuda::ForwardPass(ops, net, store.data(), ws.View());
    if (u_dot != nullptr) {
      u_dot_dev.Upload(u_dot->data(), int64_t{d} * n, stream);
      internal::cuda::LaunchCopyRows(d, n, u_dot_dev.data(), d, ws.a_dot[0].data(),
                                     net.ld_input(), stream);
      internal::cuda::TangentPass(ops, net, store.data(), ws.View());
    }
    CheckLaunch("CudaMlp");
  }

  Eigen::MatrixXf Download(const DeviceBuffer<float>& buffer, int rows, int cols) {
    Eigen::MatrixXf m(rows, cols);
    buffer.Download(m.data(), int64_t{rows} * cols, ctx.stream());
    return m;
  }

  Eigen::VectorXf DownloadGradient() {
    std::vector<float> s(static_cast<size_t>(net.store_size));
    grad.Download(s.data(), net.store_size, ctx.stream());
    Eigen::VectorXf p(net.num_parameters);
    net.FromStore<float>(s.data(), p.data());
    return p;
  }

  void CheckAdjoint(const char* where, const char* name, const Eigen::MatrixXf& g, int n) const {
    Require(g.rows() == config.dim && g.cols() == n, where, std::string(name) + ".cols()",
            static_cast<int64_t>(g.cols()), "the shape of u");
    Require(g.allFinite(), where, name, std::string("non-finite"), "finite");
  }

  DeviceContext ctx;
  NetworkLayout net;
  MlpConfig config;
  DeviceBuffer<float> store, fourier, grad, u_dev, u_dot_dev, tau_dev, g_dev, g_dot_dev;
  DeviceWorkspace ws;
};

}  // namespace internal

CudaMlp::CudaMlp(const MlpNetwork<float>& network, const CudaOptions& options)
    : impl_(std::make_unique<internal::CudaMlpImpl>(network, options)) {}
CudaMlp::~CudaMlp() = default;
CudaMlp::CudaMlp(CudaMlp&&) noexcept = default;
CudaMlp& CudaMlp::operator=(CudaMlp&&) noexcept = default;

const MlpConfig& CudaMlp::config() const { return impl_->config; }
int64_t CudaMlp::num_parameters() const { return impl_->net.num_parameters; }
Eigen::VectorXf CudaMlp::Parameters() const { return impl_->Parameters(); }

void CudaMlp::SetParameters(const Eigen::VectorXf& parameters) {
  Require(parameters.size() == impl_->net.num_parameters, "CudaMlp::SetParameters",
          "parameters.size()", static_cast<int64_t>(parameters.size()),
          std::to_string(impl_->net.num_parameters) + " (the layout)");
  Require(parameters.allFinite(), "CudaMlp::SetParameters", "parameters",
          std::string("non-finite"), "finite");
  impl_->SetParameters(parameters);
}

Eigen::MatrixXf CudaMlp::Forward(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau) const {
  impl_->CheckInputs("CudaMlp::Forward", u, tau, nullptr);
  impl_->Run(u, tau, nullptr);
  return impl_->Download(impl_->ws.output, impl_->config.dim, static_cast<int>(u.cols()));
}

void CudaMlp::ForwardTangent(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                             const Eigen::MatrixXf& u_dot, Eigen::MatrixXf* output,
                             Eigen::MatrixXf* output_dot) const {
  impl_->CheckInputs("CudaMlp::ForwardTangent", u, tau, &u_dot);
  impl_->Run(u, tau, &u_dot);
  const int n = static_cast<int>(u.cols());
  if (output != nullptr) *output = impl_->Download(impl_->ws.output, impl_->config.dim, n);
  if (output_dot != nullptr) {
    *output_dot = impl_->Download(impl_->ws.output_dot, impl_->config.dim, n);
  }
}

Eigen::VectorXf CudaMlp::Gradient(const Eigen::MatrixXf& u, const Eigen::RowVectorXf& tau,
                                  const Eigen::MatrixXf& g) const {
  constexpr const char* kWhere = "CudaMlp::Gradient";
  impl_->CheckInputs(kWhere, u, tau, nullptr);
  const int n = static_cast<int>(u.cols());
  impl_->CheckAdjoint(kWhere, "g", g, n);
  impl_->Run(u, tau, nullptr);
  auto& m = *impl_;
  m.g_dev.Upload(g.data(), int64_t{m.config.dim} * n, m.ctx.stream());
  m.grad.Resize(m.net.store_size);
  internal::cuda::BackwardPass(CudaOps(m.ctx), m.net, m.store.data(), m.g_dev.data(), m.ws.View(),
                               m.grad.data());
  return m.DownloadGradient();
}

Eigen::VectorXf CudaMlp::GradientWithTangent(const Eigen::MatrixXf& u,
                                             const Eigen::RowVectorXf& tau,
                                             const Eigen::MatrixXf& u_dot,
                                             const Eigen::MatrixXf& g,
                                             const Eigen::MatrixXf& g_dot) const {
  constexpr const char* kWhere = "CudaMlp::GradientWithTangent";
  impl_->CheckInputs(kWhere, u, tau, &u_dot);
  const int n = static_cast<int>(u.cols());
  impl_->CheckAdjoint(kWhere, "g", g, n);
  impl_->CheckAdjoint(kWhere, "g_dot", g_dot, n);
  impl_->Run(u, tau, &u_dot);
  auto& m = *impl_;
  m.g_dev.Upload(g.data(), int64_t{m.config.dim} * n, m.ctx.stream());
  m.g_dot_dev.Upload(g_dot.data(), int64_t{m.config.dim} * n, m.ctx.stream());
  m.grad.Resize(m.net.store_size);
  internal::cuda::BackwardWithTangentPass(CudaOps(m.ctx), m.net, m.store.data(), m.g_dev.data(),
                                          m.g_dot_dev.data(), m.ws.View(), m.grad.data());
  return m.DownloadGradient();
}

// ---- Device ceilings ---------------------------------------------------------------------------

namespace {

// Median of `repeats` timings (milliseconds) of run(), after three warm-up calls.
template <typename Run>
double MedianMilliseconds(cudaStream_t stream, int repeats, Run run) {
  cudaEvent_t start, stop;
  CheckCuda(cudaEventCreate(&start), "cudaEventCreate");
  CheckCuda(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 3; ++i) run();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    CheckCuda(cudaEventRecord(start, stream), "cudaEventRecord");
    run();
    CheckCuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    CheckCuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    CheckCuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double SgemmTflops(CudaMath math, int n, int repeats, const CudaOptions& options) {
  CudaOptions o = options;
  o.math = math;
  DeviceContext ctx(o);
  const int64_t count = int64_t{n} * n;
  DeviceBuffer<float> a(count), b(count), c(count);
  internal::cuda::LaunchUniformFloats({1, 1}, a.data(), count, ctx.stream());
  internal::cuda::LaunchUniformFloats({2, 1}, b.data(), count, ctx.stream());
  CheckLaunch("MeasureCudaPeaks");
  const float one = 1.0f, zero = 0.0f;
  const double ms = MedianMilliseconds(ctx.stream(), repeats, [&] {
    CheckCublas(cublasSgemm(ctx.blas(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.data(), n,
                            b.data(), n, &zero, c.data(), n),
                "cublasSgemm");
  });
  return 2.0 * n * static_cast<double>(n) * n / (ms * 1e-3) / 1e12;
}

}  // namespace

CudaPeaks MeasureCudaPeaks(int gemm_size, int64_t copy_bytes, int repeats,
                           const CudaOptions& options) {
  constexpr const char* kWhere = "MeasureCudaPeaks";
  Require(gemm_size >= 64 && gemm_size <= 32768, kWhere, "gemm_size", gemm_size,
          "in [64, 32768]");
  Require(copy_bytes >= (1 << 20), kWhere, "copy_bytes", copy_bytes, ">= 2^20");
  Require(repeats >= 1, kWhere, "repeats", repeats, ">= 1");
  CudaPeaks peaks;
  peaks.gemm_size = gemm_size;
  peaks.copy_bytes = copy_bytes;
  peaks.sgemm_fp32_tflops = SgemmTflops(CudaMath::kFp32, gemm_size, repeats, options);
  peaks.sgemm_tf32_tflops = SgemmTflops(CudaMath::kTf32, gemm_size, repeats, options);
  DeviceContext ctx(options);
  const int64_t floats = copy_bytes / 4;
  DeviceBuffer<float> src(floats), dst(floats);
  internal::cuda::LaunchUniformFloats({3, 1}, src.data(), floats, ctx.stream());
  CheckLaunch(kWhere);
  const double ms = MedianMilliseconds(ctx.stream(), repeats, [&] {
    CheckCuda(cudaMemcpyAsync(dst.data(), src.data(), static_cast<size_t>(floats) * 4,
                              cudaMemcpyDeviceToDevice, ctx.stream()),
              "cudaMemcpyAsync");
  });
  peaks.copy_gbytes_per_second = 2.0 * static_cast<double>(floats) * 4 / (ms * 1e-3) / 1e9;
  return peaks;
}

}  // namespace scoresde
