// Device sampling with the exact score of a Gaussian p_0 = N(μ, Σ) recovers p_0 (docs/gpu.md).
//
// With s_t(x) = −P_t (x − α_t μ), P_t = (α_t² Σ + σ_t² I)⁻¹, every sampler step is an affine map
// plus Gaussian noise, x' = A x + c + r z, so the law of the discretized chain is Gaussian and
// follows exactly from N(0, σ_T² I): m' = A m + c, C' = A C Aᵀ + r² I (the probability flow's
// Runge–Kutta maps are affine too). The suite checks, for each sampler:
//   (a) the device samples against the chain's exact law: every mean and covariance entry within
//       5 standard errors (EstimateMoments; with d = 3, 9 statistics per sampler, a false alarm
//       has probability < 1e-5 per sampler) — this catches any wrong coefficient or noise;
//   (b) against the target p_ε = N(α_ε μ, α_ε² Σ + σ_ε² I) (p_0 itself after Tweedie's denoising
//       step), as the CPU suites require: every moment within 5 standard errors. That this is a
//       fair demand is checked without a device: the chain's exact discretization bias is below
//       one standard error at the chosen step counts (ChainBiasIsBelowTheMonteCarloResolution).
#include <cmath>
#include <cstdio>
#include <vector>
#include <memory>
#include <string>

#include <Eigen/Cholesky>
#include <gtest/gtest.h>

#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

#define SKIP_WITHOUT_DEVICE()                                                         \
  do {                                                                                \
    const CudaDeviceInfo info = QueryCudaDevice();                                    \
    if (!info.available) GTEST_SKIP() << "needs a CUDA device: " << info.reason;       \
  } while (false)

constexpr int64_t kSamples = int64_t{1} << 17;

struct Law {
  Vector mean;
  Matrix cov;
};

// The exact law of each sampler's chain for the Gaussian score (the update forms documented in
// predictors.hpp / correctors.hpp / pc_sampler.hpp / probability_flow.hpp).
class ChainLaw {
 public:
  ChainLaw(const ScalarAffineSde& sde, Vector mu, Matrix sigma)
      : sde_(sde), mu_(std::move(mu)), sigma_(std::move(sigma)), d_(static_cast<int>(mu_.size())) {}

  // s(x) = S x + s0 at time t.
  void Score(double t, Matrix* s, Vector* s0) const {
    const double alpha = sde_.MeanCoefficient(t);
    const double std = sde_.MarginalStd(t);
    const Matrix c = alpha * alpha * sigma_ + std * std * Matrix::Identity(d_, d_);
    const Matrix p = c.llt().solve(Matrix::Identity(d_, d_));
    *s = -p;
    *s0 = p * (alpha * mu_);
  }
  double ExpectedSquaredNorm(double t) const {
    Matrix s;
    Vector s0;
    Score(t, &s, &s0);
    return -s.trace();
  }
  Law Marginal(double t) const {
    const double alpha = sde_.MeanCoefficient(t);
    const double std = sde_.MarginalStd(t);
    return {alpha * mu_, alpha * alpha * sigma_ + std * std * Matrix::Identity(d_, d_)};
  }
  Law Prior(CudaPrior prior) const {
    if (prior == CudaPrior::kExact) return Marginal(sde_.t_final());
    const double p = sde_.PriorStd();
    return {Vector::Zero(d_), p * p * Matrix::Identity(d_, d_)};
  }
  static void Apply(const Matrix& a, const Vector& c, double noise_var, Law* law) {
    law->mean = a * law->mean + c;
    law->cov = a * law->cov * a.transpose() +
               noise_var * Matrix::Identity(law->mean.size(), law->mean.size());
  }

  double LangevinAlpha(double t, double h) const {
    if (sde_.family() == SdeFamily::kVp) return 1.0 - static_cast<const VpSde&>(sde_).Beta(t) * h;
    if (sde_.family() == SdeFamily::kSubVp) {
      return 1.0 - static_cast<const SubVpSde&>(sde_).Beta(t) * h;
    }
    return 1.0;
  }

