// Virtual Brownian paths: increments and space-time integrals have the Gaussian laws of Brownian
// motion on every interval, disjoint intervals are independent, the bridge splits a node with the
// right conditional law, and draws reproduce for any thread count and chunking.
//
// Tolerances: 5 standard errors of each Monte-Carlo moment (fixed seed). For the variance of a
// centred Gaussian the estimate's standard error is √(2/n)·σ²; for a covariance c of a bivariate
// Gaussian with variances s1, s2 it is √((s1 s2 + c²)/n).
#include <cmath>

#include <gtest/gtest.h>

#include "scoresde/sde/brownian.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

constexpr double kSigmas = 5.0;
constexpr int64_t kSamples = 40000;

// Checks mean 0 and variance `variance` for every row of x (each row one coordinate).
void ExpectCentredWithVariance(const Batch& x, double variance, const char* what) {
  const MomentEstimate m = EstimateMoments(x);
  const double n = static_cast<double>(x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    EXPECT_LT(std::abs(m.mean(i)), kSigmas * std::sqrt(variance / n)) << what << " row " << i;
    EXPECT_LT(std::abs(m.cov(i, i) - variance), kSigmas * std::sqrt(2.0 / n) * variance)
        << what << " row " << i;
  }
}

double Covariance(const Eigen::RowVectorXd& a, const Eigen::RowVectorXd& b) {
  return ((a.array() - a.mean()) * (b.array() - b.mean())).sum() / (a.size() - 1);
}

TEST(BrownianSuite, IncrementsHaveVarianceEqualToTheirLength) {
  const BrownianPath path(3, 1, {.t0 = 0.0, .t1 = 2.0, .max_depth = 30});
  // Dyadic and non-dyadic intervals at several scales (non-dyadic ends round to the 2/2^30 grid,
  // which changes lengths by < 2e-9, far below the statistical tolerance).
  const double intervals[][2] = {{0.0, 2.0}, {0.5, 0.75}, {1.0 / 3.0, 0.7}, {1.2, 1.2 + 1e-4}};
  for (const auto& interval : intervals) {
    Batch w(3, kSamples);
    path.Increment(interval[0], interval[1], 0, w);
    ExpectCentredWithVariance(w, interval[1] - interval[0], "dW");
  }
}

TEST(BrownianSuite, SpaceTimeIntegralHasItsGaussianLaw) {
  // Z = ∫_s^{s+h}(W_u − W_s) du: Var Z = h³/3, Cov(ΔW, Z) = h²/2.
  const BrownianPath path(2, 2);
  const double starts_and_lengths[][2] = {{0.0, 1.0}, {0.25, 0.125}, {0.3, 0.2}};
  for (const auto& s_h : starts_and_lengths) {
    const double s = s_h[0], h = s_h[1];
    Batch w(2, kSamples), z(2, kSamples);
    path.Increment(s, s + h, 0, w, z);
    ExpectCentredWithVariance(z, h * h * h / 3.0, "Z");
    const double n = static_cast<double>(kSamples);
    const double c = h * h / 2.0;
    const double se = std::sqrt((h * h * h * h / 3.0 + c * c) / n);
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(Covariance(w.row(i), z.row(i)), c, kSigmas * se) << "s = " << s << " h = " << h;
    }
  }
}

TEST(BrownianSuite, DisjointIntervalsAreIndependentAndBridgesAreConsistent) {
  const BrownianPath path(1, 3);
  Batch left(1, kSamples), right(1, kSamples), whole(1, kSamples);
  path.Increment(0.25, 0.5, 0, left);
  path.Increment(0.5, 0.75, 0, right);
  path.Increment(0.25, 0.75, 0, whole);
  const double n = static_cast<double>(kSamples);
  // Independent halves: covariance 0 with standard error √(s1 s2 / n) = 0.25/√n.
  EXPECT_LT(std::abs(Covariance(left.row(0), right.row(0))), kSigmas * 0.25 / std::sqrt(n));
  // Bridge: the midpoint deviation M = W(s, m) − W(s, t)/2 has variance h/4 and is independent
  // of W(s, t) (h = 0.5 here).
  const Batch deviation = left - 0.5 * whole;
  ExpectCentredWithVariance(deviation, 0.125, "bridge deviation");
  EXPECT_LT(std::abs(Covariance(deviation.row(0), whole.row(0))),
            kSigmas * std::sqrt(0.125 * 0.5 / n));
  // And the halves add up to the whole (same tree nodes).
  EXPECT_LT((left + right - whole).cwiseAbs().maxCoeff(), 1e-14);
}

TEST(BrownianSuite, PathsAreBitIdenticalForAnyThreadCountAndChunking) {
  const BrownianPath path(3, 77);
  const int64_t samples = 300;
  Batch reference_w(3, samples), reference_z(3, samples);
  path.Increment(0.1, 0.6, 0, reference_w, reference_z);
  for (int threads : {1, 2, 7}) {
    const ExecutionContext context(threads);
    for (int64_t grain : {int64_t{1}, int64_t{17}, samples}) {
      Batch w(3, samples), z(3, samples);
      context.ParallelFor(0, samples, grain, [&](int64_t begin, int64_t end) {
        path.Increment(0.1, 0.6, begin, w.middleCols(begin, end - begin),
                       z.middleCols(begin, end - begin));
      });
      EXPECT_EQ(w, reference_w) << threads << " threads, grain " << grain;
      EXPECT_EQ(z, reference_z) << threads << " threads, grain " << grain;
    }
  }
}

}  // namespace
}  // namespace scoresde
