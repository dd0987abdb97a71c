// Host emulation of the CUDA backend: the kernels' arithmetic (device_math.cuh), the network passes
// (network_passes.hpp), the training step (train_step.hpp) and the sampler plans
// (sampler_plan.hpp) are the code the device runs; here they run through plain host loops — an
// "Ops" with cuBLAS's column-major GEMM semantics written out — in double, and are compared with
// the CPU implementations (NoiseStream, MlpNetwork<double>, ScoreMatchingLoss, AdamOptimizer,
// PcSampler, ProbabilityFlow). No GPU is needed; what remains for a device is the CUDA plumbing
// (streams, graphs, cuBLAS itself) and float32 rounding (verification/suites/cuda_*_suite.cpp).
//
// Tolerances: both sides compute the same double-precision formulas in different orders (blocked
// vs naive products, grouped vs sequential sums), so results differ by a few roundings per
// operation, amplified by at most the number of operations on a path: for these sizes
// (products of ≤ 200 terms, ≤ 5 layers, ≤ 200 sampler steps of contracting maps) that is below
// 1e-12 relative. The checks use 1e-9 relative (to the largest magnitude of the compared
// quantity), far above rounding and far below the O(1) error any indexing, layout, counter or
// coefficient mistake produces.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cuda/device_math.cuh"
#include "cuda/network_passes.hpp"
#include "cuda/sampler_plan.hpp"
#include "cuda/train_step.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/probability_flow.hpp"

