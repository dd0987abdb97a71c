#include "scoresde/verification/conditional_reference.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <Eigen/LU>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Matrix Cov3() {
  Matrix c(3, 3);
  c << 1.0, 0.4, -0.2, 0.4, 2.0, 0.3, -0.2, 0.3, 0.8;
  return c;
}

GaussianMixture Gaussian3() { return GaussianMixture::Gaussian(Vector::LinSpaced(3, -1, 1), Cov3()); }

GaussianMixture Mixture3() {
  Vector w(3);
  w << 0.5, 0.3, 0.2;
  Matrix c2 = 0.5 * Matrix::Identity(3, 3);
  c2(0, 1) = c2(1, 0) = 0.1;
  return GaussianMixture(w, {Vector::Constant(3, -1.0), Vector::Constant(3, 1.5), Vector::LinSpaced(3, 2, -2)},
                         {Cov3(), c2, 0.3 * Matrix::Identity(3, 3)});
}

double LogNormal(const Vector& y, const Vector& mean, const Matrix& cov) {
  const Vector r = y - mean;
  return -0.5 * r.dot(cov.inverse() * r) - 0.5 * std::log(cov.determinant()) -
         0.5 * static_cast<double>(y.size()) * std::log(2.0 * M_PI);
}

TEST(ConditionalReference, RejectsBadMeasurements) {
  const Matrix A = Matrix::Identity(2, 3);
  const Vector y = Vector::Ones(2);
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), Matrix::Identity(2, 2), Matrix::Identity(2, 2), y); }, ThrowsMessage<InvalidArgument>(HasSubstr("A")));
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), Matrix::Zero(0, 3), Matrix::Zero(0, 0), Vector()); }, ThrowsMessage<InvalidArgument>(HasSubstr("A.rows()")));
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), A, Matrix::Identity(3, 3), y); }, ThrowsMessage<InvalidArgument>(HasSubstr("noise_cov")));
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), A, Matrix::Identity(2, 2), Vector::Ones(3)); }, ThrowsMessage<InvalidArgument>(HasSubstr("y")));
  Matrix indefinite = Matrix::Identity(2, 2);
  indefinite(1, 1) = -1.0;
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), A, indefinite, y); }, ThrowsMessage<InvalidArgument>(HasSubstr("noise_cov")));
  Matrix redundant(2, 3);
  redundant << 1, 0, 0, 2, 0, 0;
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), redundant, Matrix::Zero(2, 2), y); }, ThrowsMessage<InvalidArgument>(HasSubstr("rank(A)")));
  Vector nan_y = y;
  nan_y(0) = NAN;
  EXPECT_THAT([&] { ConditionalReference(Gaussian3(), A, Matrix::Identity(2, 2), nan_y); }, ThrowsMessage<InvalidArgument>(HasSubstr("y")));
  Vector observed = Vector::Constant(3, NAN);
  EXPECT_THAT([&] { ConditionalReference::FromMasked(Gaussian3(), observed, 0.0); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed coordinates")));
  observed(1) = 1.0;
  EXPECT_THAT([&] { ConditionalReference::FromMasked(Gaussian3(), observed, -1.0); }, ThrowsMessage<InvalidArgument>(HasSubstr("noise_std")));
  observed(0) = INFINITY;
  EXPECT_THAT([&] { ConditionalReference::FromMasked(Gaussian3(), observed, 0.0); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed[0]")));
}

// The Joseph-form posterior equals the information form C' = (Σ⁻¹ + AᵀΣ_y⁻¹A)⁻¹,
// μ' = C'(Σ⁻¹μ + AᵀΣ_y⁻¹y); the weights are w_k N(y; Aμ_k, AΣ_kAᵀ + Σ_y) normalized, and
// log p(y) their log-sum. Well-conditioned 3 × 3 algebra: 1e-12 is rounding.
TEST(ConditionalReference, MatchesTheInformationFormAndBayesWeights) {
  Matrix A(2, 3);
  A << 1.0, 0.5, 0.0, 0.0, -1.0, 2.0;
  Matrix noise(2, 2);
  noise << 0.09, 0.02, 0.02, 0.04;
  Vector y(2);
  y << 0.7, -1.2;
  const GaussianMixture prior = Mixture3();
  const ConditionalReference ref(prior, A, noise, y);
  EXPECT_FALSE(ref.noiseless());
  Vector log_w(3);
  for (int k = 0; k < 3; ++k) {
    const Matrix precision = prior.cov(k).inverse() + A.transpose() * noise.inverse() * A;
    const Matrix cov = precision.inverse();
    const Vector mean =
        cov * (prior.cov(k).inverse() * prior.mean(k) + A.transpose() * noise.inverse() * y);
    EXPECT_LE((ref.mean(k) - mean).cwiseAbs().maxCoeff(), 1e-12);
    EXPECT_LE((ref.cov(k) - cov).cwiseAbs().maxCoeff(), 1e-12);
    log_w(k) = std::log(prior.weight(k)) +
               LogNormal(y, A * prior.mean(k), A * prior.cov(k) * A.transpose() + noise);
  }
  const double log_evidence = log_w.maxCoeff() + std::log((log_w.array() - log_w.maxCoeff()).exp().sum());
  EXPECT_NEAR(ref.log_evidence(), log_evidence, 1e-12);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(ref.weights()(k), std::exp(log_w(k) - log_evidence), 1e-12);
}

// Noiseless imputation: the known coordinates equal y and the unknown ones have the Gaussian
// conditional μ_u + Σ_uk Σ_kk⁻¹ (y − μ_k), Σ_uu − Σ_uk Σ_kk⁻¹ Σ_ku.
TEST(ConditionalReference, NoiselessImputationIsTheGaussianConditional) {
  Vector observed(3);
  observed << NAN, 0.4, -0.3;
  const ConditionalReference ref = ConditionalReference::FromMasked(Gaussian3(), observed, 0.0);
  EXPECT_TRUE(ref.noiseless());
  const Matrix S = Cov3();
  const Vector mu = Vector::LinSpaced(3, -1, 1);
  const Matrix Skk = S.bottomRightCorner(2, 2);
  const Vector yk = observed.tail(2);
  const double mean_u = mu(0) + S.block(0, 1, 1, 2).row(0).dot(Skk.inverse() * (yk - mu.tail(2)));
  const double var_u = S(0, 0) - (S.block(0, 1, 1, 2) * Skk.inverse() * S.block(1, 0, 2, 1))(0, 0);
  EXPECT_NEAR(ref.Mean()(0), mean_u, 1e-12);
  EXPECT_NEAR(ref.Mean()(1), 0.4, 1e-12);
  EXPECT_NEAR(ref.Mean()(2), -0.3, 1e-12);
  EXPECT_NEAR(ref.Covariance()(0, 0), var_u, 1e-12);
  EXPECT_LE(ref.Covariance().bottomRightCorner(2, 2).cwiseAbs().maxCoeff(), 1e-12);
}

// The exact conditional score: for Σ_y ≻ 0 it is GaussianMixtureScore of the posterior; the
// noiseless score is the limit σ_obs → 0 of the noisy one. With σ_obs = 1e-6 the noisy posterior's
// covariances differ by O(σ_obs²) = 1e-12 and its marginal precision by O(σ_obs²/σ_t⁴) ≤ 1e-10 at
// the times used (σ_t ≥ 0.1), so the scores agree to 1e-7 relative.
TEST(ConditionalScore, IsTheScoreOfThePosteriorMarginal) {
  const VpSde vp(3);
  const GaussianMixture prior = Mixture3();
  Vector observed(3);
  observed << NAN, 0.4, NAN;
  const ConditionalReference noisy = ConditionalReference::FromMasked(prior, observed, 0.3);
  const ConditionalScore score(noisy, vp);
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (int k = 0; k < 3; ++k) {
    means.push_back(noisy.mean(k));
    covs.push_back(noisy.cov(k));
  }
  const GaussianMixtureScore direct(GaussianMixture(noisy.weights(), means, covs), vp);
  const Batch x = 2.0 * Batch::Random(3, 6);
  const RowVector t = RowVector::LinSpaced(6, 0.05, 1.0);
  Batch s(3, 6), s_direct(3, 6);
  score.Evaluate(x, t, s);
  direct.Evaluate(x, t, s_direct);
  EXPECT_LE((s - s_direct).cwiseAbs().maxCoeff(), 1e-12 * (1.0 + s_direct.cwiseAbs().maxCoeff()));

  const ConditionalReference exact = ConditionalReference::FromMasked(prior, observed, 0.0);
  const ConditionalReference almost = ConditionalReference::FromMasked(prior, observed, 1e-6);
  const ConditionalScore exact_score(exact, vp), almost_score(almost, vp);
  const RowVector later = RowVector::LinSpaced(6, 0.2, 1.0);  // σ_t ≥ 0.14
  Batch a(3, 6), b(3, 6);
  exact_score.Evaluate(x, later, a);
  almost_score.Evaluate(x, later, b);
  for (int j = 0; j < 6; ++j) {
    EXPECT_LE((a.col(j) - b.col(j)).norm(), 1e-7 * (1.0 + a.col(j).norm())) << j;
  }
  // σ_t = 0 has no density for noiseless observations.
  EXPECT_THAT([&] { exact_score.Evaluate(x.col(0), RowVector::Zero(1), a.col(0)); }, ThrowsMessage<InvalidArgument>(HasSubstr("sigma_t")));
  // Columns do not depend on their batch.
  for (int j = 0; j < 6; ++j) {
    Batch one(3, 1);
    exact_score.Evaluate(x.col(j), later.segment(j, 1), one);
    EXPECT_EQ(one.col(0), a.col(j));
  }
}

// Exact draws of x_t | y match the closed-form moments, the region probability and E‖s‖² within
// 5 standard errors (n = 40000; fixed seed).
TEST(ConditionalReference, SampleMarginalMatchesTheClosedForms) {
  const VeSde ve(3);
  for (double noise : {0.0, 0.25}) {
    Vector observed(3);
    observed << 0.5, NAN, NAN;
    const ConditionalReference ref = ConditionalReference::FromMasked(Mixture3(), observed, noise);
    const double t = 0.3;
    const int n = 40000;
    Batch x(3, n);
    ref.SampleMarginal(ve, t, NoiseStream(21, Stream::kData), 0, x);
    const MomentEstimate m = EstimateMoments(x);
    const Vector mean = ref.MarginalMean(ve, t);
    const Matrix cov = ref.MarginalCovariance(ve, t);
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(m.mean(i), mean(i), 5.0 * m.mean_stderr(i)) << "noise " << noise;
      for (int j = 0; j < 3; ++j) {
        EXPECT_NEAR(m.cov(i, j), cov(i, j), 5.0 * m.cov_stderr(i, j)) << i << j;
      }
    }
    Vector u(3);
    u << 0.2, 1.0, -0.5;
    const double c = 0.3;
    const double p = ref.MarginalProbabilityBelow(ve, t, u, c);
    double fraction = 0.0;
    for (int j = 0; j < n; ++j) fraction += u.dot(x.col(j)) <= c ? 1.0 : 0.0;
    fraction /= n;
    EXPECT_NEAR(fraction, p, 5.0 * std::sqrt(p * (1.0 - p) / n));
  }
  // E‖s‖² for one component: MC mean of ‖s‖² over exact draws.
  Vector observed(3);
  observed << NAN, -0.2, NAN;
  const ConditionalReference ref = ConditionalReference::FromMasked(Gaussian3(), observed, 0.0);
  const VpSde vp(3);
  const ConditionalScore score(ref, vp);
  const double t = 0.4;
  const int n = 40000;
  Batch x(3, n), s(3, n);
  ref.SampleMarginal(vp, t, NoiseStream(4, Stream::kData), 0, x);
  score.Evaluate(x, RowVector::Constant(n, t), s);
  const RowVector norms = s.colwise().squaredNorm();
  const double mean = norms.mean();
  const double sd = std::sqrt((norms.array() - mean).square().sum() / (n - 1));
  EXPECT_NEAR(mean, *score.ExpectedSquaredNorm(t), 5.0 * sd / std::sqrt(n));
  EXPECT_FALSE(ConditionalScore(ConditionalReference::FromMasked(Mixture3(), observed, 0.0), vp)
                   .ExpectedSquaredNorm(t)
                   .has_value());
}

// p_t(y | x) over the classes sums to one; the gradient matches central differences (h = 1e-5,
// truncation h²/6·|f'''| ≲ 1e-9, rounding ≲ 1e-11; tolerance 1e-7); the class-conditional law has
// the renormalized weights.
TEST(MixtureLabelLikelihood, IsTheExactClassPosterior) {
  const VpSde vp(3);
  const MixtureLabelLikelihood labels(Mixture3(), vp, {0, 1, 0});
  EXPECT_EQ(labels.num_classes(), 2);
  EXPECT_NEAR(labels.ClassProbability(0), 0.7, 1e-15);
  const GaussianMixture c0 = labels.ClassConditional(0);
  EXPECT_EQ(c0.num_components(), 2);
  EXPECT_NEAR(c0.weight(0), 0.5 / 0.7, 1e-15);
  const Batch x = Batch::Random(3, 5);
  const RowVector t = RowVector::LinSpaced(5, 0.05, 0.9);
  RowVector l0(5), l1(5);
  Batch g0(3, 5), g1(3, 5);
  labels.Evaluate(0, x, t, l0, g0);
  labels.Evaluate(1, x, t, l1, g1);
  for (int j = 0; j < 5; ++j) {
    EXPECT_NEAR(std::exp(l0(j)) + std::exp(l1(j)), 1.0, 1e-14);
    for (int i = 0; i < 3; ++i) {
      const double h = 1e-5;
      Batch xp = x.col(j), xm = x.col(j), g(3, 1);
      xp(i, 0) += h;
      xm(i, 0) -= h;
      RowVector lp(1), lm(1);
      labels.Evaluate(0, xp, t.segment(j, 1), lp, g);
      labels.Evaluate(0, xm, t.segment(j, 1), lm, g);
      EXPECT_NEAR(g0(i, j), (lp(0) - lm(0)) / (2 * h), 1e-7);
    }
  }
  EXPECT_THAT([&] { labels.Evaluate(2, x, t, l0, g0); }, ThrowsMessage<InvalidArgument>(HasSubstr("label")));
  EXPECT_THAT([&] { MixtureLabelLikelihood(Mixture3(), vp, {0, 2, 0}); }, ThrowsMessage<InvalidArgument>(HasSubstr("class")));
  EXPECT_THAT([&] { MixtureLabelLikelihood(Mixture3(), vp, {0, 1}); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels.size()")));
  EXPECT_THAT([&] { MixtureLabelLikelihood(Mixture3(), vp, {0, -1, 0}); }, ThrowsMessage<InvalidArgument>(HasSubstr("labels[1]")));
}

}  // namespace
}  // namespace scoresde
