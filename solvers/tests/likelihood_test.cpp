#include "scoresde/solvers/likelihood.hpp"

#include <cmath>
#include <functional>
#include <numbers>

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/callback_sde.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

// Data N(μ, Σ) pushed through a scalar-affine SDE: p_t = N(α μ, C_t), C_t = α² Σ + σ_t² I, so
// s = −C_t⁻¹ (x − α μ), ∇·s = −tr C_t⁻¹ and (∂s/∂x) v = −C_t⁻¹ v. Capabilities can be switched
// off to exercise each divergence path.
class GaussianScore : public ScoreModel {
 public:
  GaussianScore(const ScalarAffineSde& sde, Vector mean, Matrix cov, bool divergence, bool jvp)
      : sde_(sde), mean_(std::move(mean)), cov_(std::move(cov)), divergence_(divergence),
        jvp_(jvp) {}
  int dim() const override { return static_cast<int>(mean_.size()); }
  Matrix Cov(double t) const {
    const double a = sde_.MeanCoefficient(t);
    const double sigma = sde_.MarginalStd(t);
    return a * a * cov_ + sigma * sigma * Matrix::Identity(dim(), dim());
  }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      s.col(j) = -Cov(t(j)).ldlt().solve(x.col(j) - sde_.MeanCoefficient(t(j)) * mean_);
    }
  }
  bool HasDivergence() const override { return divergence_; }
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) div(j) = -Cov(t(j)).inverse().trace();
  }
  bool HasJvp() const override { return jvp_; }
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override {
    Evaluate(x, t, s);
    for (Eigen::Index j = 0; j < x.cols(); ++j) jv.col(j) = -Cov(t(j)).ldlt().solve(v.col(j));
  }
  double LogDensity(const Vector& x, double t) const {
    const Matrix c = Cov(t);
    const Vector r = x - sde_.MeanCoefficient(t) * mean_;
    const auto ldlt = c.ldlt();
    return -0.5 * r.dot(ldlt.solve(r)) - 0.5 * ldlt.vectorD().array().log().sum() -
           0.5 * dim() * std::log(2.0 * std::numbers::pi);
  }
  LogDensityFunction Prior() const {
    return [this](ConstBatchRef x, RowVectorRef logp) {
      for (Eigen::Index j = 0; j < x.cols(); ++j) logp(j) = LogDensity(x.col(j), sde_.t_final());
    };
  }

 private:
  const ScalarAffineSde& sde_;
  Vector mean_;
  Matrix cov_;
  bool divergence_;
  bool jvp_;
};

// Coordinatewise log-normal marginals under GBM (design.md section 2): X_t ~ LogNormal(m_t, v_t),
// m_t = m_0 + (μ − σ²/2) t, v_t = s_0² + σ² t; s_i = −(1 + (ln x_i − m_i)/v_i)/x_i and
// ∂_i s_i = (1 + (ln x_i − m_i − 1)/v_i)/x_i².
class LogNormalScore : public ScoreModel {
 public:
  LogNormalScore(int dim, double m0, double s0, double mu, double sigma)
      : dim_(dim), m0_(m0), s0_(s0), mu_(mu), sigma_(sigma) {}
  int dim() const override { return dim_; }
  double M(double t) const { return m0_ + (mu_ - 0.5 * sigma_ * sigma_) * t; }
  double V(double t) const { return s0_ * s0_ + sigma_ * sigma_ * t; }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      s.col(j) = -(1.0 + ((x.col(j).array().log() - M(t(j))) / V(t(j)))) / x.col(j).array();
    }
  }
  bool HasJvp() const override { return true; }
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override {
    Evaluate(x, t, s);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Eigen::ArrayXd xj = x.col(j).array();
      jv.col(j) = ((1.0 + (xj.log() - M(t(j)) - 1.0) / V(t(j))) / xj.square() *
                   v.col(j).array()).matrix();
    }
  }
  double LogDensity(const Vector& x, double t) const {
    const Eigen::ArrayXd l = x.array().log();
    return (-l - 0.5 * std::log(2.0 * std::numbers::pi * V(t)) -
            (l - M(t)).square() / (2.0 * V(t))).sum();
  }

 private:
  int dim_;
  double m0_, s0_, mu_, sigma_;
};

Matrix TestCovariance() {
  Matrix c(3, 3);
  c << 0.5, 0.2, -0.1, 0.2, 1.4, 0.3, -0.1, 0.3, 0.8;
  return c;
}

Batch TestPoints() {
  Batch x(3, 4);
  x << 0.3, -1.0, 0.8, 0.0, 1.1, 0.4, -0.6, 0.2, -0.2, 0.9, 0.1, -1.3;
  return x;
}

TEST(LikelihoodOptions, DefaultsAreValid) { EXPECT_NO_THROW(LikelihoodOptions{}.Validate()); }