namespace scoresde {
namespace {

using namespace internal::cuda;  // NOLINT: the emulated device code
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kRelative = 1e-9;

// max |a − b| ≤ kRelative · max(1, max |b|).
template <typename A, typename B>
::testing::AssertionResult Close(const A& a, const B& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  double diff = 0.0, scale = 1.0;
  for (Eigen::Index k = 0; k < b.size(); ++k) {
    const double x = static_cast<double>(a.data()[k]), y = static_cast<double>(b.data()[k]);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      return ::testing::AssertionFailure() << "non-finite entry " << k;
    }
    diff = std::max(diff, std::abs(x - y));
    scale = std::max(scale, std::abs(y));
  }
  if (diff <= kRelative * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |difference| " << diff << " > " << kRelative
                                       << " · " << scale;
}

// ---- The host Ops --------------------------------------------------------------------------------

template <typename T>
struct HostOps {
  // C ← op(A) op(B) + beta C, column-major, alpha = 1; C is not read when beta = 0 (cuBLAS).
  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, const T* a, int lda, const T* b,
            int ldb, T beta, T* c, int ldc) const {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        T sum = T(0);
        for (int p = 0; p < k; ++p) {
          const T av = trans_a ? a[p + int64_t{i} * lda] : a[i + int64_t{p} * lda];
          const T bv = trans_b ? b[j + int64_t{p} * ldb] : b[p + int64_t{j} * ldb];
          sum += av * bv;
        }
        T& out = c[i + int64_t{j} * ldc];
        out = beta == T(0) ? sum : sum + beta * out;
      }
    }
  }
  // The kernels' index mapping (four rows at a time when rows % 4 == 0).
  template <typename F>
  void Elements(int rows, int n, int ld, F f) const {
    const bool quads = rows % 4 == 0;
    for (int64_t k = 0; k < ElementWork(rows, n); ++k) {
      const int64_t i = ElementIndex(k, rows, ld, quads);
      for (int q = 0; q < (quads ? 4 : 1); ++q) f(i + q);
    }
  }
  void SiluForward(int rows, int n, int ld, const T* z, const T* a_in, T* a_out) const {
    Elements(rows, n, ld, [&](int64_t i) {
      a_out[i] = SiluForwardValue(z[i], a_in != nullptr ? a_in + i : nullptr);
    });
  }
  void SiluTangent(int rows, int n, int ld, const T* z, const T* z_dot, const T* a_dot_in,
                   T* a_dot_out) const {
    Elements(rows, n, ld, [&](int64_t i) {
      a_dot_out[i] = SiluTangentValue(z[i], z_dot[i], a_dot_in != nullptr ? a_dot_in + i : nullptr);
    });
  }
  void SiluBackward(int rows, int n, int ld, const T* z, const T* g_a, T* g_z) const {
    Elements(rows, n, ld, [&](int64_t i) { g_z[i] = SiluBackwardValue(z[i], g_a[i]); });
  }
  void SiluBackwardTangent(int rows, int n, int ld, const T* z, const T* z_dot, const T* g_a,
                           const T* g_a_dot, T* g_z, T* g_z_dot) const {
    Elements(rows, n, ld, [&](int64_t i) {
      SiluBackwardTangentValue(z[i], z_dot[i], g_a[i], g_a_dot[i], &g_z[i], &g_z_dot[i]);
    });
  }
  // Training.
  void DrawSamples(const SdeParams& sde, const ModelParams& model, const LossParams& loss,
                   NoiseKey key, const TrainCounters* counters, int n, PerSample* draws) const {
    for (int j = 0; j < n; ++j) {
      draws[j] = DrawSample(sde, model, loss, key, static_cast<uint64_t>(counters->step), j);
    }
  }
  void PrepareTraining(NoiseKey key, const TrainCounters* counters, int d, int half, int n,
                       const PerSample* draws, const T* fourier, const double* x0, double* x,
                       double* z, T* a0, int ld0, int sliced, int rademacher, double* v,
                       T* a0_dot) const {
    const int items = (d + 1) / 2 + half;
    for (int j = 0; j < n; ++j) {
      for (int item = 0; item < items; ++item) {
        PrepareTrainingItem(key, static_cast<uint64_t>(counters->step), d, half, j, item,
                            draws[j], fourier, x0, x, z, a0, ld0, sliced, rademacher, v, a0_dot);
      }
    }
  }
  void DenoisingLoss(int d, int n, double inv_batch, const PerSample* draws, const double* x,
                     const double* z, const T* output, double* loss, T* g) const {
    for (int j = 0; j < n; ++j) DenoisingLossExample(d, j, inv_batch, draws[j], x, z, output, loss, g);
  }
  void SlicedLoss(int d, int n, int variance_reduced, double inv_batch, const PerSample* draws,
                  const double* x, const double* v, const T* output, const T* output_dot,
                  double* loss, T* g, T* g_dot) const {
    for (int j = 0; j < n; ++j) {
      SlicedLossExample(d, j, variance_reduced, inv_batch, draws[j], x, v, output, output_dot,
                        loss, g, g_dot);
    }
  }
  // The device's blocking and tree order (so the emulated sums are the device's, bit for bit).
  template <typename V>
  static double BlockedSum(const V* values, int64_t n, bool square) {
    const int64_t blocks = (n + kReduceChunk - 1) / kReduceChunk;
    std::vector<double> partial(blocks);
    for (int64_t b = 0; b < blocks; ++b) {
      std::vector<double> thread(kReduceThreads, 0.0);
      for (int t = 0; t < kReduceThreads; ++t) {
        for (int k = 0; k < kReducePerThread; ++k) {
          const int64_t i = b * kReduceChunk + t + int64_t{k} * kReduceThreads;
          if (i < n) {
            const double x = static_cast<double>(values[i]);
            thread[t] += square ? x * x : x;
          }
        }
      }
      for (int width = kReduceThreads / 2; width > 0; width /= 2) {
        for (int t = 0; t < width; ++t) thread[t] += thread[t + width];
      }
      partial[b] = thread[0];
    }
    std::vector<double> final_threads(kFinalThreads, 0.0);
    for (int t = 0; t < kFinalThreads; ++t) {
      for (int64_t i = t; i < blocks; i += kFinalThreads) final_threads[t] += partial[i];
    }
    for (int width = kFinalThreads / 2; width > 0; width /= 2) {
      for (int t = 0; t < width; ++t) final_threads[t] += final_threads[t + width];
    }
    return final_threads[0];
  }
  void Sum(const double* values, int64_t n, double scale, double*, double* out,
           const TrainCounters* counters, int capacity) const {
    out[counters != nullptr ? counters->step % capacity : 0] = scale * BlockedSum(values, n, false);
  }
  void Norm(const T* values, int64_t n, double*, double* out, const TrainCounters* counters,
            int capacity) const {
    out[counters->step % capacity] = std::sqrt(BlockedSum(values, n, true));
  }
  void PrepareUpdate(const AdamParams& adam, const double* norms, int capacity,
                     TrainCounters* counters, UpdateScalars<T>* scalars) const {
    *scalars = internal::cuda::PrepareUpdate<T>(adam, norms[counters->step % capacity], counters);
  }
  void AdamEma(const AdamParams& adam, const UpdateScalars<T>* scalars, int64_t count, T* params,
               T* grad, T* m, T* v, T* ema) const {
    if (scalars->skip) return;
    for (int64_t i = 0; i < count; ++i) AdamEmaElement(adam, *scalars, i, params, grad, m, v, ema);
  }
  // Sampling.
  void ResetFailures(int n, FailureSink sink) const {
    std::fill(sink.per_sample, sink.per_sample + n, ~0ull);
    *sink.any = 0;
  }
  void Prior(NoiseKey key, int d, int n, const int64_t* first_sample, double prior_std,
             double* x) const {
    for (int64_t j = 0; j < n; ++j) {
      for (int pair = 0; pair < (d + 1) / 2; ++pair) {
        PriorPair(key, d, *first_sample, j, pair, prior_std, x);
      }
    }
  }
  void AffineTransform(int d, int n, const double* m, const double* factor, const double* z,
                       double* x) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) x[k] = AffineTransformElement(d, k, m, factor, z);
  }
  void InferenceInput(int d, int embed, int n, double c_in, const double* x, const T* embedding,
                      T* a0, int ld0) const {
    for (int64_t k = 0; k < int64_t{d + embed} * n; ++k) {
      int64_t index;
      const T value = InferenceInputElement(d, d + embed, k, c_in, x, embedding, &index, ld0);
      a0[index] = value;
    }
  }
  void ScoreFromOutput(int d, int n, double a, double b, const double* x, const T* output,
                       double* s) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) s[k] = a * x[k] + b * static_cast<double>(output[k]);
  }
  void GaussianScore(int d, int n, double alpha, double sigma2, const double* q,
                     const double* lambda, const double* mean, const double* x, double* w,
                     double* s) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) {
      w[k] = GaussianProjectElement(d, k, alpha, sigma2, q, lambda, mean, x);
    }
    for (int64_t k = 0; k < int64_t{d} * n; ++k) s[k] = GaussianExpandElement(d, k, q, w);
  }
  void Update(const UpdateArgs& a, int d, int n, const int64_t* first_sample, const double* s,
              double* x, FailureSink sink) const {
    const double epsilon = UpdateStepSize(a, d);
    for (int64_t k = 0; k < int64_t{d} * n; ++k) {
      x[k] = UpdateElement(a, epsilon, d, *first_sample, k, x[k], s[k]);
      RecordFailure(sink, a.report_step, k / d, static_cast<int>(k % d), x[k]);
    }
  }
  void Axpby(int d, int n, double p, const double* x, double q, const double* s,
             double* out) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) out[k] = p * x[k] + q * s[k];
  }
  void StageSum(int d, int n, const double* x, double c1, const double* k1, double c2,
                const double* k2, double c3, const double* k3, double c4, const double* k4,
                double* out, int64_t step, FailureSink sink) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) {
      double value = x[k] + c1 * k1[k];
      if (k2 != nullptr) value += c2 * k2[k];
      if (k3 != nullptr) value += c3 * k3[k];
      if (k4 != nullptr) value += c4 * k4[k];
      out[k] = value;
      RecordFailure(sink, step, k / d, static_cast<int>(k % d), value);
    }
  }
  void MeanSquaredNorm(int d, int n, const double* s, double*, double* out) const {
    std::vector<double> norms(n, 0.0);
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < d; ++i) norms[j] += s[int64_t{j} * d + i] * s[int64_t{j} * d + i];
    }
    *out = BlockedSum(norms.data(), n, false) / static_cast<double>(n);
  }
  void Denoise(int d, int n, double sigma2, double alpha, const double* s, double* x,
               int64_t step, FailureSink sink) const {
    for (int64_t k = 0; k < int64_t{d} * n; ++k) {
      x[k] = (x[k] + sigma2 * s[k]) / alpha;
      RecordFailure(sink, step, k / d, static_cast<int>(k % d), x[k]);
    }
  }
};

