#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <Eigen/Dense>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/context.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Matrix Spd(int d, double scale) {
  Matrix m = Matrix::Identity(d, d) * scale;
  for (int i = 0; i + 1 < d; ++i) m(i, i + 1) = m(i + 1, i) = 0.3 * scale;
  return m;
}

GaussianMixture TwoComponents(int d) {
  Vector w(2);
  w << 0.4, 0.6;
  return GaussianMixture(w, {Vector::Constant(d, -1.0), Vector::LinSpaced(d, 0.5, 1.5)},
                         {Spd(d, 0.5), Spd(d, 1.2)});
}

LinearSde::Options ExampleLinear() {
  Matrix f(2, 2);
  f << -1.0, 0.5, 0.0, -2.0;
  Vector c(2);
  c << 0.3, -0.1;
  return {f, c,
          [](double t) {
            Matrix g(2, 3);
            g << 1.0 + 0.5 * std::sin(2.0 * t), 0.3 * t, 0.2, 0.1, 0.8 + 0.2 * std::cos(t),
                0.4 * t * t;
            return g;
          },
          1.0};
}

Batch Points(int d, int b, uint64_t seed) {
  Batch x(d, b);
  NoiseStream(seed, Stream::kUser).FillNormal(0, 0, 0, x);
  return 1.5 * x;
}

// Relative agreement of two evaluations of the same formula by different factorizations
// (eigendecomposition vs Cholesky) of matrices with κ ≤ 10: ~100 ε.
constexpr double kTol = 1e-12;

