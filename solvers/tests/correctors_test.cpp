#include "scoresde/solvers/correctors.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "test_problems.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::IsotropicGaussianScore;

TEST(LangevinAlpha, IsOneForVeAndOneMinusBetaHForVpAndSubVp) {
  const VeSde ve(2);
  const VpSde vp(2);
  const SubVpSde subvp(2);
  const GbmSde gbm(2, 0.1, 0.2);
  EXPECT_EQ(LangevinAlpha(ve, 0.3, 0.01), 1.0);
  EXPECT_EQ(LangevinAlpha(gbm, 0.3, 0.01), 1.0);
  EXPECT_DOUBLE_EQ(LangevinAlpha(vp, 0.3, 0.01), 1.0 - vp.Beta(0.3) * 0.01);
  EXPECT_DOUBLE_EQ(LangevinAlpha(subvp, 0.3, 0.01), 1.0 - subvp.Beta(0.3) * 0.01);
  try {
    LangevinAlpha(vp, 1.0, 0.1);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("beta(t) * h"));
  }
}

TEST(Correctors, RegistryAndSupports) {
  for (const std::string& name : CorrectorNames()) EXPECT_EQ(MakeCorrector(name)->name(), name);
  EXPECT_THROW(MakeCorrector("hmc"), InvalidArgument);
  const GbmSde gbm(2, 0.1, 0.2);
  std::string reason;
  EXPECT_TRUE(LangevinCorrector().Supports(gbm));
  EXPECT_FALSE(AnnealedLangevinCorrector().Supports(gbm, &reason));
  EXPECT_THAT(reason, HasSubstr("sigma_t"));
  EXPECT_TRUE(AnnealedLangevinCorrector().Supports(SubVpSde(2)));
  EXPECT_TRUE(LangevinCorrector().NeedsExpectedSquaredNorm(LangevinStepRule::kExpectation));
  EXPECT_FALSE(LangevinCorrector().NeedsExpectedSquaredNorm(LangevinStepRule::kBatchAverage));
}

// One step against the formulas: x + ε s + √(2ε) z with z from (step, substep) of the stream.
TEST(LangevinCorrector, StepSizesFollowTheRules) {
  const VpSde vp(3);
  const IsotropicGaussianScore score(vp, Vector::Constant(3, 0.4), 0.7);
  const NoiseStream noise(8, Stream::kCorrector);
  Batch x0(3, 5);
  NoiseStream(2, Stream::kPrior).FillNormal(0, 0, 0, x0);
  const double t = 0.4, h = 0.01, snr = 0.2;
  Batch s(3, 5), z(3, 5);
  score.Evaluate(x0, RowVector::Constant(5, t), s);
  noise.FillNormal(6, 2, 40, z);
  const double alpha = 1.0 - vp.Beta(t) * h;
  StepWorkspace ws;

  CorrectorLevel level{t, h, snr, LangevinStepRule::kExpectation, 2.5};
  Batch x = x0;
  LangevinCorrector().Correct(StepProblem::Reverse(vp, score), level, 6, 2, noise, 40, x, &ws);
  double eps = 2.0 * alpha * snr * snr * 3 / 2.5;
  EXPECT_TRUE(x.isApprox(x0 + eps * s + std::sqrt(2 * eps) * z, 1e-15));

  level.rule = LangevinStepRule::kBatchAverage;
  x = x0;
  LangevinCorrector().Correct(StepProblem::Reverse(vp, score), level, 6, 2, noise, 40, x, &ws);
  const double ratio = snr * z.colwise().norm().mean() / s.colwise().norm().mean();
  eps = 2.0 * alpha * ratio * ratio;
  EXPECT_TRUE(x.isApprox(x0 + eps * s + std::sqrt(2 * eps) * z, 1e-14));

  x = x0;
  AnnealedLangevinCorrector().Correct(StepProblem::Reverse(vp, score), level, 6, 2, noise, 40, x,
                                      &ws);
  eps = 2.0 * alpha * std::pow(snr * vp.MarginalStd(t), 2);
  EXPECT_TRUE(x.isApprox(x0 + eps * s + std::sqrt(2 * eps) * z, 1e-15));
}

// The unadjusted Langevin chain x ← x − (ε/v) x + √(2ε) z on N(0, v) is Gaussian with stationary
// variance v_∞ solving v_∞ = (1 − ε/v)² v_∞ + 2ε, i.e. v_∞ = v / (1 − ε/(2v)). With the expectation
// rule ε = 2 r² v (α = 1, E‖s‖² = d/v), r = 0.16: v_∞ / v = 1/(1 − r²) = 1.0263. Starting from
// N(0, v), after K steps the variance is v_∞ + (v − v_∞)(1 − ε/v)^{2K}; K = 300 leaves 3e-14.
// The sample variance of n = 200,000 draws has standard error √(2/n) v_∞ = 0.32%, so 5σ = 1.6%
// separates v_∞ from v (2.6% apart): the test sees the discretization bias the theory predicts.
TEST(LangevinCorrector, StationaryVarianceIsTheUnadjustedLangevinClosedForm) {
  const VeSde ve(1);
  const double t = 0.5, snr = 0.16;
  const IsotropicGaussianScore score(ve, Vector::Zero(1), 0.0);
  const double v = score.Variance(t);
  const int n = 200000;
  Batch x(1, n);
  NoiseStream(3, Stream::kPrior).FillNormal(0, 0, 0, x);
  x *= std::sqrt(v);
  const NoiseStream noise(4, Stream::kCorrector);
  StepWorkspace ws;
  const CorrectorLevel level{t, 0.01, snr, LangevinStepRule::kExpectation, 1.0 / v};
  for (int k = 0; k < 300; ++k) {
    LangevinCorrector().Correct(StepProblem::Reverse(ve, score), level, k, 0, noise, 0, x, &ws);
  }
  const double expected = v / (1.0 - snr * snr);
  const double variance = x.squaredNorm() / n;
  EXPECT_NEAR(variance, expected, 5.0 * std::sqrt(2.0 / n) * expected);
  EXPECT_GT(std::abs(variance - v), 5.0 * std::sqrt(2.0 / n) * expected);
}

}  // namespace
}  // namespace scoresde
