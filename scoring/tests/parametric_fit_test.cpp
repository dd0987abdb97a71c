#include "scoresde/scoring/parametric_fit.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

TEST(DsmFitOptions, DefaultsAreValid) { EXPECT_NO_THROW(DsmFitOptions{}.Validate()); }

// Gaussian data N(μ*, Σ*): the DSM fit's population optimum is (μ*, chol Σ*) (the family holds
// the true score). The fitted parameters must be within 5 sandwich standard errors of it (the
// estimator is asymptotically normal; 5σ two-sided has probability 5.7e-7 per parameter, fixed
// seeds).
TEST(FitGaussianByDsm, ReachesTheAnalyticOptimum) {
  const int d = 2, n = 3000;
  Matrix truth_chol(2, 2);
  truth_chol << 0.8, 0.0, 0.5, 0.4;
  Vector truth_mean(2);
  truth_mean << 1.0, -0.5;
  Matrix x0(d, n);
  NoiseStream(5, Stream::kData).FillNormal(0, 0, 0, x0);
  x0 = (truth_chol * x0).colwise() + truth_mean;
  for (int family = 0; family < 2; ++family) {
    std::unique_ptr<ScalarAffineSde> sde;
    if (family == 0) {
      sde = std::make_unique<VpSde>(d);
    } else {
      VeSde::Options o;
      o.sigma_max = 5.0;
      sde = std::make_unique<VeSde>(d, o);
    }
    DsmFitOptions options;
    options.seed = 7;
    const GaussianFit fit = FitGaussianByDsm(*sde, x0, options);
    EXPECT_TRUE(fit.fit.converged) << fit.fit.report;
    Vector truth(5);
    truth << truth_mean, truth_chol(0, 0), truth_chol(1, 0), truth_chol(1, 1);
    for (int k = 0; k < 5; ++k) {
      EXPECT_LT(std::abs(fit.fit.parameters(k) - truth(k)), 5.0 * fit.fit.standard_errors(k))
          << "family " << family << " parameter " << k << ": " << fit.fit.parameters(k) << " vs "
          << truth(k) << " se " << fit.fit.standard_errors(k);
      // The standard errors shrink like 1/sqrt(n): a few hundredths at n = 3000.
      EXPECT_LT(fit.fit.standard_errors(k), 0.1);
    }
    EXPECT_LT(fit.fit.final_cost, fit.fit.initial_cost);
  }
}

TEST(FitMixtureMeansByDsm, ReachesTheTrueMeans) {
  const int d = 2, n = 3000;
  Vector w(2);
  w << 0.4, 0.6;
  const std::vector<Matrix> covs = {0.2 * Matrix::Identity(2, 2), 0.3 * Matrix::Identity(2, 2)};
  std::vector<Vector> mu = {Vector::Constant(2, -1.5), Vector::Constant(2, 1.0)};
  Matrix x0(d, n), u(1, n);
  NoiseStream(3, Stream::kData).FillNormal(0, 0, 0, x0);
  NoiseStream(3, Stream::kData).FillUniform(0, 1, 0, u);
  for (int i = 0; i < n; ++i) {
    const int k = u(0, i) < 0.4 ? 0 : 1;
    x0.col(i) = mu[k] + covs[k].llt().matrixL().toDenseMatrix() * x0.col(i);
  }
  const auto sde = std::make_unique<VpSde>(d);
  DsmFitOptions options;
  options.seed = 1;
  const MixtureMeansFit fit = FitMixtureMeansByDsm(*sde, x0, w, covs,
                                                   {Vector::Constant(2, -0.5), Vector::Zero(2)},
                                                   options);
  EXPECT_TRUE(fit.fit.converged) << fit.fit.report;
  for (int k = 0; k < 2; ++k) {
    for (int r = 0; r < d; ++r) {
      EXPECT_LT(std::abs(fit.means[k](r) - mu[k](r)), 5.0 * fit.fit.standard_errors(2 * k + r))
          << k << "," << r;
    }
  }
}

TEST(FitGaussianByDsm, RejectsBadInput) {
  const VpSde sde(2);
  EXPECT_THROW(FitGaussianByDsm(sde, Matrix::Zero(3, 10), DsmFitOptions{}), InvalidArgument);
  EXPECT_THROW(FitGaussianByDsm(sde, Matrix::Zero(2, 4), DsmFitOptions{}), InvalidArgument);
  DsmFitOptions bad;
  bad.eps = 0;
  EXPECT_THROW(FitGaussianByDsm(sde, Matrix::Zero(2, 10), bad), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