TEST(LikelihoodOptions, RejectsEachBadOption) {
  LikelihoodOptions options;
  options.eps = -1.0;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  options = {};
  options.num_probes = 0;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("num_probes")));
  options = {};
  options.ode.atol = 0.0;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("atol")));
}

// ∇·f̃ against the trace of the central-difference Jacobian of ProbabilityFlow::Drift (step
// δ = 1e-5 max(1, |x_i|): truncation O(δ² f''') and rounding O(ε_mach |f| / δ), both ≤ 1e-9
// here, so 1e-7 (1 + |div|) is a wide margin), for each kind of SDE the estimator distinguishes.
TEST(LikelihoodEstimator, DriftDivergenceMatchesFiniteDifferencesOfTheDrift) {
  const auto check = [](const Sde& sde, const ScoreModel& score, const Batch& x, double t,
                        const char* name) {
    const LikelihoodEstimator estimator(sde, score, {}, [](ConstBatchRef, RowVectorRef l) {
      l.setZero();
    });
    const ProbabilityFlow flow(sde, score);
    const int d = sde.dim();
    const RowVector times = RowVector::Constant(x.cols(), t);
    RowVector div(x.cols());
    estimator.DriftDivergence(x, times, div);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      double trace = 0.0;
      for (int i = 0; i < d; ++i) {
        const double delta = 1e-5 * std::max(1.0, std::abs(x(i, j)));
        Batch plus = x.col(j), minus = x.col(j);
        plus(i, 0) += delta;
        minus(i, 0) -= delta;
        Batch fp(d, 1), fm(d, 1);
        flow.Drift(plus, times.head(1), fp);
        flow.Drift(minus, times.head(1), fm);
        trace += (fp(i, 0) - fm(i, 0)) / (2.0 * delta);
      }
      EXPECT_NEAR(div(j), trace, 1e-7 * (1.0 + std::abs(trace))) << name << " column " << j;
    }
  };
  const VpSde vp(3);
  const GaussianScore by_divergence(vp, Vector::Constant(3, 0.2), TestCovariance(), true, false);
  const GaussianScore by_jvp(vp, Vector::Constant(3, 0.2), TestCovariance(), false, true);
  check(vp, by_divergence, TestPoints(), 0.4, "vp divergence");
  check(vp, by_jvp, TestPoints(), 0.4, "vp jvp");
  const VeSde ve(3);
  const GaussianScore ve_score(ve, Vector::Zero(3), TestCovariance(), true, true);
  check(ve, ve_score, TestPoints(), 0.7, "ve");

  // GBM: state-dependent diagonal noise, closed-form SDE part, score part from d JVPs.
  const GbmSde gbm(2, 0.1, 0.6);
  const LogNormalScore lognormal(2, 0.1, 0.4, 0.1, 0.6);
  Batch positive(2, 3);
  positive << 0.5, 1.2, 2.0, 0.9, 1.7, 0.3;
  check(gbm, lognormal, positive, 0.5, "gbm");
  // The same GBM as callbacks: the SDE part then comes from central differences.
  CallbackSde::Functions functions;
  functions.drift = [](ConstBatchRef x, double, BatchRef f) { f = 0.1 * x; };
  functions.diagonal_diffusion = [](ConstBatchRef x, double, BatchRef g) { g = 0.6 * x; };
  functions.divergence_of_ggt = [](ConstBatchRef x, double, BatchRef div) {
    div = 2.0 * 0.36 * x;
  };
  const CallbackSde callback(2, 2, NoiseType::kDiagonal, 1.0, functions);
  check(callback, lognormal, positive, 0.5, "callback gbm");

  // A linear SDE with general, time-dependent G: SDE part tr F, score part from JVPs weighted by
  // GGᵀ.
  LinearSde::Options linear_options;
  linear_options.drift_matrix = Matrix::Zero(3, 3);
  linear_options.drift_matrix << -0.5, 0.2, 0.0, -0.1, -0.3, 0.0, 0.0, 0.1, -0.2;
  linear_options.diffusion = [](double t) {
    Matrix g(3, 2);
    g << 1.0, 0.0, 0.3 * t, 0.8, 0.1, 0.5;
    return g;
  };
  const LinearSde linear(linear_options);
  check(linear, by_jvp, TestPoints(), 0.4, "linear");
}

