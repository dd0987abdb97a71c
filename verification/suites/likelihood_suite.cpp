// Likelihood suite (issue 4, item 5): log p_ε computed through the probability-flow ODE against the
// exact log-density of Gaussian-mixture and log-normal data.
//
// Tolerances:
//  * 1e-3 nats mean absolute error at rtol = atol = 1e-5 with the exact prior is the issue's
//    requirement (planning measured 6e-5 on a 3-d mixture).
//  * "Shrinking as the tolerances do": Dormand–Prince's global error is tolerance-proportional,
//    ∝ tol^q with q ≥ 4/5 for an error-per-step controller of a 4th-order estimate with local
//    extrapolation (Hairer, Nørsett & Wanner I, section II.4); a 100× tighter tolerance must then
//    cut the error by ≥ 100^{4/5} ≈ 40. We require 10×, which still fails for any q < ½.
//  * The standard prior's error is the closed-form mismatch m(x_T) (flow_reference.hpp) plus the
//    solve's own error, so |error − m(x_T)| obeys the same 1e-3 bound.
//  * Hutchinson: mean over K probes within 5 of its standard errors of the exact value (5σ, fixed
//    seed); the solve's own error (≤ 1e-5 at rtol 1e-7) is negligible beside the standard error.
#include <cmath>
#include <cstdio>
#include <vector>

#include <Eigen/QR>
#include <gtest/gtest.h>

#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/verification/flow_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde {
namespace {

// A symmetric positive definite d × d matrix with eigenvalues spread over [lo, hi], random basis.
Matrix Spd(int d, double lo, double hi, uint64_t seed) {
  Batch z(d, d);
  NoiseStream(seed, Stream::kUser).FillNormal(0, 0, 0, z);
  const Matrix q = Eigen::HouseholderQR<Matrix>(z).householderQ();
  Vector lambda(d);
  for (int i = 0; i < d; ++i) lambda(i) = d == 1 ? hi : lo + (hi - lo) * i / (d - 1);
  return q * lambda.asDiagonal() * q.transpose();
}

// Three components with means ~N(0, 1.5² I / d · 4) (separated by O(1) in total) and covariances
// with eigenvalues in [0.3, 1.5].
GaussianMixture TestMixture(int d, uint64_t seed) {
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (int k = 0; k < 3; ++k) {
    Batch m(d, 1);
    NoiseStream(seed, Stream::kUser).FillNormal(1, 0, k, m);
    means.push_back(3.0 / std::sqrt(static_cast<double>(d)) * m.col(0));
    covs.push_back(Spd(d, 0.3, 1.5, seed + 10 + k));
  }
  return GaussianMixture(Eigen::Vector3d(0.5, 0.3, 0.2), means, covs);
}

Batch Draw(const GaussianMixture& p, int n, uint64_t seed) {
  Batch x(p.dim(), n);
  p.Sample(NoiseStream(seed, Stream::kData), 0, x);
  return x;
}

LogDensityFunction ExactPrior(const GaussianMixtureScore& score, double t_final) {
  return [&score, t_final](ConstBatchRef x, RowVectorRef logp) {
    score.LogDensity(x, RowVector::Constant(x.cols(), t_final), logp);
  };
}

struct Errors {
  double mean_abs = 0.0;
  double max_abs = 0.0;
  double nfe = 0.0;
};

Errors Compare(const RowVector& computed, const RowVector& exact, const SolveSummary& summary) {
  const RowVector error = (computed - exact).cwiseAbs();
  return {error.mean(), error.maxCoeff(), static_cast<double>(summary.nfe)};
}

TEST(LikelihoodSuite, ExactPriorMeetsTheBoundAndShrinksWithTheTolerance) {
  for (int d : {2, 16, 64}) {
    const VpSde sde(d);
    const GaussianMixtureScore score(TestMixture(d, 100 + d), sde);
    const Batch x = Draw(score.initial(), 24, 7);
    LikelihoodOptions options;
    options.ode.num_threads = 2;
    RowVector exact(x.cols());
    score.LogDensity(x, RowVector::Constant(x.cols(), options.eps), exact);
    std::vector<Errors> errors;
    for (double tol : {1e-5, 1e-7}) {
      options.ode.rtol = options.ode.atol = tol;
      const LikelihoodEstimator estimator(sde, score, options, ExactPrior(score, 1.0));
      const LikelihoodResult result = estimator.Compute(x);
      ASSERT_TRUE(result.summary.ok()) << result.summary.BriefReport();
      errors.push_back(Compare(result.logp, exact, result.summary));
      std::printf("vp d=%d tol=%g: mean |error| %.3g nats, max %.3g, nfe %g\n", d, tol,
                  errors.back().mean_abs, errors.back().max_abs, errors.back().nfe);
    }
    EXPECT_LE(errors[0].mean_abs, 1e-3) << "d = " << d;
    EXPECT_LE(errors[1].mean_abs, errors[0].mean_abs / 10.0) << "d = " << d;
  }
}

TEST(LikelihoodSuite, StandardPriorErrorIsThePriorMismatch) {
  for (int d : {2, 16, 64}) {
    const VpSde sde(d);
    const GaussianMixtureScore score(TestMixture(d, 100 + d), sde);
    const Batch x = Draw(score.initial(), 24, 8);
    LikelihoodOptions options;
    options.ode.num_threads = 2;
    const LikelihoodEstimator estimator(sde, score, options);  // N(0, I)
    const LikelihoodResult result = estimator.Compute(x);
    ASSERT_TRUE(result.summary.ok());
    RowVector exact(x.cols()), mismatch(x.cols());
    score.LogDensity(x, RowVector::Constant(x.cols(), options.eps), exact);
    PriorMismatch(score, 1.0, sde.PriorStd(), result.latent, mismatch);
    const RowVector error = result.logp - exact;
    const double residual = (error - mismatch).cwiseAbs().mean();
    std::printf("vp d=%d standard prior: mean |error| %.3g nats, mean |error - m(x_T)| %.3g\n", d,
                error.cwiseAbs().mean(), residual);
    EXPECT_LE(residual, 1e-3) << "d = " << d;
  }
}

TEST(LikelihoodSuite, VeAndSubVpMeetTheBound) {
  const VeSde ve(2);
  const SubVpSde subvp(2);
  for (const ScalarAffineSde* sde : std::vector<const ScalarAffineSde*>{&ve, &subvp}) {
    const GaussianMixtureScore score(TestMixture(2, 102), *sde);
    const Batch x = Draw(score.initial(), 24, 9);
    LikelihoodOptions options;
    const LikelihoodEstimator estimator(*sde, score, options, ExactPrior(score, 1.0));
    const LikelihoodResult result = estimator.Compute(x);
    ASSERT_TRUE(result.summary.ok());
    RowVector exact(x.cols());
    score.LogDensity(x, RowVector::Constant(x.cols(), options.eps), exact);
    const Errors e = Compare(result.logp, exact, result.summary);
    std::printf("%s d=2: mean |error| %.3g nats, nfe %g\n",
                sde->family() == SdeFamily::kVe ? "ve" : "subvp", e.mean_abs, e.nfe);
    EXPECT_LE(e.mean_abs, 1e-3);
  }
}

TEST(LikelihoodSuite, HutchinsonIsUnbiased) {
  const int d = 16;
  const VpSde sde(d);
  const GaussianMixtureScore score(TestMixture(d, 116), sde);
  const Batch x = Draw(score.initial(), 4, 10);
  RowVector exact(x.cols());
  for (DivergenceEstimator probe :
       {DivergenceEstimator::kHutchinsonRademacher, DivergenceEstimator::kHutchinsonGaussian}) {
    LikelihoodOptions options;
    options.ode.rtol = options.ode.atol = 1e-7;
    options.divergence = probe;
    options.num_probes = 256;
    options.seed = 11;
    score.LogDensity(x, RowVector::Constant(x.cols(), options.eps), exact);
    const LikelihoodEstimator estimator(sde, score, options, ExactPrior(score, 1.0));
    const LikelihoodResult result = estimator.Compute(x);
    ASSERT_TRUE(result.summary.ok());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      std::printf("%s sample %ld: estimate - exact = %.3g, standard error %.3g\n",
                  std::string(ToString(probe)).c_str(), static_cast<long>(j),
                  result.logp(j) - exact(j), result.standard_error(j));
      EXPECT_GT(result.standard_error(j), 0.0);
      EXPECT_NEAR(result.logp(j), exact(j), 5.0 * result.standard_error(j));
    }
  }
}