// Host memory for PassBuffers, with the constant rows of DeviceWorkspace::Prepare.
struct HostWorkspace {
  std::vector<std::vector<double>> a, z, a_dot, z_dot;
  std::vector<double> output, output_dot, g_a, g_a_dot, g_z, g_z_dot;
  PassBuffers<double> view;

  HostWorkspace(const NetworkLayout& net, int n, bool inference) {
    const MlpConfig& c = net.config;
    const int ld0 = net.ld_input(), ldh = net.ld_hidden();
    const int hidden = inference ? 1 : c.depth;
    // NaN everywhere a pass must write before reading, zeros and ones where the layout says.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    a.assign(hidden + 1, {});
    a[0].assign(int64_t{ld0} * n, 0.0);
    for (int j = 0; j < n; ++j) a[0][int64_t{j} * ld0 + c.input_dim()] = 1.0;
    for (int l = 1; l <= hidden; ++l) {
      a[l].assign(int64_t{ldh} * n, 0.0);
      for (int j = 0; j < n; ++j) a[l][int64_t{j} * ldh + c.width] = 1.0;
    }
    z.assign(inference ? 1 : c.depth, std::vector<double>(int64_t{ldh} * n, 0.0));
    a_dot.assign(c.depth + 1, std::vector<double>(int64_t{ldh} * n, 0.0));
    a_dot[0].assign(int64_t{ld0} * n, 0.0);
    z_dot.assign(c.depth, std::vector<double>(int64_t{ldh} * n, 0.0));
    output.assign(int64_t{c.dim} * n, nan);
    output_dot.assign(int64_t{c.dim} * n, nan);
    for (auto* v : {&g_a, &g_a_dot, &g_z, &g_z_dot}) v->assign(int64_t{ldh} * n, 0.0);
    view.cols = n;
    for (auto& v : a) view.a.push_back(v.data());
    for (auto& v : z) view.z.push_back(v.data());
    for (auto& v : a_dot) view.a_dot.push_back(v.data());
    for (auto& v : z_dot) view.z_dot.push_back(v.data());
    view.output = output.data();
    view.output_dot = output_dot.data();
    view.g_a = g_a.data();
    view.g_a_dot = g_a_dot.data();
    view.g_z = g_z.data();
    view.g_z_dot = g_z_dot.data();
  }
};

