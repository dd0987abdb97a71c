// Counter-based streams: the draws have the laws they claim, are independent across coordinates,
// steps and samples, and are bit-identical for any thread count or chunking.
//
// Tolerances: moment checks use 5 standard errors of the estimate (a fixed seed; a correct
// generator fails a single 5σ check with probability 6e-7). Distribution checks use the
// Dvoretzky–Kiefer–Wolfowitz inequality P(sup|F_n − F| > ε) ≤ 2 exp(−2nε²), with ε chosen for
// a false-alarm probability of 1e-6.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

constexpr double kSigmas = 5.0;

double DkwBound(int64_t n) { return std::sqrt(std::log(2.0 / 1e-6) / (2.0 * n)); }

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// sup |F_n − F| for the empirical law of values against cdf.
template <typename Cdf>
double KolmogorovDistance(std::vector<double> values, Cdf cdf) {
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  double worst = 0.0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double f = cdf(values[i]);
    worst = std::max({worst, std::abs(f - i / n), std::abs((i + 1) / n - f)});
  }
  return worst;
}

TEST(RandomSuite, NormalsHaveStandardNormalMoments) {
  const int d = 8;
  const int64_t samples = 1 << 17;
  Batch z(d, samples);
  NoiseStream(2024, Stream::kPredictor).FillNormal(3, 0, 0, z);
  const double n = static_cast<double>(z.size());
  const Eigen::ArrayXd v = Eigen::Map<const Eigen::ArrayXd>(z.data(), z.size());
  const double mean = v.mean();
  const double var = (v - mean).square().mean();
  const double skew = (v - mean).cube().mean() / std::pow(var, 1.5);
  const double kurt = (v - mean).pow(4).mean() / (var * var) - 3.0;
  // Standard errors under N(0, 1): 1/√n, √(2/n), √(6/n), √(24/n).
  EXPECT_LT(std::abs(mean), kSigmas / std::sqrt(n));
  EXPECT_LT(std::abs(var - 1.0), kSigmas * std::sqrt(2.0 / n));
  EXPECT_LT(std::abs(skew), kSigmas * std::sqrt(6.0 / n));
  EXPECT_LT(std::abs(kurt), kSigmas * std::sqrt(24.0 / n));
}

TEST(RandomSuite, NormalsFollowTheNormalLaw) {
  Batch z(5, 200000);
  NoiseStream(7, Stream::kCorrector).FillNormal(0, 2, 1000, z);
  std::vector<double> values(z.data(), z.data() + z.size());
  EXPECT_LT(KolmogorovDistance(values, NormalCdf), DkwBound(z.size()));
}

TEST(RandomSuite, DrawsAreUncorrelatedAcrossCoordinatesStepsAndSamples) {
  const int64_t n = 200000;
  Batch a(3, n), b(3, n);
  const NoiseStream noise(99, Stream::kPredictor);
  noise.FillNormal(10, 0, 0, a);
  noise.FillNormal(11, 0, 0, b);
  // Sample correlation of independent N(0, 1) pairs has standard error 1/√n.
  const double bound = kSigmas / std::sqrt(static_cast<double>(n));
  const auto corr = [](const auto& x, const auto& y) {
    const double mx = x.mean(), my = y.mean();
    return ((x.array() - mx) * (y.array() - my)).mean() /
           std::sqrt((x.array() - mx).square().mean() * (y.array() - my).square().mean());
  };
  EXPECT_LT(std::abs(corr(a.row(0), a.row(1))), bound);  // one Box–Muller pair
  EXPECT_LT(std::abs(corr(a.row(1), a.row(2))), bound);  // different Philox blocks
  EXPECT_LT(std::abs(corr(a.row(0), b.row(0))), bound);  // consecutive steps
  EXPECT_LT(std::abs(corr(a.row(0).head(n - 1), a.row(0).tail(n - 1))), bound);  // samples
}

TEST(RandomSuite, UniformsAndRademachersHaveTheirLaws) {
  const NoiseStream noise(5, Stream::kData);
  Batch u(4, 100000), r(4, 100000);
  noise.FillUniform(0, 0, 0, u);
  noise.FillRademacher(0, 0, 0, r);
  const double n = static_cast<double>(u.size());
  std::vector<double> values(u.data(), u.data() + u.size());
  EXPECT_LT(KolmogorovDistance(values, [](double x) { return x; }), DkwBound(u.size()));
  // Mean of U(0, 1): 1/2 with standard error √(1/12)/√n; Rademacher mean 0 with 1/√n.
  EXPECT_LT(std::abs(u.mean() - 0.5), kSigmas * std::sqrt(1.0 / 12.0 / n));
  EXPECT_LT(std::abs(r.mean()), kSigmas / std::sqrt(n));
  const MomentEstimate moments = EstimateMoments(r);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(moments.cov(i, i), 1.0, kSigmas * moments.cov_stderr(i, i) + 1e-12);
}

TEST(RandomSuite, DrawsAreBitIdenticalForAnyThreadCountAndChunking) {
  const int d = 7;
  const int64_t samples = 1000;
  const NoiseStream noise(31337, Stream::kPredictor);
  Batch reference(d, samples);
  noise.FillNormal(17, 3, 0, reference);
  for (int threads : {1, 2, 7}) {
    const ExecutionContext context(threads);
    for (int64_t grain : {int64_t{1}, int64_t{13}, int64_t{64}, samples}) {
      Batch z(d, samples);
      context.ParallelFor(0, samples, grain, [&](int64_t begin, int64_t end) {
        noise.FillNormal(17, 3, begin, z.middleCols(begin, end - begin));
      });
      EXPECT_EQ(z, reference) << threads << " threads, grain " << grain;
    }
  }
}

}  // namespace
}  // namespace scoresde
