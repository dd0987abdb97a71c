#include "scoresde/solvers/pigdm_guidance.hpp"

#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conditional_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/guidance.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::GaussianPosterior;
using testing::GaussianScore;

LinearMeasurement ThreeByTwo() {
  LinearMeasurement m;
  m.A.resize(2, 3);
  m.A << 1.0, 0.5, 0.0, 0.0, -1.0, 2.0;
  m.noise_cov.resize(2, 2);
  m.noise_cov << 0.09, 0.02, 0.02, 0.04;
  m.y = Vector::Zero(2);
  m.y << 0.7, -1.2;
  return m;
}

TEST(PigdmGuidanceOptions, DefaultsAreValid) {
  EXPECT_NO_THROW(PigdmGuidance::Options{}.Validate());
  for (double bad : {0.0, -1.0, double(NAN), double(INFINITY)}) {
    PigdmGuidance::Options options;
    options.data_std = bad;
    EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("data_std")));
  }
}

TEST(PigdmGuidance, RejectsBadArguments) {
  const VpSde vp(3);
  const GaussianScore score(vp, Vector::Zero(3), Matrix::Identity(3, 3));
  const CallbackScore no_jvp(3, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  EXPECT_THAT([&] { PigdmGuidance(vp, no_jvp, ThreeByTwo()); }, ThrowsMessage<InvalidArgument>(HasSubstr("HasJvp")));
  const VpSde vp2(2);
  const GaussianScore score2(vp2, Vector::Zero(2), Matrix::Identity(2, 2));
  EXPECT_THAT([&] { PigdmGuidance(vp2, score2, ThreeByTwo()); }, ThrowsMessage<InvalidArgument>(HasSubstr("A.cols()")));
  LinearMeasurement bad = ThreeByTwo();
  bad.y(1) = NAN;
  EXPECT_THAT([&] { PigdmGuidance(vp, score, bad); }, ThrowsMessage<InvalidArgument>(HasSubstr("y")));
  bad = ThreeByTwo();
  bad.noise_cov(0, 1) = 0.5;
  EXPECT_THAT([&] { PigdmGuidance(vp, score, bad); }, ThrowsMessage<InvalidArgument>(HasSubstr("symmetric")));
  bad.noise_cov(1, 0) = 0.5;  // symmetric but indefinite
  EXPECT_THAT([&] { PigdmGuidance(vp, score, bad); }, ThrowsMessage<InvalidArgument>(HasSubstr("eigenvalue")));
  PigdmGuidance::Options options;
  options.data_std = -1.0;
  EXPECT_THAT([&] { PigdmGuidance(vp, score, ThreeByTwo(), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("data_std")));

  const PigdmGuidance guidance(vp, score, ThreeByTwo());
  Batch x = Batch::Zero(3, 2), g(3, 2), wrong(2, 2);
  EXPECT_THAT([&] { guidance.Evaluate(x, RowVector::Constant(2, 0.5), x, wrong); }, ThrowsMessage<InvalidArgument>(HasSubstr("grad")));
  EXPECT_THAT([&] { guidance.Evaluate(x, RowVector::Constant(2, 1.5), x, g); }, ThrowsMessage<InvalidArgument>(HasSubstr("t")));
  EXPECT_THAT([&] { guidance.Evaluate(x, RowVector::Constant(3, 0.5), x, g); }, ThrowsMessage<InvalidArgument>(HasSubstr("t")));
}

// For data N(μ, σ_d² I) and the exact score, p(x₀ | x_t) = N(x̂₀, r_t² I) exactly, so s + ∇ log p̃_t
// is the exact conditional score ∇ log p_t(x | y) = −(α² C' + σ_t² I)⁻¹ (x − α μ'), (μ', C') the
// Gaussian posterior of x₀. Both sides are a few well-conditioned 3 × 3 solves: agreement to
// 1e-11 relative is rounding (condition numbers here are below 1e3).
TEST(PigdmGuidance, IsExactForIsotropicGaussianData) {
  const VpSde vp(3);
  const VeSde ve(3);
  const SubVpSde subvp(3);
  const double data_std = 0.8;
  const Vector mean = Vector::LinSpaced(3, -0.5, 1.0);
  for (const ScalarAffineSde* sde : {static_cast<const ScalarAffineSde*>(&vp),
                                     static_cast<const ScalarAffineSde*>(&ve),
                                     static_cast<const ScalarAffineSde*>(&subvp)}) {
    const GaussianScore score(*sde, mean, data_std * data_std * Matrix::Identity(3, 3));
    Vector observed(3);
    observed << 0.3, NAN, -0.4;
    for (const LinearMeasurement& m : {ThreeByTwo(), LinearMeasurement::FromMasked(observed, 0.0),
                                       LinearMeasurement::FromMasked(observed, 0.1)}) {
      PigdmGuidance::Options options;
      options.data_std = data_std;
      const PigdmGuidance guidance(*sde, score, m, options);
      const GuidedScore guided(score, guidance, 1.0);
      EXPECT_EQ(guided.evaluations_per_call(), 2);
      const auto [post_mean, post_cov] = GaussianPosterior(mean, data_std * data_std *
                                                                     Matrix::Identity(3, 3), m);
      const GaussianScore exact(*sde, post_mean, post_cov);
      const Batch x = 1.5 * Batch::Random(3, 8);
      const RowVector t = RowVector::LinSpaced(8, 0.05, 1.0);
      Batch s(3, 8), s_exact(3, 8);
      guided.Evaluate(x, t, s);
      exact.Evaluate(x, t, s_exact);
      for (Eigen::Index j = 0; j < 8; ++j) {
        EXPECT_LE((s.col(j) - s_exact.col(j)).norm(), 1e-11 * (1.0 + s_exact.col(j).norm()))
            << "t = " << t(j);
      }
    }
  }
}

// For anisotropic Gaussian data the isotropic r_t² is an approximation: the guided score differs
// from the exact conditional score (this is the bias the SMC sampler removes).
TEST(PigdmGuidance, IsApproximateForAnisotropicData) {
  const VpSde vp(3);
  Matrix cov = Matrix::Identity(3, 3);
  cov(0, 0) = 4.0;
  cov(2, 2) = 0.25;
  const GaussianScore score(vp, Vector::Zero(3), cov);
  const PigdmGuidance guidance(vp, score, ThreeByTwo());
  const GuidedScore guided(score, guidance, 1.0);
  const auto [post_mean, post_cov] = GaussianPosterior(Vector::Zero(3), cov, ThreeByTwo());
  const GaussianScore exact(vp, post_mean, post_cov);
  const Batch x = Batch::Zero(3, 1);
  const RowVector t = RowVector::Constant(1, 0.5);
  Batch s(3, 1), s_exact(3, 1);
  guided.Evaluate(x, t, s);
  exact.Evaluate(x, t, s_exact);
  EXPECT_GT((s - s_exact).norm(), 1e-2 * s_exact.norm());
}

// The gradient is the derivative of the log-likelihood: central differences with step h = 1e-4
// have truncation error h²/6 · |∂³ log p̃| (≈ 1e-9 here: log p̃ is quadratic in x̂₀, which is affine
// in x for Gaussian data, so the third derivative vanishes up to rounding) and rounding error
// ≈ 1e-16 · |log p̃| / h ≈ 1e-11; the tolerance 1e-6 is far above both.
TEST(PigdmGuidance, GradientIsTheDerivativeOfTheLogLikelihood) {
  const VeSde ve(3);
  Matrix cov(3, 3);
  cov << 1.0, 0.3, 0.1, 0.3, 2.0, -0.4, 0.1, -0.4, 0.7;
  const GaussianScore score(ve, Vector::Constant(3, 0.2), cov);
  const PigdmGuidance guidance(ve, score, ThreeByTwo());
  Batch x(3, 1);
  x << 0.4, -0.3, 1.1;
  for (double time : {0.1, 0.5, 0.9}) {
    const RowVector t = RowVector::Constant(1, time);
    Batch s(3, 1), g(3, 1);
    RowVector logl(1);
    score.Evaluate(x, t, s);
    guidance.EvaluateWithLogLikelihood(x, t, s, g, logl);
    const double h = 1e-4;
    for (int i = 0; i < 3; ++i) {
      Batch xp = x, xm = x, sp(3, 1), sm(3, 1), gp(3, 1);
      xp(i, 0) += h;
      xm(i, 0) -= h;
      RowVector lp(1), lm(1);
      score.Evaluate(xp, t, sp);
      score.Evaluate(xm, t, sm);
      guidance.EvaluateWithLogLikelihood(xp, t, sp, gp, lp);
      guidance.EvaluateWithLogLikelihood(xm, t, sm, gp, lm);
      EXPECT_NEAR((lp(0) - lm(0)) / (2.0 * h), g(i, 0), 1e-6) << "t = " << time << " i = " << i;
    }
    // The value is log N(y; A x̂₀, Σ_y + r_t² A Aᵀ).
    const LinearMeasurement m = ThreeByTwo();
    const double alpha = ve.MeanCoefficient(time), sigma = ve.MarginalStd(time);
    const Vector x_hat = (x.col(0) + sigma * sigma * s.col(0)) / alpha;
    const Matrix M = m.noise_cov + guidance.PosteriorVariance(time) * m.A * m.A.transpose();
    const Vector r = m.y - m.A * x_hat;
    const double expected = -0.5 * r.dot(M.inverse() * r) - 0.5 * std::log(M.determinant()) -
                            std::log(2.0 * M_PI);
    EXPECT_NEAR(logl(0), expected, 1e-12 * (1.0 + std::abs(expected)));
  }
}

// r_t² = σ_d² σ_t² / (α² σ_d² + σ_t²); at σ_t = 0 (VP at t = 0) x̂₀ = x/α and no score is needed.
TEST(PigdmGuidance, PosteriorVarianceAndTheNoiseFreeEnd) {
  const VpSde vp(3);
  const GaussianScore score(vp, Vector::Zero(3), Matrix::Identity(3, 3));
  PigdmGuidance::Options options;
  options.data_std = 0.5;
  const PigdmGuidance guidance(vp, score, ThreeByTwo(), options);
  const double a = vp.MeanCoefficient(0.4), s = vp.MarginalStd(0.4);
  EXPECT_NEAR(guidance.PosteriorVariance(0.4), 0.25 * s * s / (a * a * 0.25 + s * s), 1e-15);
  EXPECT_EQ(guidance.PosteriorVariance(0.0), 0.0);
  // At t = 0 the gradient is Aᵀ Σ_y⁻¹ (y − A x), the exact likelihood's.
  const LinearMeasurement m = ThreeByTwo();
  Batch x(3, 1), g(3, 1);
  x << 0.1, 0.2, 0.3;
  const Batch nan_score = Batch::Constant(3, 1, 0.0);
  guidance.Evaluate(x, RowVector::Zero(1), nan_score, g);
  const Vector expected = m.A.transpose() * m.noise_cov.inverse() * (m.y - m.A * x.col(0));
  EXPECT_LE((g.col(0) - expected).norm(), 1e-12 * expected.norm());
  // A noiseless measurement has no density at σ_t = 0.
  Vector observed(3);
  observed << 0.3, NAN, NAN;
  const PigdmGuidance noiseless(vp, score, LinearMeasurement::FromMasked(observed, 0.0));
  EXPECT_THAT([&] { noiseless.Evaluate(x, RowVector::Zero(1), nan_score, g); }, ThrowsMessage<InvalidArgument>(HasSubstr("singular")));
}

// A column's result does not depend on the batch it is evaluated in, nor on the other columns'
// times.
TEST(PigdmGuidance, ColumnsAreIndependentOfTheirBatch) {
  const VpSde vp(3);
  Matrix cov = Matrix::Identity(3, 3);
  cov(1, 1) = 3.0;
  const GaussianScore score(vp, Vector::Zero(3), cov);
  const PigdmGuidance guidance(vp, score, ThreeByTwo());
  const Batch x = Batch::Random(3, 9);
  RowVector t(9);
  t << 0.1, 0.1, 0.1, 0.5, 0.5, 0.9, 0.1, 0.9, 0.9;
  Batch s(3, 9), g(3, 9);
  RowVector logl(9);
  score.Evaluate(x, t, s);
  guidance.EvaluateWithLogLikelihood(x, t, s, g, logl);
  for (Eigen::Index j = 0; j < 9; ++j) {
    Batch gj(3, 1);
    RowVector lj(1);
    guidance.EvaluateWithLogLikelihood(x.col(j), t.segment(j, 1), s.col(j), gj, lj);
    EXPECT_EQ(gj.col(0), g.col(j));
    EXPECT_EQ(lj(0), logl(j));
  }
}

}  // namespace
}  // namespace scoresde