// ---- Random numbers ------------------------------------------------------------------------------

TEST(CudaHostEmulation, NoiseMatchesNoiseStream) {
  for (const uint64_t seed : {uint64_t{0}, uint64_t{77}, ~uint64_t{0} - 3}) {
    for (const Stream stream : {Stream::kPrior, Stream::kTraining, Stream::kPilot}) {
      const NoiseStream noise(seed, stream);
      const NoiseKey key{seed, static_cast<uint32_t>(stream)};
      const int64_t first = seed == 0 ? 0 : 4294967000;
      for (int kind = 0; kind < 3; ++kind) {
        const int rows = kind == 2 ? 131 : 7;
        Matrix cpu(rows, 40), emulated(rows, 40);
        if (kind == 0) noise.FillNormal(12, 3, first, cpu);
        if (kind == 1) noise.FillUniform(12, 3, first, cpu);
        if (kind == 2) noise.FillRademacher(12, 3, first, cpu);
        for (int64_t j = 0; j < 40; ++j) {
          for (int pair = 0; pair < (rows + 1) / 2; ++pair) {
            FillPair(kind, key, 12, 3, first, rows, j, pair, emulated.data());
          }
        }
        if (kind != 0) {
          EXPECT_EQ(emulated, cpu) << "kind " << kind;
          continue;
        }
        // Normals: the CPU's Box–Muller takes log/sin/cos from libmvec, the emulation (like the
        // device) from scalar libraries, so they agree to 8 ulp (docs/gpu.md), not bit for bit.
        for (Eigen::Index k = 0; k < cpu.size(); ++k) {
          const double ulp = std::ldexp(1.0, std::ilogb(cpu(k)) - 52);
          ASSERT_LE(std::abs(emulated(k) - cpu(k)), 8.0 * ulp) << "entry " << k << ": " << cpu(k);
        }
      }
      const Words w = Philox(key, 2, first + 5, 9, 4);
      EXPECT_EQ((std::array<uint32_t, 4>{w.w[0], w.w[1], w.w[2], w.w[3]}),
                noise.Raw(2, first + 5, 9, 4));
    }
  }
}

// ---- Network passes ------------------------------------------------------------------------------

std::vector<MlpConfig> NetConfigs() {
  MlpConfig a;
  a.dim = 3;
  a.width = 12;
  a.depth = 3;
  a.embed_dim = 8;
  MlpConfig b = a;
  b.width = 13;  // the scalar element path
  b.residual = false;
  b.dim = 2;
  MlpConfig c = a;
  c.depth = 1;
  c.dim = 5;
  c.embed_dim = 4;
  return {a, b, c};
}