// GBM: state-dependent noise, ∇·(GGᵀ) ≠ 0 and a score part weighted by g_i(x)² (d JVPs); the prior
// is the exact p_T of the log-normal reference (GBM has no data-independent prior).
TEST(LikelihoodSuite, GbmLikelihoodMatchesTheLogNormalDensity) {
  GbmSde::Options gbm_options;
  gbm_options.mu = Eigen::Vector2d(0.2, -0.1);
  gbm_options.sigma = Eigen::Vector2d(0.5, 0.8);
  const GbmSde sde(gbm_options);
  const LogNormalReference reference(Eigen::Vector2d(0.1, -0.2), Eigen::Vector2d(0.3, 0.5), sde);
  Batch x(2, 24);
  reference.SampleMarginal(0.0, NoiseStream(12, Stream::kData), 0, x);
  LikelihoodOptions options;
  const LikelihoodEstimator estimator(sde, reference, options,
                                      [&](ConstBatchRef z, RowVectorRef logp) {
                                        reference.LogDensity(
                                            z, RowVector::Constant(z.cols(), 1.0), logp);
                                      });
  const LikelihoodResult result = estimator.Compute(x);
  ASSERT_TRUE(result.summary.ok());
  RowVector exact(x.cols());
  reference.LogDensity(x, RowVector::Constant(x.cols(), options.eps), exact);
  const Errors e = Compare(result.logp, exact, result.summary);
  std::printf("gbm d=2: mean |error| %.3g nats, nfe %g\n", e.mean_abs, e.nfe);
  EXPECT_LE(e.mean_abs, 1e-3);
}

}  // namespace
}  // namespace scoresde