  Law Pc(const CudaSamplerOptions& o) const {
    const Matrix eye = Matrix::Identity(d_, d_);
    const double t_final = sde_.t_final();
    const double h = (t_final - o.eps) / o.num_steps;
    const auto time = [&](int i) { return i >= o.num_steps ? o.eps : t_final - i * h; };
    Law law = Prior(o.prior);
    Matrix s;
    Vector s0;
    for (int i = 0; i < o.num_steps; ++i) {
      const double t = time(i), t_next = time(i + 1), dt = t_next - t;
      Score(t, &s, &s0);
      switch (o.predictor) {
        case CudaPredictor::kEulerMaruyama: {
          const double f = sde_.DriftCoefficient(t), g = sde_.ScalarDiffusion(t);
          Apply(eye + dt * f * eye - dt * g * g * s, -dt * g * g * s0, g * g * h, &law);
          break;
        }
        case CudaPredictor::kReverseDiffusion: {
          const DiscreteCoefficients c = sde_.Discretize(t, h);
          const double q = c.diffusion * c.diffusion;
          Apply((1.0 - c.drift) * eye + q * s, q * s0, q, &law);
          break;
        }
        case CudaPredictor::kAncestral:
          if (sde_.family() == SdeFamily::kVe) {
            const double sig = sde_.MarginalStd(t), prev = sde_.MarginalStd(t_next);
            const double jump = sig * sig - prev * prev;
            Apply(eye + jump * s, jump * s0, prev * prev * jump / (sig * sig), &law);
          } else {
            const DiscreteCoefficients c = sde_.Discretize(t, h);
            const double beta = c.diffusion * c.diffusion, root = std::sqrt(1.0 - beta);
            Apply((eye + beta * s) / root, beta * s0 / root, beta, &law);
          }
          break;
        case CudaPredictor::kNone:
          break;
      }
      if (o.corrector == CudaCorrector::kNone) continue;
      Score(t_next, &s, &s0);
      const double alpha = LangevinAlpha(t_next, h);
      double eps;
      if (o.corrector == CudaCorrector::kLangevin) {
        eps = 2.0 * alpha * o.snr * o.snr * d_ / ExpectedSquaredNorm(t_next);
      } else {
        const double sig = sde_.MarginalStd(t_next);
        eps = 2.0 * alpha * (o.snr * sig) * (o.snr * sig);
      }
      for (int j = 0; j < o.corrector_steps; ++j) Apply(eye + eps * s, eps * s0, 2.0 * eps, &law);
    }
    if (o.denoise) {
      Score(o.eps, &s, &s0);
      const double sig = sde_.MarginalStd(o.eps), alpha = sde_.MeanCoefficient(o.eps);
      Apply((eye + sig * sig * s) / alpha, sig * sig * s0 / alpha, 0.0, &law);
    }
    return law;
  }