TEST(CudaHostEmulation, NetworkPassesEqualMlpNetwork) {
  for (const MlpConfig& config : NetConfigs()) {
    const MlpNetwork<float> seed_net(config, 4);
    const MlpNetwork<double> net(config, seed_net.parameters().cast<double>(),
                                 seed_net.fourier_weights().cast<double>());
    const NetworkLayout layout(config);
    ASSERT_EQ(layout.num_parameters, net.num_parameters());
    const std::vector<double> store = layout.ToStore<double>(net.parameters().data());
    Eigen::VectorXd back(net.num_parameters());
    layout.FromStore<double>(store.data(), back.data());
    EXPECT_EQ(back, net.parameters());
    const int n = 9;
    const NoiseStream noise(5, Stream::kUser);
    Matrix u(config.dim, n), u_dot(config.dim, n), g(config.dim, n), g_dot(config.dim, n),
        t(1, n);
    noise.FillNormal(0, 0, 0, u);
    noise.FillNormal(0, 1, 0, u_dot);
    noise.FillNormal(0, 2, 0, g);
    noise.FillNormal(0, 3, 0, g_dot);
    noise.FillUniform(0, 4, 0, t);
    const Eigen::RowVectorXd tau = 3.0 * t.row(0);
    // CPU.
    MlpNetwork<double>::Workspace ws;
    net.Forward(u, tau, &ws);
    net.Tangent(u_dot, &ws);
    Eigen::VectorXd grad = Eigen::VectorXd::Zero(net.num_parameters());
    Eigen::VectorXd grad_t = Eigen::VectorXd::Zero(net.num_parameters());
    net.Backward(g, &ws, grad.data());
    net.BackwardWithTangent(g, g_dot, &ws, grad_t.data());
    // Emulated device: inputs as CudaMlp writes them (u rows, embedding rows, u̇ rows).
    HostWorkspace hw(layout, n, false);
    const HostOps<double> ops;
    const int half = config.embed_dim / 2;
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < config.dim; ++i) {
        hw.a[0][int64_t{j} * layout.ld_input() + i] = u(i, j);
        hw.a_dot[0][int64_t{j} * layout.ld_input() + i] = u_dot(i, j);
      }
      for (int k = 0; k < half; ++k) {
        const double phase = kTwoPi * net.fourier_weights()[k] * tau[j];
        hw.a[0][int64_t{j} * layout.ld_input() + config.dim + k] = std::sin(phase);
        hw.a[0][int64_t{j} * layout.ld_input() + config.dim + half + k] = std::cos(phase);
      }
    }
    ForwardPass(ops, layout, store.data(), hw.view);
    TangentPass(ops, layout, store.data(), hw.view);
    EXPECT_TRUE(Close(Eigen::Map<Matrix>(hw.output.data(), config.dim, n), ws.output));
    EXPECT_TRUE(Close(Eigen::Map<Matrix>(hw.output_dot.data(), config.dim, n), ws.output_dot));
    std::vector<double> grad_store(layout.store_size, std::nan(""));
    const Matrix g_copy = g, g_dot_copy = g_dot;
    BackwardPass(ops, layout, store.data(), g_copy.data(), hw.view, grad_store.data());
    Eigen::VectorXd emulated(net.num_parameters());
    layout.FromStore<double>(grad_store.data(), emulated.data());
    EXPECT_TRUE(Close(emulated, grad));
    std::fill(grad_store.begin(), grad_store.end(), std::nan(""));
    BackwardWithTangentPass(ops, layout, store.data(), g_copy.data(), g_dot_copy.data(), hw.view,
                            grad_store.data());
    layout.FromStore<double>(grad_store.data(), emulated.data());
    EXPECT_TRUE(Close(emulated, grad_t));
    // The pad rows of the gradient store stay exactly zero (Adam then leaves them at zero).
    for (const auto& layer : layout.layers) {
      for (int o = 0; o < layer.out; ++o) {
        for (int i = layer.in + 1; i < layer.in_pad; ++i) {
          EXPECT_EQ(grad_store[layer.store_offset + int64_t{o} * layer.in_pad + i], 0.0);
        }
      }
    }
    // Inference through one hidden buffer.
    HostWorkspace inf(layout, n, true);
    std::copy(hw.a[0].begin(), hw.a[0].end(), inf.a[0].begin());
    InferPass(ops, layout, store.data(), inf.view);
    EXPECT_TRUE(Close(Eigen::Map<Matrix>(inf.output.data(), config.dim, n), ws.output));
  }
}

// ---- Training ------------------------------------------------------------------------------------

struct TrainCase {
  LossOptions loss;
  std::shared_ptr<const ScalarAffineSde> sde;
  Parameterization parameterization;
};

std::vector<TrainCase> TrainCases() {
  VeSde::Options reference;
  reference.kernel = VeKernel::kReference;
  std::vector<TrainCase> cases;
  LossOptions dsm;
  cases.push_back({dsm, std::make_shared<VpSde>(3), Parameterization::kNoise});
  LossOptions g2 = dsm;
  g2.weighting = Weighting::kLikelihood;
  cases.push_back({g2, std::make_shared<SubVpSde>(3), Parameterization::kScore});
  LossOptions importance = g2;
  importance.importance_sampling = true;
  cases.push_back({importance, std::make_shared<VeSde>(3), Parameterization::kDenoiser});
  LossOptions ssm;
  ssm.kind = LossKind::kSsm;
  cases.push_back({ssm, std::make_shared<VpSde>(3), Parameterization::kNoise});
  LossOptions ssm_vr;
  ssm_vr.kind = LossKind::kSsmVr;
  ssm_vr.projection = ProjectionKind::kGaussian;
  cases.push_back({ssm_vr, std::make_shared<VeSde>(3), Parameterization::kScore});
  LossOptions ddpm;
  ddpm.kind = LossKind::kDdpm;
  cases.push_back({ddpm, std::make_shared<VpSde>(3), Parameterization::kNoise});
  LossOptions ncsn;
  ncsn.kind = LossKind::kNcsn;
  cases.push_back({ncsn, std::make_shared<VeSde>(3, reference), Parameterization::kNoise});
  return cases;
}

