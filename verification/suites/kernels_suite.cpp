// Verification suite: forward-SDE Monte Carlo against the closed-form transition kernels
// (design.md, section 5: "Transition kernels: forward-SDE Monte Carlo vs the closed-form mean and
// covariance").
//
// For each SDE the Euler–Maruyama chain x_{k+1} = x_k + h f(x_k, t_k) + G(x_k, t_k) ΔW_k is checked
// in two independent parts, both with tolerances derived rather than tuned:
//   (a) Simulator and noise: the Monte-Carlo mean and covariance of the simulated chain match the
//       chain's exact moments (a deterministic recursion, below) within 5 standard errors.
//   (b) Coefficients and closed forms: the chain's exact moments converge to the closed-form law at
//       t = T (TransitionOf / GaussianMixtureScore::Marginal / LogNormalReference) at first order
//       in h: the least-squares slope of log error against log h over N = 64, 128, …, 4096 lies in
//       [0.9, 1.1].
//   (c) Sharper closed-form check: the Richardson combination 2 m_N − m_{N/2} (moments of the
//       chains with N and N/2 steps) cancels the h·e₁ term, so it converges at order 2: slope in
//       [1.9, 2.1] over N = 128, …, 4096. A closed form that is off by δ shows as an error floor at
//       δ; (b) resolves δ down to about the N = 4096 first-order error (1e-4 to 2e-2 here), (c)
//       down to its second-order error (4e-8 to 7e-6).
// (b) and (c) show that f, G and the closed forms describe the same process; (a) shows that the
// simulation really samples that chain. The same window half-width 0.1 serves (b) and (c): on these
// grids (h ≤ 1/64, |F| h ≤ 0.16) the next term of the error expansion moves the fitted slope by
// less than 0.05.
//
// Why first order exactly. For a linear SDE dx = (F x + c) dt + G dw the chain's moments obey
//   m_{k+1} = (I + h F_k) m_k + h c,
//   Σ_{k+1} = (I + h F_k) Σ_k (I + h F_k)ᵀ + h G_k G_kᵀ
//           = Σ_k + h (F_k Σ_k + Σ_k F_kᵀ + G_k G_kᵀ) + h² F_k Σ_k F_kᵀ,
// i.e. the explicit Euler method for the moment ODEs dm/dt = F m + c, dΣ/dt = FΣ + ΣFᵀ + GGᵀ plus
// an O(h²) local term. Euler's global error is e(h) = h·e₁(T) + O(h²), with e₁ solving the
// variational equation forced by ½ y'' (Hairer, Nørsett & Wanner, "Solving ODEs I", section II.8),
// which is non-zero for these problems; so log e = log h + log |e₁| + O(h) and the slope tends
// to 1. For GBM, E[x_{k+1}] = (1 + μh) E[x_k] and E[x_{k+1}²] = ((1 + μh)² + σ²h) E[x_k²] are Euler
// steps of dm/dt = μ m and dq/dt = (2μ + σ²) q (the latter plus μ²h²), again first order.
//
// Monte-Carlo confidence: every comparison is |estimate − exact| ≤ 5 SE; with a fixed seed the
// result is deterministic, and for a correct implementation a 5σ two-sided excursion has
// probability 5.7e-7 per comparison (about 2e-5 for the ~30 comparisons here, by the union bound).
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

constexpr double kStandardErrors = 5.0;  // 5σ, fixed seed
constexpr int kMonteCarloSamples = 100000;
constexpr int kMonteCarloSteps = 100;
constexpr int kCoarsestSteps = 64;
constexpr int kLevels = 7;  // N = 64, 128, …, 4096

// Test-local Euler–Maruyama forward integration, used until the solvers module provides forward
// integration; it will then be replaced by that module's stepper. Noise: sample j's increment at
// step k is sqrt(h) z with z from NoiseStream(seed, kPredictor).FillNormal(k, 0, j, ·).
void SimulateEulerMaruyama(const Sde& sde, double t_end, int num_steps, uint64_t seed, BatchRef x) {
  const double h = t_end / num_steps;
  const NoiseStream noise(seed, Stream::kPredictor);
  Batch f(x.rows(), x.cols());
  Batch z(sde.noise_dim(), x.cols());
  Batch gz(x.rows(), x.cols());
  for (int k = 0; k < num_steps; ++k) {
    const double t = k * h;
    sde.Drift(x, t, f);
    noise.FillNormal(k, 0, 0, z);
    sde.DiffusionTimes(x, t, z, gz);
    x += h * f + std::sqrt(h) * gz;
  }
}

