#include "scoresde/verification/flow_reference.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/probability_flow.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

GaussianMixture TestGaussian() {
  Matrix cov(3, 3);
  cov << 0.5, 0.2, -0.1, 0.2, 1.4, 0.3, -0.1, 0.3, 0.8;
  return GaussianMixture::Gaussian(Vector::Constant(3, 0.4), cov);
}

Batch Points() {
  Batch x(3, 4);
  x << 0.3, -1.0, 0.8, 0.0, 1.1, 0.4, -0.6, 0.2, -0.2, 0.9, 0.1, -1.3;
  return x;
}

// The map solves the flow ODE: its central time difference (step 1e-5; truncation O(1e-10 |x'''|),
// rounding O(1e-16 |x| / 1e-5)) equals the probability-flow drift of the exact score within 1e-8.
TEST(GaussianFlowMap, SolvesTheProbabilityFlowOde) {
  const VpSde vp(3);
  const VeSde ve(3);
  for (const ScalarAffineSde* sde : std::vector<const ScalarAffineSde*>{&vp, &ve}) {
    const GaussianMixtureScore score(TestGaussian(), *sde);
    const ProbabilityFlow flow(*sde, score);
    const Batch x = Points();
    for (double t : {0.05, 0.4, 0.9}) {
      const double h = 1e-5;
      Batch at(3, 4), plus(3, 4), minus(3, 4), drift(3, 4);
      GaussianFlowMap(score, 0.2, t, x, at);
      GaussianFlowMap(score, 0.2, t + h, x, plus);
      GaussianFlowMap(score, 0.2, t - h, x, minus);
      flow.Drift(at, RowVector::Constant(4, t), drift);
      const Batch derivative = (plus - minus) / (2 * h);
      EXPECT_LT((derivative - drift).cwiseAbs().maxCoeff(),
                1e-8 * (1.0 + drift.cwiseAbs().maxCoeff()))
          << "t = " << t;
    }
  }
}

TEST(GaussianFlowMap, ComposesAndInverts) {
  const VpSde sde(3);
  const GaussianMixtureScore score(TestGaussian(), sde);
  const Batch x = Points();
  Batch mid(3, 4), end(3, 4), direct(3, 4), back(3, 4);
  GaussianFlowMap(score, 0.1, 0.5, x, mid);
  GaussianFlowMap(score, 0.5, 0.9, mid, end);
  GaussianFlowMap(score, 0.1, 0.9, x, direct);
  GaussianFlowMap(score, 0.9, 0.1, direct, back);
  EXPECT_LT((end - direct).cwiseAbs().maxCoeff(), 1e-13);
  EXPECT_LT((back - x).cwiseAbs().maxCoeff(), 1e-13);
}

TEST(GaussianFlowMap, RejectsMixturesAndLinearSdes) {
  const VpSde sde(3);
  const GaussianMixture p0 = TestGaussian();
  const GaussianMixture mixture(Vector::Constant(2, 0.5), {p0.mean(0), -p0.mean(0)},
                                {p0.cov(0), p0.cov(0)});
  const GaussianMixtureScore mixture_score(mixture, sde);
  Batch out(3, 4);
  EXPECT_THAT([&] { GaussianFlowMap(mixture_score, 0.1, 0.5, Points(), out); },
              ThrowsMessage<InvalidArgument>(HasSubstr("num_components")));
  LinearSde::Options options;
  // A non-scalar drift: the kernel is no longer α I, σ² I.
  options.drift_matrix = Vector(Eigen::Vector3d(-1.0, -0.5, -0.2)).asDiagonal();
  options.diffusion = [](double) { return Matrix::Identity(3, 3); };
  const LinearSde linear(options);
  const GaussianMixtureScore linear_score(TestGaussian(), linear);
  EXPECT_THAT([&] { GaussianFlowMap(linear_score, 0.1, 0.5, Points(), out); },
              ThrowsMessage<InvalidArgument>(HasSubstr("score")));
  const GaussianMixtureScore score(TestGaussian(), sde);
  EXPECT_THAT([&] { GaussianFlowMap(score, 0.1, 0.5, Batch::Zero(2, 4), out); },
              ThrowsMessage<InvalidArgument>(HasSubstr("x_s")));
}

// For N(0, I) data under VP, p_T = N(0, (α² + σ²) I) = N(0, I): no mismatch. Otherwise the
// closed form log N(x; 0, I) − log p_T(x).
TEST(PriorMismatch, VanishesWhenThePriorIsExactAndMatchesTheFormula) {
  const VpSde sde(3);
  const GaussianMixtureScore standard(
      GaussianMixture::Gaussian(Vector::Zero(3), Matrix::Identity(3, 3)), sde);
  RowVector m(4);
  PriorMismatch(standard, 1.0, 1.0, Points(), m);
  EXPECT_LT(m.cwiseAbs().maxCoeff(), 1e-14);
  const GaussianMixtureScore score(TestGaussian(), sde);
  PriorMismatch(score, 1.0, 1.0, Points(), m);
  RowVector exact(4);
  score.LogDensity(Points(), RowVector::Constant(4, 1.0), exact);
  for (int j = 0; j < 4; ++j) {
    const double normal =
        -1.5 * std::log(2.0 * std::numbers::pi) - 0.5 * Points().col(j).squaredNorm();
    EXPECT_NEAR(m(j), normal - exact(j), 1e-13);
  }
  EXPECT_THAT([&] { PriorMismatch(score, 1.0, 0.0, Points(), m); },
              ThrowsMessage<InvalidArgument>(HasSubstr("prior_std")));
}

}  // namespace
}  // namespace scoresde