TEST(CudaHostEmulation, TrainingStepsEqualScoreMatchingLossAndAdam) {
  for (const TrainCase& c : TrainCases()) {
    MlpConfig config;
    config.dim = 3;
    config.width = 12;
    config.depth = 3;
    config.embed_dim = 8;
    config.parameterization = c.parameterization;
    const MlpNetwork<float> seed_net(config, 6);
    MlpNetwork<double> net(config, seed_net.parameters().cast<double>(),
                           seed_net.fourier_weights().cast<double>());
    AdamOptions adam;
    adam.learning_rate = 1e-2;
    adam.warmup_steps = 2;
    adam.clip_norm = 0.5;
    adam.ema_decay = 0.9;
    adam.weight_decay = c.loss.kind == LossKind::kSsm ? 0.01 : 0.0;
    const int batch = 10;
    const uint64_t seed = 3;
    // CPU: the whole batch as one block (Trainer's arithmetic for one block).
    const ScoreMatchingLoss loss(c.sde, config, c.loss);
    AdamOptimizer<double> optimizer(net.parameters(), adam);
    const NoiseStream noise(seed, Stream::kTraining);
    MlpNetwork<double>::Workspace ws;
    // Emulated device.
    const NetworkLayout layout(config);
    std::vector<double> params = layout.ToStore<double>(net.parameters().data());
    std::vector<double> grad(layout.store_size), m(layout.store_size, 0.0),
        v(layout.store_size, 0.0), ema = params;
    const Eigen::VectorXd fourier = net.fourier_weights();
    HostWorkspace hw(layout, batch, false);
    Matrix x0(3, batch), x(3, batch), z(3, batch), v_noise(3, batch);
    std::vector<PerSample> draws(batch);
    std::vector<double> per_example(batch), history_loss(4), history_norm(4);
    Matrix g(3, batch), g_dot(3, batch);
    TrainCounters counters{0, 0, -1};
    UpdateScalars<double> scalars{};
    std::vector<double> alpha_bar;
    const TrainStepConfig tc =
        MakeTrainStepConfig(*c.sde, config, c.loss, adam, seed, batch, &alpha_bar);
    TrainStepBuffers<double> b;
    b.net = &layout;
    b.pass = hw.view;
    b.params = params.data();
    b.grad = grad.data();
    b.m = m.data();
    b.v = v.data();
    b.ema = ema.data();
    b.fourier = fourier.data();
    b.x0 = x0.data();
    b.x = x.data();
    b.z = z.data();
    b.v_noise = v_noise.data();
    b.draws = draws.data();
    b.per_example = per_example.data();
    b.g = g.data();
    b.g_dot = g_dot.data();
    b.history_loss = history_loss.data();
    b.history_norm = history_norm.data();
    b.capacity = 4;
    b.counters = &counters;
    b.scalars = &scalars;
    for (int k = 0; k < 3; ++k) {
      SampleToy2d(Toy2d::kTwoMoons, 9, int64_t{k} * batch, x0.topRows(2));
      x0.row(2).setConstant(0.5 * k - 0.3);
      Eigen::VectorXd cpu_grad = Eigen::VectorXd::Zero(net.num_parameters());
      const double total = loss.Block(net, x0, 0, batch, k, noise, &ws, cpu_grad.data());
      const double norm = optimizer.Step(net.mutable_parameters(), cpu_grad);
      TrainStep(HostOps<double>(), tc, b);
      const std::string what = std::string(ToString(c.loss.kind)) + " step " + std::to_string(k);
      EXPECT_NEAR(history_loss[k % 4], total / batch, kRelative * std::abs(total / batch)) << what;
      EXPECT_NEAR(history_norm[k % 4], norm, kRelative * norm) << what;
      Eigen::VectorXd emulated(net.num_parameters());
      layout.FromStore<double>(params.data(), emulated.data());
      EXPECT_TRUE(Close(emulated, net.parameters())) << what;
      layout.FromStore<double>(ema.data(), emulated.data());
      EXPECT_TRUE(Close(emulated, optimizer.average())) << what;
      layout.FromStore<double>(v.data(), emulated.data());
      EXPECT_TRUE(Close(emulated, optimizer.second_moment())) << what;
      EXPECT_EQ(counters.step, k + 1);
      EXPECT_EQ(counters.ema_updates, k + 1);
    }
    // A non-finite gradient is recorded and skips this update and the next.
    x0(1, 4) = std::numeric_limits<double>::infinity();
    const std::vector<double> before = params;
    TrainStep(HostOps<double>(), tc, b);
    TrainStep(HostOps<double>(), tc, b);
    EXPECT_EQ(counters.failed_step, 4);
    EXPECT_EQ(counters.step, 3);
    EXPECT_EQ(params, before);
  }
}

// ---- Sampling ------------------------------------------------------------------------------------

// The exact score of N(μ, Σ) under a scalar-affine SDE, with E‖s_t‖² in closed form.
class GaussianTestScore final : public ScoreModel {
 public:
  GaussianTestScore(std::shared_ptr<const ScalarAffineSde> sde, Vector mu, Matrix sigma)
      : sde_(std::move(sde)), mu_(std::move(mu)), sigma_(std::move(sigma)) {}
  int dim() const override { return static_cast<int>(mu_.size()); }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double alpha = sde_->MeanCoefficient(t[j]), std = sde_->MarginalStd(t[j]);
      const Matrix c = alpha * alpha * sigma_ + std * std * Matrix::Identity(dim(), dim());
      s.col(j) = -c.llt().solve(x.col(j) - alpha * mu_);
    }
  }
  std::optional<double> ExpectedSquaredNorm(double t) const override {
    const double alpha = sde_->MeanCoefficient(t), std = sde_->MarginalStd(t);
    const Matrix c = alpha * alpha * sigma_ + std * std * Matrix::Identity(dim(), dim());
    return c.llt().solve(Matrix::Identity(dim(), dim())).trace();
  }

 private:
  std::shared_ptr<const ScalarAffineSde> sde_;
  Vector mu_;
  Matrix sigma_;
};