TEST(GaussianMixtureScore, RejectsBadArguments) {
  const VpSde vp(3);
  EXPECT_THAT([&] { GaussianMixtureScore(TwoComponents(2), vp); },
              ThrowsMessage<InvalidArgument>(HasSubstr("p0.dim() = 2")));
  const LinearSde linear(ExampleLinear());
  EXPECT_THAT([&] { GaussianMixtureScore(TwoComponents(3), linear); },
              ThrowsMessage<InvalidArgument>(HasSubstr("p0.dim() = 3")));
  const VpSde vp2(2);
  const GaussianMixtureScore score(TwoComponents(2), vp2);
  Batch x = Batch::Zero(2, 3), s(2, 3);
  RowVector t(3);
  t << 0.1, 1.2, 0.3;
  EXPECT_THAT([&] { score.Evaluate(x, t, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t[1] = 1.2")));
  t << 0.1, 0.2, std::nan("");
  EXPECT_THAT([&] { score.Evaluate(x, t, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t[2] = nan")));
  RowVector t2(2);
  t2 << 0.1, 0.2;
  EXPECT_THAT([&] { score.Evaluate(x, t2, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": t has shape")));
  t << 0.1, 0.2, 0.3;
  Batch s_wrong(3, 3);
  EXPECT_THAT([&] { score.Evaluate(x, t, s_wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": s has shape")));
  RowVector logp(2);
  EXPECT_THAT([&] { score.LogDensity(x, t, logp); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": logp has shape")));
  EXPECT_THAT([&] { score.Divergence(x, t, logp); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": div has shape")));
  EXPECT_THAT([&] { score.EvaluateWithJvp(x, t, Batch::Zero(2, 2), s, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": v has shape")));
  EXPECT_THAT([&] { score.ExpectedSquaredNorm(-1.0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t = -1")));
  EXPECT_THAT([&] { score.Marginal(2.0); }, ThrowsMessage<InvalidArgument>(HasSubstr("t = 2")));
}

// The scalar-affine path (eigendecompositions, grouped by time) agrees with the marginal built
// by TransitionOf + Transformed (Cholesky), for every family and a batch mixing times.
TEST(GaussianMixtureScore, ScalarAffinePathMatchesMarginal) {
  VeSde::Options ve_reference;
  ve_reference.kernel = VeKernel::kReference;
  ve_reference.sigma_max = 5.0;
  VeSde::Options ve_exact = ve_reference;
  ve_exact.kernel = VeKernel::kExact;
  const VeSde ve1(3, ve_reference);
  const VeSde ve2(3, ve_exact);
  const VpSde vp(3);
  const SubVpSde subvp(3);
  RowVector t(7);
  t << 0.0, 0.1, 0.1, 0.5, 0.5, 0.5, 1.0;
  const Batch x = Points(3, 7, 1);
  const Batch v = Points(3, 7, 2);
  for (const ScalarAffineSde* sde :
       {static_cast<const ScalarAffineSde*>(&ve1), static_cast<const ScalarAffineSde*>(&ve2),
        static_cast<const ScalarAffineSde*>(&vp), static_cast<const ScalarAffineSde*>(&subvp)}) {
    const GaussianMixtureScore score(TwoComponents(3), *sde);
    Batch s(3, 7), s2(3, 7), jv(3, 7);
    RowVector logp(7), div(7);
    score.Evaluate(x, t, s);
    score.LogDensity(x, t, logp);
    score.Divergence(x, t, div);
    score.EvaluateWithJvp(x, t, v, s2, jv);
    EXPECT_EQ(s, s2);
    for (int j = 0; j < 7; ++j) {
      const GaussianMixture marginal = score.Marginal(t(j));
      Batch sj(3, 1), jvj(3, 1);
      RowVector lj(1), dj(1);
      marginal.Score(x.col(j), sj);
      marginal.LogDensity(x.col(j), lj);
      marginal.ScoreDivergence(x.col(j), dj);
      marginal.ScoreJvp(x.col(j), v.col(j), jvj);
      EXPECT_LE((s.col(j) - sj).norm(), kTol * std::max(1.0, sj.norm()));
      EXPECT_NEAR(logp(j), lj(0), kTol * std::max(1.0, std::abs(lj(0))));
      EXPECT_NEAR(div(j), dj(0), kTol * std::max(1.0, std::abs(dj(0))));
      EXPECT_LE((jv.col(j) - jvj).norm(), kTol * std::max(1.0, jvj.norm()));
    }
  }
}

// Single Gaussian under VP: p_t = N(α μ, α² Σ + σ_t² I), s = −(α² Σ + σ_t² I)⁻¹ (x − α μ).
TEST(GaussianMixtureScore, VpGaussianClosedForm) {
  for (int d : {1, 2, 7}) {
    for (int b : {1, 3, 64}) {
      const VpSde vp(d);
      const Vector mu = Vector::LinSpaced(d, -1.0, 2.0);
      const Matrix cov = Spd(d, 0.8);
      const GaussianMixtureScore score(GaussianMixture::Gaussian(mu, cov), vp);
      const double t = 0.37;
      const double alpha = vp.MeanCoefficient(t);
      const double sigma = vp.MarginalStd(t);
      const Matrix c = alpha * alpha * cov + sigma * sigma * Matrix::Identity(d, d);
      const Batch x = Points(d, b, 3);
      const RowVector times = RowVector::Constant(b, t);
      Batch s(d, b);
      RowVector div(b);
      score.Evaluate(x, times, s);
      score.Divergence(x, times, div);
      const Batch expected = -c.inverse() * (x.colwise() - alpha * mu);
      EXPECT_LE((s - expected).norm(), kTol * std::max(1.0, expected.norm()));
      EXPECT_LE((div.array() + c.inverse().trace()).abs().maxCoeff(), kTol * d);
      EXPECT_NEAR(*score.ExpectedSquaredNorm(t), c.inverse().trace(), kTol * d);
    }
  }
}

TEST(GaussianMixtureScore, LinearSdePathMatchesMarginal) {
  const LinearSde sde(ExampleLinear());
  const GaussianMixtureScore score(TwoComponents(2), sde);
  RowVector t(5);
  t << 0.2, 0.2, 0.6, 0.6, 1.0;
  const Batch x = Points(2, 5, 4);
  const Batch v = Points(2, 5, 5);
  Batch s(2, 5), s2(2, 5), jv(2, 5);
  RowVector logp(5), div(5);
  score.Evaluate(x, t, s);
  score.LogDensity(x, t, logp);
  score.Divergence(x, t, div);
  score.EvaluateWithJvp(x, t, v, s2, jv);
  EXPECT_EQ(s, s2);
  for (int j = 0; j < 5; ++j) {
    const GaussianTransition k = TransitionOf(sde, t(j));
    const GaussianMixture marginal = TwoComponents(2).Transformed(k.A, k.b, k.Q);
    Batch sj(2, 1), jvj(2, 1);
    RowVector lj(1), dj(1);
    marginal.Score(x.col(j), sj);
    marginal.LogDensity(x.col(j), lj);
    marginal.ScoreDivergence(x.col(j), dj);
    marginal.ScoreJvp(x.col(j), v.col(j), jvj);
    // Same computation path: identical results.
    EXPECT_EQ(s.col(j), sj);
    EXPECT_EQ(logp(j), lj(0));
    EXPECT_EQ(div(j), dj(0));
    EXPECT_EQ(jv.col(j), jvj);
  }
  EXPECT_FALSE(score.ExpectedSquaredNorm(0.5).has_value());
  const GaussianMixtureScore single(GaussianMixture::Gaussian(Vector::Zero(2), Spd(2, 1.0)), sde);
  EXPECT_NEAR(*single.ExpectedSquaredNorm(0.5), single.Marginal(0.5).cov(0).inverse().trace(),
              kTol);
}

// VE with the reference kernel: p_0 is the data convolved with N(0, σmin² I), not the data.
TEST(GaussianMixtureScore, VeReferenceKernelAtTimeZero) {
  VeSde::Options options;
  options.sigma_min = 0.1;
  options.kernel = VeKernel::kReference;
  const VeSde reference(2, options);
  options.kernel = VeKernel::kExact;
  const VeSde exact(2, options);
  const Matrix cov = Spd(2, 0.5);
  const GaussianMixtureScore r(GaussianMixture::Gaussian(Vector::Zero(2), cov), reference);
  const GaussianMixtureScore e(GaussianMixture::Gaussian(Vector::Zero(2), cov), exact);
  EXPECT_LT((r.Marginal(0.0).cov(0) - cov - 0.01 * Matrix::Identity(2, 2)).norm(), 1e-15);
  EXPECT_LT((e.Marginal(0.0).cov(0) - cov).norm(), 1e-15);
}

TEST(GaussianMixtureScore, SampleMarginalIsChunkingInvariant) {
  const VpSde vp(2);
  const GaussianMixtureScore score(TwoComponents(2), vp);
  const NoiseStream noise(5, Stream::kPrior);
  Batch all(2, 64), a(2, 10), b(2, 54);
  score.SampleMarginal(0.3, noise, 0, all);
  score.SampleMarginal(0.3, noise, 0, a);
  score.SampleMarginal(0.3, noise, 10, b);
  EXPECT_EQ(all.leftCols(10), a);
  EXPECT_EQ(all.rightCols(54), b);
  Batch wrong(3, 4);
  EXPECT_THAT([&] { score.SampleMarginal(0.3, noise, 0, wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": x has shape")));
}

// A sample's bits depend only on the sample: one call over the batch, calls over uneven chunks,
// and concurrent calls from 1, 2 and 7 threads (grain 5) agree exactly, for both evaluation
// paths and sizes where Eigen's blocked kernels would otherwise differ in the last bits.
TEST(GaussianMixtureScore, BitwiseIndependentOfChunkingAndThreads) {
  for (int d : {1, 2, 7, 40}) {
    const VpSde vp(d);
    std::vector<std::unique_ptr<GaussianMixtureScore>> scores;
    scores.push_back(std::make_unique<GaussianMixtureScore>(TwoComponents(d), vp));
    const LinearSde linear(ExampleLinear());
    if (d == 2) scores.push_back(std::make_unique<GaussianMixtureScore>(TwoComponents(2), linear));
    for (const auto& score : scores) {
      const int b = 64;
      const Batch x = Points(d, b, 6);
      const Batch v = Points(d, b, 7);
      // Runs of equal times and times of their own, as shared and per-sample step control give.
      RowVector t(b);
      for (int j = 0; j < b; ++j) t(j) = j < b / 2 ? 0.4 : 0.05 + 0.9 * (j % 7) / 7.0;
      Batch s(d, b), s2(d, b), jv(d, b);
      RowVector logp(b), div(b);
      score->Evaluate(x, t, s);
      score->LogDensity(x, t, logp);
      score->Divergence(x, t, div);
      score->EvaluateWithJvp(x, t, v, s2, jv);
      for (int threads : {1, 2, 7}) {
        const ExecutionContext context(threads);
        Batch cs(d, b), cs2(d, b), cjv(d, b);
        RowVector clogp(b), cdiv(b);
        context.ParallelFor(0, b, 5, [&](int64_t first, int64_t last) {
          const Eigen::Index n = last - first;
          score->Evaluate(x.middleCols(first, n), t.segment(first, n), cs.middleCols(first, n));
          score->LogDensity(x.middleCols(first, n), t.segment(first, n), clogp.segment(first, n));
          score->Divergence(x.middleCols(first, n), t.segment(first, n), cdiv.segment(first, n));
          score->EvaluateWithJvp(x.middleCols(first, n), t.segment(first, n),
                                 v.middleCols(first, n), cs2.middleCols(first, n),
                                 cjv.middleCols(first, n));
        });
        EXPECT_EQ(cs, s) << "d = " << d << ", threads = " << threads;
        EXPECT_EQ(clogp, logp) << "d = " << d << ", threads = " << threads;
        EXPECT_EQ(cdiv, div) << "d = " << d << ", threads = " << threads;
        EXPECT_EQ(cs2, s2) << "d = " << d << ", threads = " << threads;
        EXPECT_EQ(cjv, jv) << "d = " << d << ", threads = " << threads;
      }
      // Copies into fresh matrices (other alignments) give the same bits too.
      const Batch tail = x.rightCols(b - 3);
      Batch s_tail(d, b - 3);
      score->Evaluate(tail, t.tail(b - 3), s_tail);
      EXPECT_EQ(s_tail, s.rightCols(b - 3)) << "d = " << d;
    }
  }
}

TEST(GaussianMixtureScore, DeclaresCapabilities) {
  const VpSde vp(2);
  const GaussianMixtureScore score(TwoComponents(2), vp);
  EXPECT_TRUE(score.HasDivergence());
  EXPECT_TRUE(score.HasJvp());
  EXPECT_EQ(score.dim(), 2);
  EXPECT_FALSE(score.ExpectedSquaredNorm(0.5).has_value());
}

}  // namespace
}  // namespace scoresde