  Law Flow(const CudaFlowOptions& o) const {
    const Matrix eye = Matrix::Identity(d_, d_);
    const double t_final = sde_.t_final();
    const double dt = (o.eps - t_final) / o.num_steps;
    Law law = Prior(o.prior);
    // v(x, t) = f x − ½ g² s = B x + b.
    const auto field = [&](double t, Matrix* b_mat, Vector* b_vec) {
      Matrix s;
      Vector s0;
      Score(t, &s, &s0);
      const double f = sde_.DriftCoefficient(t), g = sde_.ScalarDiffusion(t);
      *b_mat = f * eye - 0.5 * g * g * s;
      *b_vec = -0.5 * g * g * s0;
    };
    for (int i = 0; i < o.num_steps; ++i) {
      const double t = i >= o.num_steps ? o.eps : t_final + i * dt;
      const double t_next = i + 1 >= o.num_steps ? o.eps : t_final + (i + 1) * dt;
      const double h = t_next - t;
      Matrix b1, b2, b3, b4;
      Vector v1, v2, v3, v4;
      Matrix a;
      Vector c;
      if (o.method == CudaFlowMethod::kEuler) {
        field(t, &b1, &v1);
        a = eye + h * b1;
        c = h * v1;
      } else if (o.method == CudaFlowMethod::kHeun) {
        field(t, &b1, &v1);
        field(t_next, &b2, &v2);
        const Matrix k2 = b2 * (eye + h * b1);
        const Vector k2v = b2 * (h * v1) + v2;
        a = eye + 0.5 * h * (b1 + k2);
        c = 0.5 * h * (v1 + k2v);
      } else {
        field(t, &b1, &v1);
        field(t + 0.5 * h, &b2, &v2);
        b3 = b2;
        v3 = v2;
        field(t_next, &b4, &v4);
        const Matrix k1 = b1;
        const Vector k1v = v1;
        const Matrix k2 = b2 * (eye + 0.5 * h * k1);
        const Vector k2v = b2 * (0.5 * h * k1v) + v2;
        const Matrix k3 = b3 * (eye + 0.5 * h * k2);
        const Vector k3v = b3 * (0.5 * h * k2v) + v3;
        const Matrix k4 = b4 * (eye + h * k3);
        const Vector k4v = b4 * (h * k3v) + v4;
        a = eye + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        c = h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
      }
      Apply(a, c, 0.0, &law);
    }
    return law;
  }

 private:
  const ScalarAffineSde& sde_;
  Vector mu_;
  Matrix sigma_;
  int d_;
};

Vector Mean() {
  Vector mu(3);
  mu << 1.0, -0.5, 2.0;
  return mu;
}

Matrix Covariance() {
  Matrix c(3, 3);
  c << 1.0, 0.4, -0.2,  //
      0.4, 0.5, 0.1,    //
      -0.2, 0.1, 0.8;
  return c;
}

// Standard errors of the sample mean and covariance of n draws from N(m, C) (Gaussian fourth
// moments: Var ĉ_ij = (C_ii C_jj + C_ij²)/n).
void ExactStandardErrors(const Law& law, int64_t n, Vector* mean_se, Matrix* cov_se) {
  const int d = static_cast<int>(law.mean.size());
  *mean_se = (law.cov.diagonal() / static_cast<double>(n)).cwiseSqrt();
  cov_se->resize(d, d);
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j) {
      (*cov_se)(i, j) = std::sqrt((law.cov(i, i) * law.cov(j, j) + law.cov(i, j) * law.cov(i, j)) /
                                  static_cast<double>(n));
    }
  }
}

// The largest |a − b| / se over the mean and the lower triangle of the covariance.
double WorstZ(const Vector& mean_a, const Matrix& cov_a, const Vector& mean_b,
              const Matrix& cov_b, const Vector& mean_se, const Matrix& cov_se) {
  double worst = 0.0;
  for (int i = 0; i < mean_a.size(); ++i) {
    worst = std::max(worst, std::abs(mean_a[i] - mean_b[i]) / mean_se[i]);
    for (int j = 0; j <= i; ++j) {
      worst = std::max(worst, std::abs(cov_a(i, j) - cov_b(i, j)) / cov_se(i, j));
    }
  }
  return worst;
}

// Checks (a) and, when check_target, (b) of the header on device samples x.
void Check(const std::string& name, const Matrix& x, const Law& chain, const Law& target,
           bool check_target) {
  const MomentEstimate m = EstimateMoments(x);
  const double z_chain =
      WorstZ(m.mean, m.cov, chain.mean, chain.cov, m.mean_stderr, m.cov_stderr);
  const double z_target =
      WorstZ(m.mean, m.cov, target.mean, target.cov, m.mean_stderr, m.cov_stderr);
  std::printf("[ figures ] %-56s max |z| vs chain law %.2f, vs target %.2f%s\n", name.c_str(),
              z_chain, z_target, check_target ? "" : " (not checked)");
  EXPECT_LE(z_chain, 5.0) << name;
  if (check_target) {
    EXPECT_LE(z_target, 5.0) << name;
  }
}