Vector Mu() { return Vector::LinSpaced(3, -1.0, 1.5); }
Matrix Sigma() {
  Matrix s(3, 3);
  s << 1.0, 0.3, 0.0, 0.3, 0.6, -0.1, 0.0, -0.1, 0.9;
  return s;
}

// Runs a plan on the host for samples 0 … n − 1 and returns x (d × n).
struct HostSampler {
  std::shared_ptr<const ScalarAffineSde> sde;
  int d = 3;
  // Gaussian.
  Eigen::MatrixXd q;
  Eigen::VectorXd lambda, mean, prior_mean;
  Eigen::MatrixXd prior_factor;
  // Learned (double network).
  const MlpNetwork<double>* network = nullptr;
  std::unique_ptr<NetworkLayout> layout;
  std::vector<double> store;

  Matrix Run(const Plan& plan, int n, std::vector<double>* expected, int64_t first = 0) const {
    LaneView<double> lane;
    lane.n = n;
    lane.d = d;
    std::vector<std::vector<double>> buffers(kNumBuffers, std::vector<double>(d * n, 0.0));
    for (int b = 0; b < kNumBuffers; ++b) lane.buffers[b] = buffers[b].data();
    std::vector<double> scratch(std::max(d * n, 2 * n + 64));
    lane.scratch = scratch.data();
    std::vector<unsigned long long> failures(n);
    int any = 0;
    lane.sink = FailureSink{failures.data(), &any};
    lane.first_sample = &first;
    std::unique_ptr<HostWorkspace> ws;
    ScoreView<double> score;
    if (network != nullptr) {
      ws = std::make_unique<HostWorkspace>(*layout, n, true);
      lane.pass = ws->view;
      score.learned = true;
      score.net = layout.get();
      score.store = store.data();
    } else {
      score.q = q.data();
      score.lambda = lambda.data();
      score.mean = mean.data();
      score.prior_mean = prior_mean.data();
      score.prior_factor = prior_factor.data();
    }
    lane.table = plan.table.data();
    lane.expected = expected->data();
    ExecutePlan(HostOps<double>(), plan, score, lane);
    EXPECT_EQ(any, 0);
    return Eigen::Map<Matrix>(buffers[kX].data(), d, n);
  }
};

HostSampler GaussianHost(std::shared_ptr<const ScalarAffineSde> sde) {
  HostSampler h;
  h.sde = sde;
  const Eigen::SelfAdjointEigenSolver<Matrix> eigen(Sigma());
  h.q = eigen.eigenvectors();
  h.lambda = eigen.eigenvalues();
  h.mean = Mu();
  const double t = sde->t_final(), alpha = sde->MeanCoefficient(t), std = sde->MarginalStd(t);
  h.prior_mean = alpha * Mu();
  h.prior_factor = h.q * (alpha * alpha * h.lambda.array() + std * std).sqrt().matrix().asDiagonal();
  return h;
}

TEST(CudaHostEmulation, PcPlansEqualPcSamplerWithTheGaussianScore) {
  VeSde::Options ve;
  ve.sigma_max = 20.0;
  const std::vector<std::shared_ptr<const ScalarAffineSde>> sdes = {
      std::make_shared<VpSde>(3), std::make_shared<VeSde>(3, ve), std::make_shared<SubVpSde>(3)};
  struct Config {
    CudaPredictor predictor;
    CudaCorrector corrector;
    bool denoise;
  };
  const std::vector<Config> configs = {
      {CudaPredictor::kEulerMaruyama, CudaCorrector::kNone, false},
      {CudaPredictor::kReverseDiffusion, CudaCorrector::kLangevin, true},
      {CudaPredictor::kAncestral, CudaCorrector::kNone, false},
      {CudaPredictor::kEulerMaruyama, CudaCorrector::kAnnealedLangevin, false},
      {CudaPredictor::kNone, CudaCorrector::kLangevin, false}};
  const int n = 12;
  for (const auto& sde : sdes) {
    const HostSampler host = GaussianHost(sde);
    const SamplerPlanner planner(*sde, host.lambda);
    const GaussianTestScore cpu_score(sde, Mu(), Sigma());
    for (const Config& k : configs) {
      if (k.predictor == CudaPredictor::kAncestral && sde->family() == SdeFamily::kSubVp) continue;
      CudaSamplerOptions o;
      o.predictor = k.predictor;
      o.corrector = k.corrector;
      o.denoise = k.denoise;
      o.num_steps = 60;
      o.corrector_steps = 2;
      o.seed = 31;
      const SamplerPlans plans = planner.PlanPc(o);
      std::vector<double> expected = plans.expected;
      expected.resize(std::max<size_t>(expected.size(), 1));
      const Matrix emulated = host.Run(plans.main, n, &expected);
      const auto predictor = MakePredictor(ToString(k.predictor));
      const auto corrector = MakeCorrector(ToString(k.corrector));
      PcSampler::Options po;
      po.num_steps = o.num_steps;
      po.eps = o.eps;
      po.corrector_steps = o.corrector_steps;
      po.snr = o.snr;
      po.denoise = o.denoise;
      po.seed = o.seed;
      const PcSampler cpu(*sde, cpu_score, *predictor, *corrector, po);
      const Matrix reference = cpu.Sample(n).x;
      EXPECT_TRUE(Close(emulated, reference))
          << static_cast<int>(sde->family()) << " " << ToString(k.predictor) << "+" << ToString(k.corrector);
      // Chunking: samples 5 … 11 drawn alone equal columns 5 … 11.
      EXPECT_TRUE(Close(host.Run(plans.main, 7, &expected, 5), reference.rightCols(7)));
    }
  }
}