// f(x, t) = F(t) x + c(t) and G Gᵀ(t) of an SDE that is linear with state-independent noise, read
// through the public Sde interface: c = f(0), F e_i = f(e_i) − f(0), GGᵀ = GGᵀ(0) I.
struct LinearCoefficients {
  Matrix F;
  Vector c;
  Matrix ggt;
};

LinearCoefficients Probe(const Sde& sde, double t) {
  const int d = sde.dim();
  Batch x = Batch::Zero(d, d + 1);
  x.rightCols(d).setIdentity();
  Batch f(d, d + 1);
  sde.Drift(x, t, f);
  LinearCoefficients out;
  out.c = f.col(0);
  out.F = f.rightCols(d).colwise() - out.c;
  out.ggt.resize(d, d);
  sde.DiffusionSquaredTimes(Batch::Zero(d, d), t, Matrix::Identity(d, d), out.ggt);
  return out;
}

struct Moments {
  Vector mean;
  Matrix cov;
};

// The exact mean and covariance of the Euler–Maruyama chain after num_steps steps.
Moments ChainMoments(const Sde& sde, Moments m, double t_end, int num_steps) {
  const double h = t_end / num_steps;
  const int d = sde.dim();
  for (int k = 0; k < num_steps; ++k) {
    const LinearCoefficients lc = Probe(sde, k * h);
    const Matrix step = Matrix::Identity(d, d) + h * lc.F;
    m.mean = step * m.mean + h * lc.c;
    m.cov = step * m.cov * step.transpose() + h * lc.ggt;
  }
  return m;
}