// Gaussian data under VP with the exact prior: ∇·f̃ = a d + ½ g² tr C_t⁻¹ does not depend on x,
// so Δ's error is its own accumulated local error, ≤ steps · (atol + rtol (|Δ| + h|Δ'|)) ≤
// accepted · (atol + 2 rtol |Δ|max) (no feedback from x); the prior adds |∇ log p_T| times x_T's
// error, bounded the same way with |x| ≤ 3 and an amplification ≤ sqrt(c_T / c_ε) ≤ 3. The number
// of evaluations bounds the number of accepted steps.
TEST(LikelihoodEstimator, ExactDivergenceGivesTheGaussianLogDensity) {
  const VpSde sde(3);
  const Vector mean = Vector::Constant(3, 0.2);
  for (bool use_divergence : {true, false}) {
    const GaussianScore score(sde, mean, TestCovariance(), use_divergence, !use_divergence);
    LikelihoodOptions options;
    options.ode.rtol = options.ode.atol = 1e-9;
    options.ode.num_threads = 2;
    const LikelihoodEstimator estimator(sde, score, options, score.Prior());
    const Batch x = TestPoints();
    const LikelihoodResult result = estimator.Compute(x);
    ASSERT_TRUE(result.summary.ok()) << result.summary.BriefReport();
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double exact = score.LogDensity(x.col(j), options.eps);
      const double local = options.ode.atol + 2.0 * 10.0 * options.ode.rtol;
      const Vector prior_gradient =
          score.Cov(1.0).ldlt().solve(result.latent.col(j) - sde.MeanCoefficient(1.0) * mean);
      const double bound =
          result.nfe(j) * local * (1.0 + 3.0 * prior_gradient.lpNorm<1>());
      EXPECT_NEAR(result.logp(j), exact, bound) << "column " << j;
      EXPECT_EQ(result.standard_error(j), 0.0);
      EXPECT_DOUBLE_EQ(result.bits_per_dim(j), -result.logp(j) / (3 * std::numbers::ln2));
    }
    // Standard prior N(0, I): the same solve, another log p_T.
    const LikelihoodEstimator standard(sde, score, options);
    const LikelihoodResult with_standard = standard.Compute(x);
    RowVector normal(x.cols());
    sde.PriorLogDensity(with_standard.latent, normal);
    EXPECT_LT((with_standard.prior_logp - normal).cwiseAbs().maxCoeff(), 1e-12);
  }
}

// Gaussian probes on a diagonal-precision score: εᵀ C⁻¹ ε has variance 2 Σ c_i⁻², so the estimate
// varies; its mean over K = 400 probes must lie within 5 standard errors of the exact value
// (5σ, fixed seed), and the reported standard error must match the spread.
TEST(LikelihoodEstimator, HutchinsonIsUnbiasedWithItsStandardError) {
  const VpSde sde(3);
  const GaussianScore score(sde, Vector::Zero(3), TestCovariance(), false, true);
  LikelihoodOptions options;
  options.ode.rtol = options.ode.atol = 1e-8;
  options.divergence = DivergenceEstimator::kHutchinsonGaussian;
  options.num_probes = 400;
  options.seed = 7;
  const LikelihoodEstimator estimator(sde, score, options, score.Prior());
  const Batch x = TestPoints();
  const LikelihoodResult result = estimator.Compute(x);
  ASSERT_TRUE(result.summary.ok());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double exact = score.LogDensity(x.col(j), options.eps);
    EXPECT_GT(result.standard_error(j), 0.0);
    EXPECT_NEAR(result.logp(j), exact, 5.0 * result.standard_error(j)) << "column " << j;
  }
}

TEST(LikelihoodEstimator, ProbesAreKeyedBySampleForAnyThreadsOrSplit) {
  const VpSde sde(3);
  const GaussianScore score(sde, Vector::Zero(3), TestCovariance(), false, true);
  LikelihoodOptions options;
  options.divergence = DivergenceEstimator::kHutchinsonRademacher;
  options.num_probes = 3;
  const Batch x = TestPoints();
  const LikelihoodResult reference = LikelihoodEstimator(sde, score, options).Compute(x);
  for (int threads : {2, 7}) {
    options.ode.num_threads = threads;
    options.ode.chunk_size = 1;
    const LikelihoodResult result = LikelihoodEstimator(sde, score, options).Compute(x);
    EXPECT_TRUE((result.logp.array() == reference.logp.array()).all()) << threads;
  }
  const LikelihoodResult tail =
      LikelihoodEstimator(sde, score, options).Compute(x.rightCols(2), 2);
  EXPECT_TRUE((tail.logp.array() == reference.logp.tail(2).array()).all());
}