TEST(CudaHostEmulation, FlowPlansEqualProbabilityFlow) {
  const std::vector<std::shared_ptr<const ScalarAffineSde>> sdes = {
      std::make_shared<VpSde>(3), std::make_shared<VeSde>(3)};
  for (const auto& sde : sdes) {
    const HostSampler host = GaussianHost(sde);
    const SamplerPlanner planner(*sde, host.lambda);
    const GaussianTestScore cpu_score(sde, Mu(), Sigma());
    for (const auto& [method, ode] : std::vector<std::pair<CudaFlowMethod, OdeMethod>>{
             {CudaFlowMethod::kEuler, OdeMethod::kEuler},
             {CudaFlowMethod::kHeun, OdeMethod::kHeun},
             {CudaFlowMethod::kRk4, OdeMethod::kRk4}}) {
      CudaFlowOptions o;
      o.method = method;
      o.num_steps = 40;
      o.seed = 8;
      std::vector<double> expected(1);
      const Matrix emulated = host.Run(planner.PlanFlow(o).main, 10, &expected);
      Matrix prior(3, 10);
      sde->SamplePrior(NoiseStream(o.seed, Stream::kPrior), 0, prior);
      OdeOptions oo;
      oo.method = ode;
      oo.num_steps = o.num_steps;
      const ProbabilityFlow flow(*sde, cpu_score, oo);
      const OdeSolution solution = flow.Integrate(prior, sde->t_final(), o.eps);
      EXPECT_TRUE(Close(emulated, solution.y)) << ToString(method);
    }
  }
}

TEST(CudaHostEmulation, LearnedScorePlansEqualPcSamplerWithMlpScore) {
  MlpConfig config;
  config.dim = 3;
  config.width = 12;
  config.depth = 2;
  config.embed_dim = 8;
  const MlpNetwork<float> seed_net(config, 2);
  const auto net = std::make_shared<MlpNetwork<double>>(
      config, seed_net.parameters().cast<double>(), seed_net.fourier_weights().cast<double>());
  const auto sde = std::make_shared<VpSde>(3);
  HostSampler host;
  host.sde = sde;
  host.network = net.get();
  host.layout = std::make_unique<NetworkLayout>(config);
  host.store = host.layout->ToStore<double>(net->parameters().data());
  const SamplerPlanner planner(*sde, config, seed_net.fourier_weights(), false);
  CudaSamplerOptions o;
  o.predictor = CudaPredictor::kReverseDiffusion;
  o.corrector = CudaCorrector::kLangevin;
  o.num_steps = 25;
  o.pilot_size = 30;
  o.seed = 12;
  const SamplerPlans plans = planner.PlanPc(o);
  ASSERT_TRUE(plans.pilot.has_value());
  std::vector<double> expected(plans.levels);
  host.Run(*plans.pilot, plans.pilot_size, &expected);
  const Matrix emulated = host.Run(plans.main, 16, &expected);
  const MlpScore cpu_score(net, sde);
  const auto predictor = MakePredictor("reverse-diffusion");
  const auto corrector = MakeCorrector("langevin");
  PcSampler::Options po;
  po.num_steps = o.num_steps;
  po.pilot_size = o.pilot_size;
  po.seed = o.seed;
  const PcSampler cpu(*sde, cpu_score, *predictor, *corrector, po);
  ASSERT_EQ(cpu.expected_squared_norms().size(), expected.size());
  EXPECT_TRUE(Close(Eigen::Map<Vector>(expected.data(), expected.size()),
                    Eigen::Map<const Vector>(cpu.expected_squared_norms().data(),
                                             cpu.expected_squared_norms().size())));
  EXPECT_TRUE(Close(emulated, cpu.Sample(16).x));
  CudaSamplerOptions exact = o;
  exact.prior = CudaPrior::kExact;
  EXPECT_THAT([&] { planner.PlanPc(exact); }, ThrowsMessage<InvalidArgument>(HasSubstr("prior")));
}

}  // namespace
}  // namespace scoresde