struct SdeCase {
  std::string name;
  std::shared_ptr<const ScalarAffineSde> sde;
};

std::vector<SdeCase> Sdes() {
  VeSde::Options ve;
  ve.sigma_max = 20.0;
  return {{"vp", std::make_shared<VpSde>(3)},
          {"ve", std::make_shared<VeSde>(3, ve)},
          {"subvp", std::make_shared<SubVpSde>(3)}};
}

struct Case {
  std::string name;
  std::shared_ptr<const ScalarAffineSde> sde;
  bool flow = false;
  bool check_target = true;  // (b) applies (the chain's bias is below one standard error)
  CudaSamplerOptions pc;
  CudaFlowOptions ode;
};

// Every sampler on every family (ancestral: VE and VP only), started from the exact p_T so that the
// prior's mismatch does not enter (b). Step counts make the exact discretization bias of each
// chain smaller than one standard error (ChainBiasIsBelowTheMonteCarloResolution); the paper's
// Langevin setting (snr 0.16) has a step-size bias of its own that more levels do not remove
// (unadjusted Langevin is biased by O(ε) at every level), so it is checked against its chain law
// only, and (b) uses snr 0.05.
std::vector<Case> Cases() {
  struct Pc {
    CudaPredictor predictor;
    CudaCorrector corrector;
    int steps;
    double snr;
    bool denoise;
    bool check_target;
  };
  const std::vector<Pc> pcs = {
      {CudaPredictor::kEulerMaruyama, CudaCorrector::kNone, 1000, 0.16, false, true},
      {CudaPredictor::kReverseDiffusion, CudaCorrector::kNone, 4000, 0.16, false, true},
      {CudaPredictor::kAncestral, CudaCorrector::kNone, 4000, 0.16, false, true},
      {CudaPredictor::kReverseDiffusion, CudaCorrector::kLangevin, 500, 0.16, false, false},
      {CudaPredictor::kReverseDiffusion, CudaCorrector::kLangevin, 1000, 0.05, true, true},
      {CudaPredictor::kEulerMaruyama, CudaCorrector::kAnnealedLangevin, 1000, 0.05, false, true},
      {CudaPredictor::kNone, CudaCorrector::kLangevin, 1000, 0.05, false, false},
  };
  std::vector<Case> cases;
  for (const SdeCase& sde : Sdes()) {
    for (const Pc& p : pcs) {
      if (p.predictor == CudaPredictor::kAncestral && sde.sde->family() == SdeFamily::kSubVp) {
        continue;
      }
      Case c;
      c.sde = sde.sde;
      c.check_target = p.check_target;
      c.pc.predictor = p.predictor;
      c.pc.corrector = p.corrector;
      c.pc.num_steps = p.steps;
      c.pc.snr = p.snr;
      c.pc.denoise = p.denoise;
      c.pc.seed = 17;
      c.pc.chunk_size = 1 << 16;
      c.pc.prior = CudaPrior::kExact;
      char snr[32];
      std::snprintf(snr, sizeof(snr), " snr=%.2f", p.snr);
      c.name = sde.name + " " + std::string(ToString(p.predictor)) + "+" +
               std::string(ToString(p.corrector)) + (p.denoise ? "+denoise" : "") +
               " N=" + std::to_string(p.steps) +
               (p.corrector != CudaCorrector::kNone ? snr : "");
      cases.push_back(c);
    }
    for (CudaFlowMethod method :
         {CudaFlowMethod::kEuler, CudaFlowMethod::kHeun, CudaFlowMethod::kRk4}) {
      Case c;
      c.sde = sde.sde;
      c.flow = true;
      c.ode.method = method;
      c.ode.num_steps = method == CudaFlowMethod::kEuler ? 10000 : 200;
      c.ode.seed = 23;
      c.ode.chunk_size = 1 << 16;
      c.ode.prior = CudaPrior::kExact;
      c.name = sde.name + " flow " + std::string(ToString(method)) + " N=" +
               std::to_string(c.ode.num_steps);
      cases.push_back(c);
    }
    // The standard prior N(0, PriorStd² I): against its chain law only (the prior's mismatch with
    // p_T is a property of the problem, not of the sampler).
    Case standard;
    standard.sde = sde.sde;
    standard.check_target = false;
    standard.pc.num_steps = 1000;
    standard.pc.seed = 29;
    standard.pc.chunk_size = 1 << 16;
    standard.name = sde.name + " euler-maruyama, standard prior N=1000";
    cases.push_back(standard);
  }
  return cases;
}