// Least-squares slope of log(error) against log(h).
double FittedOrder(const std::vector<double>& h, const std::vector<double>& error) {
  const int n = static_cast<int>(h.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; ++i) {
    const double x = std::log(h[i]);
    const double y = std::log(error[i]);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

void ExpectWithinStandardErrors(const MomentEstimate& mc, const Moments& exact,
                                const std::string& label) {
  const int d = static_cast<int>(exact.mean.size());
  for (int i = 0; i < d; ++i) {
    EXPECT_NEAR(mc.mean(i), exact.mean(i), kStandardErrors * mc.mean_stderr(i))
        << label << ": mean[" << i << "]";
    for (int j = 0; j < d; ++j) {
      EXPECT_NEAR(mc.cov(i, j), exact.cov(i, j), kStandardErrors * mc.cov_stderr(i, j))
          << label << ": cov(" << i << ", " << j << ")";
    }
  }
}

// ---- Linear SDEs: VE (both kernels), VP, sub-VP, and a LinearSde with time-dependent G -------

struct LinearCase {
  std::unique_ptr<Sde> sde;
  std::unique_ptr<GaussianMixtureScore> reference;  // p_t for data p_0 = N(μ0, Σ0)
  Moments start;                                    // the law the forward SDE is started from
};

Moments Data() {
  Vector mu(2);
  mu << 1.0, -0.5;
  Matrix cov(2, 2);
  cov << 1.0, 0.3, 0.3, 0.5;
  return {mu, cov};
}

// G(t) is 2 × 3 and depends on t in every row.
Matrix LinearDiffusion(double t) {
  Matrix g(2, 3);
  g << 1.0 + 0.5 * std::sin(2.0 * t), 0.3 * t, 0.2, 0.1, 0.8 + 0.2 * std::cos(t), 0.4 * t * t;
  return g;
}

LinearCase MakeCase(const std::string& name) {
  LinearCase c;
  const Moments data = Data();
  c.start = data;
  if (name == "ve_exact" || name == "ve_reference") {
    // σmin = 0.5, σmax = 5 so that the two kernels differ (by σmin² = 0.25) far more than the
    // chain's error at N = 4096 (≈ h/2 · (g²(T) − g²(0)) ≈ 0.014): a wrong kernel would flatten
    // the convergence slope in part (b).
    VeSde::Options options;
    options.sigma_min = 0.5;
    options.sigma_max = 5.0;
    options.kernel = name == "ve_exact" ? VeKernel::kExact : VeKernel::kReference;
    auto ve = std::make_unique<VeSde>(2, options);
    c.reference =
        std::make_unique<GaussianMixtureScore>(GaussianMixture::Gaussian(data.mean, data.cov), *ve);
    // kReference describes data pre-perturbed by σmin: the SDE starts from p_0 ⊛ N(0, σmin² I).
    if (options.kernel == VeKernel::kReference) {
      c.start.cov += options.sigma_min * options.sigma_min * Matrix::Identity(2, 2);
    }
    c.sde = std::move(ve);
  } else if (name == "vp" || name == "subvp") {
    std::unique_ptr<ScalarAffineSde> sde;
    if (name == "vp") {
      sde = std::make_unique<VpSde>(2);
    } else {
      sde = std::make_unique<SubVpSde>(2);
    }
    c.reference = std::make_unique<GaussianMixtureScore>(
        GaussianMixture::Gaussian(data.mean, data.cov), *sde);
    c.sde = std::move(sde);
  } else {
    Matrix f(2, 2);
    f << -1.0, 0.5, 0.0, -2.0;
    Vector offset(2);
    offset << 0.3, -0.1;
    auto linear = std::make_unique<LinearSde>(LinearSde::Options{f, offset, LinearDiffusion, 1.0});
    c.reference = std::make_unique<GaussianMixtureScore>(
        GaussianMixture::Gaussian(data.mean, data.cov), *linear);
    c.sde = std::move(linear);
  }
  return c;
}

class LinearKernel : public ::testing::TestWithParam<std::string> {};

// (a) Monte Carlo of the simulated chain vs the chain's exact moments.
TEST_P(LinearKernel, MonteCarloMatchesChainMoments) {
  const LinearCase c = MakeCase(GetParam());
  const double t_end = c.sde->t_final();
  Batch x(2, kMonteCarloSamples);
  GaussianMixture::Gaussian(c.start.mean, c.start.cov)
      .Sample(NoiseStream(2024, Stream::kData), 0, x);
  SimulateEulerMaruyama(*c.sde, t_end, kMonteCarloSteps, 7, x);
  const MomentEstimate mc = EstimateMoments(x);
  const Moments exact = ChainMoments(*c.sde, c.start, t_end, kMonteCarloSteps);
  ExpectWithinStandardErrors(mc, exact, GetParam());
}

// (b) The chain's exact moments converge to the closed form at order 1.
TEST_P(LinearKernel, ChainConvergesToClosedFormAtFirstOrder) {
  const LinearCase c = MakeCase(GetParam());
  const double t_end = c.sde->t_final();
  const GaussianMixture closed = c.reference->Marginal(t_end);
  std::vector<double> h, error;
  for (int level = 0; level < kLevels; ++level) {
    const int n = kCoarsestSteps << level;
    const Moments chain = ChainMoments(*c.sde, c.start, t_end, n);
    h.push_back(t_end / n);
    error.push_back((chain.mean - closed.mean(0)).norm() + (chain.cov - closed.cov(0)).norm());
    std::printf("  %-12s N = %4d  error = %.6e\n", GetParam().c_str(), n, error.back());
  }
  const double order = FittedOrder(h, error);
  std::printf("  %-12s fitted weak order %.4f\n", GetParam().c_str(), order);
  EXPECT_GE(order, 0.9);
  EXPECT_LE(order, 1.1);
}

// (c) Richardson-extrapolated moments converge to the closed form at order 2.
TEST_P(LinearKernel, RichardsonExtrapolationConvergesAtSecondOrder) {
  const LinearCase c = MakeCase(GetParam());
  const double t_end = c.sde->t_final();
  const GaussianMixture closed = c.reference->Marginal(t_end);
  std::vector<double> h, error;
  Moments coarse = ChainMoments(*c.sde, c.start, t_end, kCoarsestSteps);
  for (int level = 1; level < kLevels; ++level) {
    const int n = kCoarsestSteps << level;
    const Moments fine = ChainMoments(*c.sde, c.start, t_end, n);
    const Vector mean = 2.0 * fine.mean - coarse.mean;
    const Matrix cov = 2.0 * fine.cov - coarse.cov;
    h.push_back(t_end / n);
    error.push_back((mean - closed.mean(0)).norm() + (cov - closed.cov(0)).norm());
    std::printf("  %-12s N = %4d  extrapolated error = %.6e\n", GetParam().c_str(), n,
                error.back());
    coarse = fine;
  }
  const double order = FittedOrder(h, error);
  std::printf("  %-12s fitted order after extrapolation %.4f\n", GetParam().c_str(), order);
  EXPECT_GE(order, 1.9);
  EXPECT_LE(order, 2.1);
}

INSTANTIATE_TEST_SUITE_P(Sdes, LinearKernel,
                         ::testing::Values("ve_exact", "ve_reference", "vp", "subvp", "linear"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// ---- Geometric Brownian motion ------------------------------------------------------------

struct GbmCase {
  GbmSde sde;
  Vector m0;
  Vector s0;
};

GbmCase MakeGbm() {
  GbmSde::Options options;
  options.mu = Vector(2);
  options.mu << 0.5, -0.3;
  options.sigma = Vector(2);
  options.sigma << 0.4, 0.25;
  options.t_final = 1.0;
  Vector m0(2), s0(2);
  m0 << 0.0, 0.5;
  s0 << 0.3, 0.2;
  return {GbmSde(options), m0, s0};
}

// Per coordinate (independent): E x_N = (1 + μh)^N E x_0, E x_N² = ((1 + μh)² + σ²h)^N E x_0²,
// with E x_0 = e^{m0 + s0²/2}, E x_0² = e^{2 m0 + 2 s0²}. The drift μ and volatility σ are read
// through the Sde interface at x = 1.
Moments GbmChainMoments(const GbmCase& c, int num_steps) {
  const double h = c.sde.t_final() / num_steps;
  const Batch one = Batch::Ones(2, 1);
  Vector first = (c.m0.array() + 0.5 * c.s0.array().square()).exp();
  Vector second = (2.0 * c.m0.array() + 2.0 * c.s0.array().square()).exp();
  for (int k = 0; k < num_steps; ++k) {
    Batch mu(2, 1), sigma(2, 1);
    c.sde.Drift(one, k * h, mu);
    c.sde.DiagonalDiffusion(one, k * h, sigma);
    first = first.array() * (1.0 + mu.array() * h);
    second = second.array() * ((1.0 + mu.array() * h).square() + sigma.array().square() * h);
  }
  Moments m;
  m.mean = first;
  m.cov = (second.array() - first.array().square()).matrix().asDiagonal();
  return m;
}

// (a) for GBM.
TEST(GbmKernel, MonteCarloMatchesChainMoments) {
  const GbmCase c = MakeGbm();
  const LogNormalReference reference(c.m0, c.s0, c.sde);
  Batch x(2, kMonteCarloSamples);
  reference.SampleMarginal(0.0, NoiseStream(2025, Stream::kData), 0, x);
  SimulateEulerMaruyama(c.sde, c.sde.t_final(), kMonteCarloSteps, 8, x);
  const MomentEstimate mc = EstimateMoments(x);
  ExpectWithinStandardErrors(mc, GbmChainMoments(c, kMonteCarloSteps), "gbm");
}

// (b) for GBM: mean and variance against the log-normal law at T.
TEST(GbmKernel, ChainConvergesToLogNormalAtFirstOrder) {
  const GbmCase c = MakeGbm();
  const LogNormalReference reference(c.m0, c.s0, c.sde);
  const double t_end = c.sde.t_final();
  const Vector mean = reference.Mean(t_end);
  const Vector variance = reference.Variance(t_end);
  std::vector<double> h, error;
  for (int level = 0; level < kLevels; ++level) {
    const int n = kCoarsestSteps << level;
    const Moments chain = GbmChainMoments(c, n);
    h.push_back(t_end / n);
    error.push_back((chain.mean - mean).norm() + (chain.cov.diagonal() - variance).norm());
    std::printf("  gbm          N = %4d  error = %.6e\n", n, error.back());
  }
  const double order = FittedOrder(h, error);
  std::printf("  gbm          fitted weak order %.4f\n", order);
  EXPECT_GE(order, 0.9);
  EXPECT_LE(order, 1.1);
}

// (c) for GBM.
TEST(GbmKernel, RichardsonExtrapolationConvergesAtSecondOrder) {
  const GbmCase c = MakeGbm();
  const LogNormalReference reference(c.m0, c.s0, c.sde);
  const double t_end = c.sde.t_final();
  const Vector mean = reference.Mean(t_end);
  const Vector variance = reference.Variance(t_end);
  std::vector<double> h, error;
  Moments coarse = GbmChainMoments(c, kCoarsestSteps);
  for (int level = 1; level < kLevels; ++level) {
    const int n = kCoarsestSteps << level;
    const Moments fine = GbmChainMoments(c, n);
    const Vector m = 2.0 * fine.mean - coarse.mean;
    const Vector v = 2.0 * fine.cov.diagonal() - coarse.cov.diagonal();
    h.push_back(t_end / n);
    error.push_back((m - mean).norm() + (v - variance).norm());
    std::printf("  gbm          N = %4d  extrapolated error = %.6e\n", n, error.back());
    coarse = fine;
  }
  const double order = FittedOrder(h, error);
  std::printf("  gbm          fitted order after extrapolation %.4f\n", order);
  EXPECT_GE(order, 1.9);
  EXPECT_LE(order, 2.1);
}

}  // namespace
}  // namespace scoresde