// GBM with log-normal data: state-dependent noise, ∇·(GGᵀ) ≠ 0; exact prior p_T.
TEST(LikelihoodEstimator, GbmLikelihoodMatchesTheLogNormalDensity) {
  const GbmSde sde(2, 0.1, 0.6);
  const LogNormalScore score(2, 0.1, 0.4, 0.1, 0.6);
  LikelihoodOptions options;
  options.eps = 0.0;
  options.ode.rtol = options.ode.atol = 1e-9;
  const LikelihoodEstimator estimator(
      sde, score, options, [&](ConstBatchRef x, RowVectorRef logp) {
        for (Eigen::Index j = 0; j < x.cols(); ++j) logp(j) = score.LogDensity(x.col(j), 1.0);
      });
  Batch x(2, 3);
  x << 0.5, 1.2, 2.0, 0.9, 1.7, 0.3;
  const LikelihoodResult result = estimator.Compute(x);
  ASSERT_TRUE(result.summary.ok());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    // The log-density has curvature O(1/x²) ≤ 12 here; local tolerances ~1e-9 over ≲ 100
    // evaluations, amplified by at most that curvature: 1e-5 is a wide bound.
    EXPECT_NEAR(result.logp(j), score.LogDensity(x.col(j), 0.0), 1e-5) << "column " << j;
  }
}

TEST(LikelihoodEstimator, RejectsBadInput) {
  const VpSde sde(3);
  const GaussianScore plain(sde, Vector::Zero(3), TestCovariance(), false, false);
  EXPECT_THAT([&] { LikelihoodEstimator(sde, plain); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("divergence")));
  LikelihoodOptions hutchinson;
  hutchinson.divergence = DivergenceEstimator::kHutchinsonRademacher;
  EXPECT_NO_THROW(LikelihoodEstimator(sde, plain, hutchinson));
  const GbmSde gbm(3, 0.0, 0.5);
  const LogNormalScore lognormal(3, 0.0, 0.5, 0.0, 0.5);
  EXPECT_THAT([&] { LikelihoodEstimator(gbm, lognormal); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("prior")));
  LikelihoodOptions late;
  late.eps = 1.0;
  const GaussianScore score(sde, Vector::Zero(3), TestCovariance(), true, true);
  EXPECT_THAT([&] { LikelihoodEstimator(sde, score, late); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  const LikelihoodEstimator estimator(sde, score);
  EXPECT_THAT([&] { estimator.Compute(Batch::Zero(2, 3)); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("x")));
  Batch bad = TestPoints();
  bad(2, 1) = INFINITY;
  EXPECT_THAT([&] { estimator.Compute(bad); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("x(2, 1)")));
}

TEST(LikelihoodEstimator, HutchinsonWithoutJvpUsesCentralDifferencesAndSaysSo) {
  const VpSde sde(3);
  const GaussianScore plain(sde, Vector::Zero(3), TestCovariance(), false, false);
  const GaussianScore exact(sde, Vector::Zero(3), TestCovariance(), true, false);
  LikelihoodOptions options;
  options.divergence = DivergenceEstimator::kHutchinsonRademacher;
  options.num_probes = 2;
  const LikelihoodResult differenced = LikelihoodEstimator(sde, plain, options).Compute(
      TestPoints());
  ASSERT_EQ(differenced.summary.warnings.size(), 1u);
  EXPECT_THAT(differenced.summary.warnings[0], HasSubstr("central differences"));
  const GaussianScore with_jvp(sde, Vector::Zero(3), TestCovariance(), false, true);
  const LikelihoodResult analytic =
      LikelihoodEstimator(sde, with_jvp, options).Compute(TestPoints());
  // The score is linear in x, so central differences are exact up to rounding (ε_mach/δ ≈ 1e-11
  // per evaluation, over ≲ 200 evaluations).
  EXPECT_LT((differenced.logp - analytic.logp).cwiseAbs().maxCoeff(), 1e-7);
}

TEST(BitsPerDim, DequantizationConventions) {
  const double logp = -100.0;
  EXPECT_DOUBLE_EQ(BitsPerDim(logp, 10), 100.0 / (10 * std::numbers::ln2));
  EXPECT_DOUBLE_EQ(DequantizedBitsPerDim(logp, 10, 0.0, 1.0), BitsPerDim(logp, 10) + 8.0);
  EXPECT_DOUBLE_EQ(DequantizedBitsPerDim(logp, 10, -1.0, 1.0), BitsPerDim(logp, 10) + 7.0);
  EXPECT_THROW(DequantizedBitsPerDim(logp, 10, 1.0, 1.0), InvalidArgument);
  Batch k(2, 3);
  k << 0, 255, 17, 3, 128, 64;
  Batch y(2, 3);
  const NoiseStream noise(3, Stream::kData);
  Dequantize(k, -1.0, 1.0, noise, 0, y);
  for (Eigen::Index j = 0; j < 3; ++j) {
    for (Eigen::Index i = 0; i < 2; ++i) {
      const double lower = -1.0 + 2.0 * k(i, j) / 256.0;
      EXPECT_GT(y(i, j), lower);
      EXPECT_LT(y(i, j), lower + 2.0 / 256.0);
    }
  }
  k(1, 2) = 2.5;
  EXPECT_THAT([&] { Dequantize(k, 0.0, 1.0, noise, 0, y); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("k(1, 2)")));
}

}  // namespace
}  // namespace scoresde