Law ChainOf(const Case& c) {
  const ChainLaw law(*c.sde, Mean(), Covariance());
  return c.flow ? law.Flow(c.ode) : law.Pc(c.pc);
}

// Tweedie's step targets p_0, the others p_ε.
Law TargetOf(const Case& c) {
  if (!c.flow && c.pc.denoise) return {Mean(), Covariance()};
  const ChainLaw law(*c.sde, Mean(), Covariance());
  return law.Marginal(c.flow ? c.ode.eps : c.pc.eps);
}

TEST(CudaSampling, ChainBiasIsBelowTheMonteCarloResolution) {
  // Host only: where (b) is checked, the exact law of the chain is within one standard error of
  // its target, so demanding 5 standard errors of the device samples is fair and still sensitive.
  for (const Case& c : Cases()) {
    const Law chain = ChainOf(c), target = TargetOf(c);
    Vector mean_se;
    Matrix cov_se;
    ExactStandardErrors(target, kSamples, &mean_se, &cov_se);
    const double z = WorstZ(chain.mean, chain.cov, target.mean, target.cov, mean_se, cov_se);
    std::printf("[ figures ] %-56s bias = %.3f standard errors%s\n", c.name.c_str(), z,
                c.check_target ? "" : " (chain law only)");
    if (c.check_target) {
      EXPECT_LE(z, 1.0) << c.name;
    }
  }
}

TEST(CudaSampling, DeviceSamplersRecoverTheGaussian) {
  SKIP_WITHOUT_DEVICE();
  for (const Case& c : Cases()) {
    CudaSampler sampler = CudaSampler::Gaussian(c.sde, Mean(), Covariance());
    const CudaSampleResult r = c.flow ? sampler.SampleProbabilityFlow(kSamples, c.ode)
                                      : sampler.Sample(kSamples, c.pc);
    Check(c.name, r.x, ChainOf(c), TargetOf(c), c.check_target);
  }
}

TEST(CudaSampling, PilotFailureIsReported) {
  SKIP_WITHOUT_DEVICE();
  // The pilot's E‖s_t‖² is the mean of ‖s(x, t)‖² over pilot samples that went through the same
  // chain; for a network whose output is exactly zero (all weights zero, noise form: s = 0·x +
  // b·0 = 0) the estimate is 0 and the sampler must stop with NumericalFailure instead of
  // dividing by it.
  MlpConfig config;
  config.dim = 3;
  config.width = 32;
  config.depth = 2;
  config.embed_dim = 8;
  const MlpNetwork<float> base(config, 1);
  const MlpNetwork<float> zero(config, Eigen::VectorXf::Zero(base.num_parameters()),
                               base.fourier_weights());
  CudaSampler sampler(zero, std::make_shared<VpSde>(3));
  CudaSamplerOptions o;
  o.corrector = CudaCorrector::kLangevin;
  o.num_steps = 10;
  o.pilot_size = 100;
  EXPECT_THROW(sampler.Sample(50, o), NumericalFailure);
}

}  // namespace
}  // namespace scoresde
